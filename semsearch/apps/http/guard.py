"""The rules every request meets before the application sees it.

A server on 127.0.0.1 is reachable from any page the user's browser opens, so:
- the Host header must name the server (a foreign name is how DNS rebinding gets a page
  in): 400 without one, 421 for another;
- a request from another site's page (an Origin that is not the server's own, nor one
  allowed with --cors) is refused, 403: a form on a foreign page cannot reach the API;
- with a token, every request but the page's own files (which hold no data) carries it as
  `Authorization: Bearer ...`, compared in constant time: 401 otherwise;
- request targets, bodies and the time a client takes to send one are bounded (414, 413,
  408), so a slow or stuck client holds only its own connection.
CORS headers are sent only for origins allowed with --cors.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .settings import ServeSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The longest request target (path and query string).
MAX_TARGET = 16 * 1024
# Paths anyone who can reach the server may read: the page and its files.
PUBLIC = ("/", "/favicon.ico")
PUBLIC_PREFIX = "/static/"


class Guard:
    """ASGI middleware applying the rules above to `app`."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings
        self.names = settings.host_names()
        self.token = settings.token.encode() if settings.token else None
        self.cors = set(settings.cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await _refuse(send, 403, "not_http", "Only HTTP requests are served here.")
            return
        headers = _headers(scope)
        host = headers.get("host")
        if host is None or not (name := _host_name(host)):
            await _refuse(send, 400, "bad_host", "The request has no valid Host header.")
            return
        if name not in self.names:
            await _refuse(send, 421, "foreign_host", "This server does not answer to that host name.")
            return
        origin = headers.get("origin")
        allowed = origin in self.cors
        if origin is not None and not allowed and not self._own(origin):
            await _refuse(send, 403, "cross_origin", "Requests from other sites' pages are refused (see --cors).")
            return
        if allowed and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(send, origin or "")
            return
        if allowed:
            send = _with_cors(send, origin or "")
        path = scope.get("path", "")
        if self.token and not (path in PUBLIC or path.startswith(PUBLIC_PREFIX)) and not self._authorised(headers):
            await _refuse(
                send, 401, "unauthorised", "This server needs its token: send it as Authorization: Bearer TOKEN.",
                [(b"www-authenticate", b'Bearer realm="semsearch"')],
            )
            return
        if len(scope.get("raw_path") or path.encode()) + len(scope.get("query_string", b"")) > MAX_TARGET:
            await _refuse(send, 414, "target_too_long", f"The request target is longer than {MAX_TARGET:,} bytes.")
            return
        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            body = await self._body(scope, headers, receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _own(self, origin: str) -> bool:
        """Whether `origin` is the server's own (its page calling its API)."""
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and _host_name(parts.netloc) in self.names

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        assert self.token is not None
        # Compared in constant time, so the answer's timing tells nothing about the token.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token)

    async def _body(self, scope: Scope, headers: dict[str, str], receive: Receive, send: Send) -> bytes | None:
        """The whole request body, or None once the client was answered with why not."""
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, 413, "body_too_large", f"Request bodies may be at most {limit:,} bytes.")
            return None
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.body_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except asyncio.TimeoutError:
                await _refuse(send, 408, "body_timeout", f"The request body did not arrive within {self.settings.body_timeout:g} s.")
                return None
            if message["type"] == "http.disconnect":
                return None
            size += len(message.get("body", b""))
            if size > limit:
                await _refuse(send, 413, "body_too_large", f"Request bodies may be at most {limit:,} bytes.")
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name in found:  # two Host or Authorization headers: keep neither as trusted
            found[name] = "\x00"
        else:
            found[name] = value.decode("latin-1")
    return found


def _host_name(host: str) -> str | None:
    """The name in a Host header ("name", "name:port", "[::1]:port"), lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or (host[end + 1:] and not (host[end + 1:].startswith(":") and host[end + 2:].isdigit())):
            return None
        return host[1:end] or None
    name, _, port = host.partition(":")
    if port and not port.isdigit():
        return None
    if not name or any(c in name for c in "/\\@ \x00"):
        return None
    return name


async def _refuse(send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "hint": None}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _preflight(send: Send, origin: str) -> None:
    headers = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", b"GET, POST"),
        (b"access-control-allow-headers", b"Authorization, Content-Type"),
        (b"access-control-max-age", b"600"),
        (b"vary", b"Origin"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), (b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        await send(message)

    return sending


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
