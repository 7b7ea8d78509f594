"""One database connection per thread, behind one object.

A SQLite connection runs one statement at a time, and a transaction belongs to the
connection: threads sharing one would wait for each other and could read inside each
other's transactions. `PerThread` looks like a `Store` and hands every call to the calling
thread's own, opened on its first use, so searches in many threads run side by side and
each sees the last committed state. The writer, which runs in one thread, keeps its
transactions to itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sqlite.store import Store


class PerThread:
    """The `Store` of the calling thread (created by `open_store` on first use)."""

    def __init__(self, directory: Path, open_store: Callable[[Path], Store]) -> None:
        self._directory = directory
        self._open_store = open_store
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Store] = []
        self._closed = False
        # Opened here, so that a folder that cannot be opened fails when the index is opened.
        self.current()

    def current(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            from ...errors import SemsearchError

            if self._closed:
                raise SemsearchError(f"The index at {self._directory} was closed: open it again.", code="closed")
            store = self._open_store(self._directory)
            with self._lock:
                self._all.append(store)
            self._local.store = store
        return store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            self._closed = True
            stores, self._all = self._all, []
        for store in stores:
            store.close()
