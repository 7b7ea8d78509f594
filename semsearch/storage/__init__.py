"""Where an index keeps its documents, chunks and vectors: the interface (`base`) and the
backends behind it. `local` is a folder holding a SQLite database (`sqlite/`) and a FAISS
cache of its vectors (`faiss/`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import IndexNotFoundError, StorageError
from .base import Backend


def open_backend(location: str | os.PathLike, *, create: bool) -> Backend:
    """The storage at `location` (a folder), opened; created when missing if `create`.

    Raises IndexNotFoundError when there is none and `create` is false, StorageError when
    it cannot be created or read.
    """
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
