"""Errors as RFC 9457 problem details (``application/problem+json``), each naming the field."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM = "application/problem+json"
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 409: "Conflict",
           413: "Too large", 422: "Unprocessable content", 500: "Internal error", 503: "Unavailable"}


class FieldError(BaseModel):
    field: str  #: JSON pointer-ish path of the field, e.g. "entries/2/mwh"
    message: str


class Problem(BaseModel):
    """RFC 9457 §3.1 members plus ``errors``: one entry per bad field."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] = []


class ApiProblem(Exception):
    def __init__(self, status: int, detail: str, *, errors: list[FieldError] | None = None,
                 type_: str = "about:blank", headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.type, self.headers = status, detail, errors or [], type_, headers


def problem_response(status: int, detail: str | None, instance: str, errors: list[FieldError] | None = None,
                     type_: str = "about:blank", headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(type=type_, title=_TITLES.get(status, "Error"), status=status, detail=detail, instance=instance,
                   errors=errors or [])
    return JSONResponse(body.model_dump(mode="json"), status_code=status, media_type=PROBLEM, headers=headers)


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, f"{what} not found")


def unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="greengauge"'})


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return "/".join(parts) or "body"


def install(app) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem):
        return problem_response(exc.status, exc.detail, request.url.path, exc.errors, exc.type, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem_response(exc.status_code, str(exc.detail), request.url.path, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [FieldError(field=_loc(tuple(e.get("loc", ()))), message=e.get("msg", "invalid")) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(422, detail, request.url.path, errors)
