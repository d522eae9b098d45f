"""Load a YAML file into a pydantic model, with errors that name the file, the line and the field.

"site.yaml line 14: devices[0].profile: profile 'sunspec-inv' does not exist (known: …)" rather
than a traceback: ruamel.yaml keeps the line of every key, and pydantic's error location is the
path to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file is wrong; the message says where and what to do."""


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node on ``loc`` that ruamel.yaml knows the position of."""
    line = None
    node = data
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    if line is None and isinstance(data, (CommentedMap, CommentedSeq)):
        line = data.lc.line + 1
    return line


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(path: Path | str, data: Any, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        line = _line_of(data, loc)
        where = f"{Path(path).name} line {line}" if line else Path(path).name
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {_dotted(loc)}: {msg}")
    return "\n".join(lines)


def read_text(path: Path | str, error: type[Exception] = ConfigError, *, encoding: str = "utf-8") -> str:
    """The text of a file a person gave; every way it cannot be read is one ``error`` naming the file
    and what to do (missing, a directory, not readable, not UTF-8), never a traceback."""
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a file; give the path of the file in it") from None
    except PermissionError:
        raise error(f"{path}: cannot be read (permission denied); check its permissions") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                    "save it as UTF-8 (in Excel: CSV UTF-8)") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_yaml(path: Path | str) -> Any:
    path = Path(path)
    text = read_text(path)
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path.name}{line}: not valid YAML: {exc.problem}") from None


def load_model(path: Path | str, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Read ``path`` and validate it as ``model``; raise :class:`ConfigError` with lines on failure."""
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{Path(path).name}: the file is empty")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, data, exc)) from None
