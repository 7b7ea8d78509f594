"""Where an index keeps its documents, chunks and vectors: the interface (`base`) and the
backends behind it. `local` is a folder holding a SQLite database (`sqlite/`) and a FAISS
cache of its vectors (`faiss/`); `postgres` is a PostgreSQL database with pgvector, named by
a `postgresql://` URL."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import IndexNotFoundError, StorageError
from .base import Backend


def open_backend(location: str | os.PathLike, *, create: bool) -> Backend:
    """The storage at `location` (a folder, or a `postgresql://` URL), opened; created when
    missing if `create`.

    Raises IndexNotFoundError when there is none and `create` is false, StorageError when
    it cannot be created or read.
    """
    if isinstance(location, str) and location.lower().startswith(("postgresql://", "postgres://")):
        return _open_postgres(location, create=create)
    from . import local

    directory = Path(location).expanduser()
    if not local.exists(directory) and not create:
        raise IndexNotFoundError(
            f"No index at {directory}.", hint="Create one by adding folders to it.", index=str(directory)
        )
    made = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"Cannot create the index folder {directory}: {exc.strerror}.", code="cannot_create", index=str(directory)
        ) from None
    return local.LocalBackend(directory, made_folder=made)


def _open_postgres(url: str, *, create: bool) -> Backend:
    from .postgres import PostgresBackend

    backend = PostgresBackend(url, create=create)
    if not create and not backend.settings().get("model"):
        backend.close()
        raise IndexNotFoundError(
            f"No index in the database {backend.location}.", hint="Create one by adding folders to it.", index=backend.location
        )
    return backend
