"""The SQLite database of a local index: the connection, its transactions and settings.

The database is the index's source of truth. `Store` (store.py) adds the queries, one
mixin per subject; this module owns the connection, how it is opened (read-only folders
too), the `meta` table of settings and the generation counter, and turns SQLite's errors
into StorageErrors that say what to do.

Every change that touches chunks bumps `generation`, which the FAISS file records, so a
reader can tell in one query whether its cache is current.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import StorageError

DATABASE_NAME = "index.db"
# SQLite's default limit on host parameters is 999 in older builds.
PARAMETERS = 900
# SQLite's page cache per connection.
PAGE_CACHE_KIB = 32 * 1024


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Database:
    """The connection to one index database. Not shared between threads."""

    def __init__(self, directory: Path) -> None:
        import sqlite_utils

        self.path = directory / DATABASE_NAME
        # A folder we cannot write still lets the index be searched (see _read_only).
        self.readonly = self.path.exists() and not os.access(directory, os.W_OK)
        try:
            if self.readonly:
                connection = _read_only(self.path)
            else:
                connection = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            self.db: Any = sqlite_utils.Database(connection, execute_plugins=False)
            # BM25 reads the length of every chunk a keyword search matches (thousands, at
            # random): 32 MiB of page cache, filled as pages are read, keeps those lengths
            # (10 MB at a million chunks) in memory where SQLite's 2 MB default cannot.
            self.db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
            if not self.readonly:
                # In WAL mode NORMAL keeps every commit safe from a crashed process; only a
                # power cut can lose the last transactions, never corrupt the file.
                self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            raise storage_error(exc, self.path) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write (or a consistent read); SQLite errors become StorageError with advice.
        Nested transactions are savepoints of the outer one."""
        try:
            with self.db.atomic():
                yield
        except sqlite3.DatabaseError as exc:
            raise storage_error(exc, self.path) from None

    # -- settings ---------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self.db.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])
        if "dimensions" in values:
            self._dimensions = None

    _dimensions: int | None = None

    def dimensions(self) -> int | None:
        """The index's vector size, once known; read again until it is (another process's
        first commit may set it), then remembered: it never changes but by a rebuild."""
        if self._dimensions is None:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'dimensions'").fetchone()
            self._dimensions = int(row[0]) if row and row[0] else None
        return self._dimensions

    def generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def _bump_generation(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

def batches(values: Sequence, size: int = PARAMETERS) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection to the database in a folder we cannot write.

    Commits not yet copied into the file itself (after a killed run, or while a writer
    elsewhere has it open) live in its WAL, which SQLite reads when the WAL's index file
    (-shm) exists. Without one, SQLite cannot open the file normally, as it would have to
    create it; with no WAL either, the file is complete and is read as an immutable one.
    """
    uri = path.absolute().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        connection.close()
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise StorageError(
            f"The index at {path.parent} holds commits that are only in {wal.name}, which cannot be read "
            "in a folder that is not writable.",
            hint="Open it once where it is writable and copy it again, or make the folder writable.",
            code="wal_unreadable", index=str(path.parent),
        )
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)


def storage_error(exc: sqlite3.DatabaseError, path: Path) -> StorageError:
    """A StorageError that says what to do about a SQLite failure."""
    message = str(exc)
    lowered = message.lower()
    if "full" in lowered:
        code, advice = "disk_full", "The disk is full; free some space and run it again (nothing committed was lost)."
    elif "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        code, advice = "not_writable", "The index folder is not writable; check its permissions or use another index."
    elif "locked" in lowered or "busy" in lowered:
        code, advice = "busy", "Another process holds the database; try again when it has finished."
    elif "malformed" in lowered or "not a database" in lowered:
        code, advice = "damaged", (
            "The database file is damaged, which a repair cannot mend; index the folders again into a new "
            "index and replace this one with it."
        )
    else:
        code, advice = "storage", "Check the index to verify it."
    return StorageError(f"Index database {path}: {message}.", hint=advice, code=code, index=str(path.parent))
