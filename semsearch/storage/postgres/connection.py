"""Connecting to the PostgreSQL database of an index: the URL as it may be shown (never with
its password), the connection itself, and PostgreSQL's errors turned into StorageErrors that
say what to check.

Everything but the URL's password is left to libpq: `PGPASSWORD`, `~/.pgpass`, a service
file (`service=` or `PGSERVICE`), `sslmode` and the other connection parameters work as they
do for psql.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import StorageError

SCHEMES = ("postgresql://", "postgres://")
# Query parameters whose values are secrets, left out of the URL as shown.
_SECRET_PARAMETERS = {"password", "sslpassword"}


def is_url(location: object) -> bool:
    """Whether an index location names a PostgreSQL database rather than a folder."""
    return isinstance(location, str) and location.lower().startswith(SCHEMES)


def shown(url: str) -> str:
    """The URL without its password (in the user part or as a parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key.lower() not in _SECRET_PARAMETERS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets(url: str) -> list[str]:
    """The secrets a URL holds (to scrub from any message that might repeat them)."""
    from urllib.parse import unquote

    parts = urlsplit(url)
    found = []
    if "@" in parts.netloc:
        user = parts.netloc.rpartition("@")[0]
        if ":" in user:
            password = user.split(":", 1)[1]
            found += [password, unquote(password)]
    found += [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key.lower() in _SECRET_PARAMETERS]
    return [secret for secret in found if secret]


def scrub(text: str, url: str) -> str:
    for secret in secrets(url):
        text = text.replace(secret, "***")
    return text


def connect(url: str) -> Any:
    """An autocommit connection (each statement sees what is committed; `conn.transaction()`
    groups writes), or StorageError saying what to check."""
    try:
        import pgvector.psycopg  # noqa: F401 - needed right after connecting
        import psycopg
    except ImportError:
        raise StorageError(
            f"An index in PostgreSQL ({shown(url)}) needs the psycopg and pgvector packages.",
            hint="Install them with: pip install 'semsearch[postgres]'", code="missing_dependency", index=shown(url),
        ) from None

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="semsearch")
    except psycopg.Error as exc:
        raise connection_error(exc, url) from None


def connection_error(exc: Exception, url: str) -> StorageError:
    """A StorageError for a connection that could not be made or was lost."""
    detail = _first_line(scrub(str(exc), url))
    lowered = detail.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        hint = "Check the user name and password (in the URL, PGPASSWORD or ~/.pgpass)."
        code = "authentication"
    elif "does not exist" in lowered and "database" in lowered:
        hint = "Create the database first (createdb), or name one that exists."
        code = "no_database"
    else:
        hint = (
            "Check that the server is running and reachable at that host and port, and the URL's "
            "parameters (sslmode, ...). Everything committed before is kept; run the command again."
        )
        code = "connection"
    return StorageError(f"Cannot reach the index database {shown(url)}: {detail}", hint=hint, code=code, index=shown(url))


def database_error(exc: Exception, url: str) -> StorageError:
    """A StorageError for any failure of a statement (the connection lost included)."""
    import psycopg

    if isinstance(exc, psycopg.OperationalError) or getattr(exc, "sqlstate", None) in {"57P01", "57P02", "57P03"}:
        return connection_error(exc, url)
    detail = _first_line(scrub(str(exc), url))
    state = getattr(exc, "sqlstate", None) or ""
    if state == "42501":
        return StorageError(
            f"The index database {shown(url)} refused: {detail}", code="permission",
            hint="This database role may only search; index with a role granted writing (see the README).",
            index=shown(url),
        )
    if state.startswith("53"):
        return StorageError(
            f"The index database {shown(url)} is out of resources: {detail}", code="disk_full",
            hint="Free space on the database server, then run it again (nothing committed was lost).", index=shown(url),
        )
    return StorageError(f"The index database {shown(url)}: {detail}", code="storage", hint="Check the index to verify it.", index=shown(url))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no reason given"
    return re.sub(r"\s+", " ", line).rstrip(".") + "."
