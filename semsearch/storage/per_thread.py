"""One database connection per thread, behind one object.

A connection runs one statement at a time, and a transaction belongs to the connection:
threads sharing one would wait for each other and could read inside each other's
transactions. `PerThread` looks like a store and hands every call to the calling thread's
own, opened on its first use, so searches in many threads run side by side and each sees
the last committed state. A writer, which must keep its transactions and locks on one
connection, takes `current()` once and keeps it.

A thread that has ended cannot use its connection again: it is closed when the next one is
opened, so a server whose worker threads come and go does not collect connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Store = TypeVar("Store")


class PerThread(Generic[Store]):
    """The store of the calling thread (made by `open_store` on first use). `location` is the
    index as it may be shown (never with a password)."""

    def __init__(self, location: str, open_store: Callable[[], Store]) -> None:
        self._location = location
        self._open_store = open_store
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[threading.Thread, Store]] = []
        self._closed = False
        # Opened here, so that an index that cannot be opened fails when it is opened.
        self.current()

    def current(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            from ..errors import SemsearchError

            if self._closed:
                raise SemsearchError(f"The index at {self._location} was closed: open it again.", code="closed")
            store = self._open_store()
            with self._lock:
                ended = [old for thread, old in self._open if not thread.is_alive()]
                self._open = [(thread, old) for thread, old in self._open if thread.is_alive()]
                self._open.append((threading.current_thread(), store))
            for old in ended:
                old.close()  # type: ignore[attr-defined]
            self._local.store = store
        return store

    def each(self) -> list[Store]:
        """Every thread's open store."""
        with self._lock:
            return [store for _, store in self._open]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            self._closed = True
            stores, self._open = [store for _, store in self._open], []
        for store in stores:
            store.close()  # type: ignore[attr-defined]
