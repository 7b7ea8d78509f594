"""`semsearch serve`: one process keeping an index, its model and its vector cache warm, and
answering many clients at once with a JSON API and a web page.

- `settings.py`: what a server is started with (`ServeSettings`), and the checks that keep
  it safe to start (a token for any address but loopback).
- `guard.py`: the rules every request passes first: Host names, Origin, the token, sizes
  and time limits, CORS when asked for.
- `app.py`: `create_app(index, settings)`, the Starlette application (the API, the page
  and its files, `/openapi.json`); more routes (such as another protocol's endpoint) and a
  lifespan can be given to it.
- `openapi.py`: the API's description; `server.py`: uvicorn, in the foreground or a thread.

Starlette and uvicorn are imported only here, and only when a server is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import ServeSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ...index import Index

__all__ = ["ServeSettings", "create_app"]


def create_app(index: Index, settings: ServeSettings | None = None, **options: Any) -> Starlette:
    """The application serving `index` (see app.create_app)."""
    from .app import create_app as make

    return make(index, settings, **options)
