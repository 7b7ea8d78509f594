"""The Starlette application: the JSON API over an `Index`, the page, `/openapi.json`.

Handlers parse parameters, call the index in a worker thread (a search never holds up the
event loop, so one slow request delays no other) and return the library's own JSON shapes.
Errors are JSON: {"error": {"code", "message", "hint"}}, with the status their kind calls
for and the library's message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ... import __version__
from ...errors import (
    ConfigError,
    EmbeddingError,
    IndexLockedError,
    NotInIndexError,
    SemsearchError,
    StorageError,
)
from ...search import MODES
from .guard import Guard
from .openapi import description
from .settings import ServeSettings

if TYPE_CHECKING:
    from ...index import Index

log = logging.getLogger("semsearch.serve")


class ApiError(Exception):
    """A request the API refuses, with its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def create_app(
    index: Index,
    settings: ServeSettings | None = None,
    *,
    routes: Sequence[BaseRoute] = (),
    lifespan: Callable[[Starlette], Any] | None = None,
) -> Starlette:
    """The application serving `index` under `settings`. `routes` are added after the API's
    (a `Mount("/mcp", ...)`), behind the same guard; `lifespan` runs around the server's life."""
    settings = settings or ServeSettings()
    limiter = anyio.CapacityLimiter(settings.threads)

    async def call(function: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(function, limiter=limiter)

    async def search(request: Request) -> Response:
        options = _search_options(request, settings)
        query = options.pop("query")
        results = await call(lambda: index.search(query, **options))
        return JSONResponse({"query": query, "mode": options["mode"], **results.to_dict()})

    async def status(request: Request) -> Response:
        info = await call(index.status)
        server = {"version": __version__, "read_only": not settings.allow_write, "editor_url": settings.editor_url}
        return JSONResponse({**info.to_dict(), "server": server})

    async def passage(request: Request) -> Response:
        raw = request.path_params["chunk_id"]
        if not raw.isdigit() or len(raw) > 19:
            raise NotInIndexError(f"No chunk {raw!r} in the index.", code="chunk_not_found")
        context = _integer(request, "context", 3, 0, 200)
        found = await call(lambda: index.passage(int(raw), context=context))
        return JSONResponse(found.to_dict())

    async def document(request: Request) -> Response:
        path = _text(request, "path", required=True, longest=4096)
        start = _integer(request, "start", 1, 1, 2**62)
        end = _integer(request, "end", None, 1, 2**62)
        if end is not None and end < start:
            raise ApiError(400, "invalid_range", f"end ({end}) may not come before start ({start}).")
        found = await call(lambda: index.document(path, start=start, end=end))
        return JSONResponse(found.to_dict())

    async def update(request: Request) -> Response:
        if not settings.allow_write:
            raise ApiError(403, "read_only", "This server is read-only: it was started without --allow-write.")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise ApiError(415, "json_required", "Send the request as application/json (an empty object will do).")
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "bad_json", "The request body is not JSON.") from None
        if not isinstance(body, dict) or body:
            raise ApiError(400, "bad_request", "The body must be an empty JSON object: every indexed folder is updated.")
        stats = await call(index.add)
        return JSONResponse(stats.to_dict())

    async def openapi(request: Request) -> Response:
        return JSONResponse(description(settings))

    async def page(request: Request) -> Response:
        html = resources.files(__package__).joinpath("static/index.html").read_bytes()
        return Response(html, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    api: list[BaseRoute] = [
        Route("/api/search", search, methods=["GET"]),
        Route("/api/status", status, methods=["GET"]),
        Route("/api/passage/{chunk_id}", passage, methods=["GET"]),
        Route("/api/document", document, methods=["GET"]),
        Route("/api/index", update, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/", page, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[(__package__, "static")]), name="static"),
        *routes,
    ]
    app = Starlette(
        routes=api,
        exception_handlers={ApiError: _api_error, SemsearchError: _library_error, HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.index, app.state.settings = index, settings
    app.add_middleware(Guard, settings=settings)
    return app


# The page runs only its own scripts and styles, talks only to this server, and may not be framed.
_PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _search_options(request: Request, settings: ServeSettings) -> dict[str, Any]:
    query = _text(request, "q", required=True, longest=None)
    if len(query) > settings.max_query_chars:
        raise ApiError(414, "query_too_long", f"The query may be at most {settings.max_query_chars:,} characters, not {len(query):,}.")
    mode = request.query_params.get("mode", "hybrid")
    if mode not in MODES:
        raise ApiError(400, "unknown_mode", f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
    ext = [part for value in request.query_params.getlist("ext") for part in value.split(",") if part.strip()]
    per_file = _integer(request, "per_file", 2, 0, 10_000)
    return {
        "query": query,
        "mode": mode,
        "limit": _integer(request, "limit", 10, 1, 10_000),
        "per_file": per_file or None,
        "path": request.query_params.getlist("path") or None,
        "ext": ext or None,
        # An empty date is a form's field left blank: no bound.
        "after": _text(request, "after", longest=64) or None,
        "before": _text(request, "before", longest=64) or None,
        "explain": _flag(request, "explain"),
        # Absent: as SEMSEARCH_RERANK_MODEL says (on when it is set), as for `search`.
        "rerank": _flag(request, "rerank") if _text(request, "rerank", longest=8) else None,
    }


def _text(request: Request, name: str, *, required: bool = False, longest: int | None = 4096) -> Any:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ApiError(400, "repeated_parameter", f"Give {name} once, not {len(values)} times.")
    value = values[0] if values else None
    if value is None or (required and not value):
        if required:
            raise ApiError(400, "missing_parameter", f"The parameter {name} is required." + (" Say what you are looking for." if name == "q" else ""))
        return None
    if longest is not None and len(value) > longest:
        raise ApiError(414, "parameter_too_long", f"{name} may be at most {longest:,} characters.")
    return value


def _integer(request: Request, name: str, default: int | None, low: int, high: int) -> Any:
    value = _text(request, name, longest=24)
    if value is None:
        return default
    try:
        number = int(value.strip(), 10)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number from {low:,} to {high:,}, not {value!r}.")
    return number


def _flag(request: Request, name: str) -> bool:
    value = (_text(request, name, longest=8) or "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ApiError(400, "invalid_parameter", f"{name} must be true or false, not {value!r}.")
    return value in ("true", "1", "yes")


def _status_of(error: SemsearchError) -> int:
    if isinstance(error, NotInIndexError):
        return 404
    if isinstance(error, IndexLockedError):
        return 409
    if isinstance(error, EmbeddingError):
        return 502
    if isinstance(error, StorageError):
        return 503 if error.code == "busy" else 500
    if isinstance(error, ConfigError) or error.code == "closed":
        return 503
    return 400


def _error(status: int, code: str, message: str, hint: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "hint": hint}}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.code, exc.message)


async def _library_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SemsearchError)
    status = _status_of(exc)
    if status >= 500:
        log.warning("semsearch serve: %s %s: %s", request.method, request.url.path, exc.message)
    return _error(status, exc.code, exc.message, exc.hint)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    messages = {404: "There is nothing at this address: see /openapi.json.", 405: f"{request.method} is not allowed here."}
    return _error(
        exc.status_code, codes.get(exc.status_code, "http"), messages.get(exc.status_code, str(exc.detail)),
        headers=dict(exc.headers or {}),
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("semsearch serve: %s %s failed", request.method, request.url.path)
    return _error(500, "internal", "The server failed to answer this request; its log says why.")
