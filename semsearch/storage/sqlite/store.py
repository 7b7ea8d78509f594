"""The SQLite database of a local index, with every query it answers: the only code that
writes SQL for it (with its migrations).

`Store` is the connection (database.py) with one mixin per subject: the catalogue of folders
and documents, the chunks and vectors, the texts waiting for vectors, the keyword index, and the consistency checks.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ...errors import StorageError
from .backlog import BacklogQueries
from .catalogue import CatalogueQueries
from .check import CheckQueries
from .chunks import ChunkQueries
from .database import storage_error
from .keywords import KeywordQueries


class Store(CatalogueQueries, ChunkQueries, BacklogQueries, KeywordQueries, CheckQueries):
    """One index database, brought to the current schema on open. Not shared between threads."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.released_vectors: set[int] = set()
        self.dropped_waiting: set[int] = set()
        from . import migrations as schema

        try:
            if self.readonly:
                if schema.needs_upgrade(self.db):
                    raise StorageError(
                        f"The index at {directory} needs an upgrade, but its folder is not writable.",
                        hint="Open it once where it is writable, or make the folder writable.",
                        code="needs_upgrade", index=str(directory),
                    )
                return
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal" or schema.needs_upgrade(self.db):
                # Processes opening a new (or older) index at once take turns: the second
                # finds the work done instead of creating the same tables again.
                from .locking import write_lock

                with write_lock(directory):
                    self.db.enable_wal()
                    schema.upgrade(self.db)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise storage_error(exc, self.path) from None
        except BaseException:
            self.close()
            raise
