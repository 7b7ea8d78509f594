"""Running the application on uvicorn: in the foreground (`semsearch serve`) or in a thread
(tests, benchmarks, programs embedding a server)."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from .settings import ServeSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ...index import Index

# Seconds an idle kept-alive connection stays open.
KEEP_ALIVE = 5
# The largest request head (request line and headers) uvicorn reads.
MAX_HEAD = 32 * 1024


class Server:
    """A server for `index` (or for `app`, made with `create_app`), bound when started."""

    def __init__(self, index: Index, settings: ServeSettings, app: Starlette | None = None, *, log_level: str = "info") -> None:
        settings.check()
        self.settings = settings
        if app is None:
            from .app import create_app

            app = create_app(index, settings)
        self.app = app
        self.log_level = log_level
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one chosen, when asked for port 0)."""
        return self._socket.getsockname()[1] if self._socket else self.settings.port

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def bind(self) -> None:
        """Listen on the host and port (ConfigError when taken or not this machine's)."""
        host = self.settings.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Sent at once, not held for the client's acknowledgement of the headers: without it
        # every answer waited for the client's delayed ACK, 40 ms on Linux. Connections
        # accepted from this socket inherit it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, self.settings.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"Cannot listen on {host}:{self.settings.port}: {exc.strerror or exc}.",
                hint="Choose another port, or stop what listens there.", code="cannot_listen",
            ) from None
        sock.listen(512)
        sock.set_inheritable(True)
        self._socket = sock

    def _uvicorn(self):
        import uvicorn

        config = uvicorn.Config(
            self.app, log_level=self.log_level, timeout_keep_alive=KEEP_ALIVE,
            limit_concurrency=self.settings.max_connections, h11_max_incomplete_event_size=MAX_HEAD,
            server_header=False, proxy_headers=False, lifespan="on",
        )
        return uvicorn.Server(config)

    def run(self) -> None:
        """Serve until interrupted."""
        if self._socket is None:
            self.bind()
        self._server = self._uvicorn()
        self._server.run(sockets=[self._socket])

    def start(self, timeout: float = 30.0) -> Server:
        """Serve in a background thread; returns once the server answers."""
        if self._socket is None:
            self.bind()
        self._server = self._uvicorn()
        # uvicorn leaves signals alone outside the main thread: this one stops with stop().
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, name="semsearch-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("The server did not start.", code="not_started")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
