"""``uvicorn api.asgi:app``: the API with settings from the environment (for several workers)."""

from api.app import create_app

app = create_app()
