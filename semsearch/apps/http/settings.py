"""What a server is started with, checked before anything listens."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ...errors import ConfigError

DEFAULT_PORT = 8765
DEFAULT_EDITOR_URL = "file://{path}"
TOKEN_VARIABLE = "SEMSEARCH_SERVE_TOKEN"


@dataclass
class ServeSettings:
    """How `semsearch serve` runs. The token is kept out of `repr` so that it is never shown."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    # Whether requests may change the index (update its folders).
    allow_write: bool = False
    # How a hit opens in the user's editor: {path} and {line} are filled in.
    editor_url: str = DEFAULT_EDITOR_URL
    # Origins allowed to call the API from their pages (CORS); none unless given.
    cors: tuple[str, ...] = ()
    # Host names besides those the server is bound to that clients may use (a proxy's).
    allowed_hosts: tuple[str, ...] = ()
    # The longest query, the largest request body, and how long a client may take to send it.
    max_query_chars: int = 2_000
    max_body_bytes: int = 64 * 1024
    body_timeout: float = 10.0
    # Connections at once (more get 503), and requests worked on at once in threads.
    max_connections: int = 256
    threads: int = 8

    def check(self) -> None:
        """Refuse settings that would make the server unsafe or unusable (ConfigError)."""
        if self.token is not None and (not self.token.strip() or any(c.isspace() for c in self.token)):
            raise ConfigError("The server token may not be empty or hold spaces.", code="bad_token")
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"Listening on {self.host} would let other machines search this index: it is refused without a token.",
                hint=f"Set a token ({TOKEN_VARIABLE}), which every request must then carry, or listen on 127.0.0.1.",
                code="token_required", host=self.host,
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"The port must be 0 to 65535, not {self.port}.", code="bad_port")
        if "{path}" not in self.editor_url:
            raise ConfigError(
                f"The editor URL pattern {self.editor_url!r} has no {{path}}: e.g. vscode://file/{{path}}:{{line}}.",
                code="bad_editor_url",
            )
        for origin in self.cors:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
                raise ConfigError(
                    f"The CORS origin {origin!r} is not an origin: give scheme, host and port only (https://app.example:8080).",
                    code="bad_origin",
                )

    def host_names(self) -> set[str]:
        """The names clients may reach the server by (the Host header, without the port)."""
        names = {self.host.lower().strip("[]"), *(name.lower().strip("[]") for name in self.allowed_hosts)}
        if is_loopback(self.host) or self.host in ("0.0.0.0", "::", ""):
            names |= {"127.0.0.1", "localhost", "::1"}
        if self.host in ("0.0.0.0", "::", ""):
            # Every address of this machine: its names and what they resolve to.
            for name in {socket.gethostname(), socket.getfqdn()}:
                names.add(name.lower())
                try:
                    names |= {str(info[4][0]).lower() for info in socket.getaddrinfo(name, None)}
                except OSError:
                    pass
        return names


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
