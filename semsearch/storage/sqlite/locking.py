"""One writer per index: an advisory lock on a file in the index folder.

Readers never take it (SQLite's WAL lets them read the last committed state while a writer
works). The holder's pid is written into the file so the error can name it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import IndexLockedError, StorageError

LOCK_NAME = "write.lock"

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; SQLite still serialises the writes.
    fcntl = None  # type: ignore[assignment]


def _acquire(directory: Path, timeout: float) -> int | None:
    """The locked file descriptor, or None if `timeout` passed with the lock held elsewhere."""
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"Cannot write in the index folder {directory}: {exc.strerror}. Check its permissions.") from None
    if fcntl is None:
        return fd
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.1)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return fd


def _holder(directory: Path) -> str:
    try:
        pid = (directory / LOCK_NAME).read_text().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid else "another process"


@contextmanager
def write_lock(directory: Path, timeout: float = 10.0) -> Iterator[None]:
    """Hold the index's write lock, waiting up to `timeout` seconds for it."""
    fd = _acquire(directory, timeout)
    if fd is None:
        raise IndexLockedError(
            f"The index at {directory} is being written by {_holder(directory)}. "
            "Wait for it to finish and run this again."
        )
    try:
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def try_write_lock(directory: Path) -> Iterator[bool]:
    """Take the lock if it is free right now; yields whether it was taken."""
    try:
        fd = _acquire(directory, 0)
    except StorageError:
        fd = None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
