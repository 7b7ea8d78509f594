"""Reading and chunking files in other processes, so that a run of many files uses more than
one core.

In one process the reader thread and the thread that writes take turns at the interpreter
lock, and every system call of one (each file's open, read and close; each SQLite step of
the other) hands the lock over and waits to get it back: with thousands of small files the
waiting costs more than the work. Here the reading happens elsewhere and comes back a batch
of items at a time.

Only file entries go out and items (records, chunks, reasons to skip) come back; nothing is
written there. The indexing process alone commits, so a killed run leaves the index as a
killed reader thread would.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from .. import config
from .reading import Item, Reader

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ..readers.walk import FileEntry
    from ..settings import ChunkSettings
    from ..storage.base import DocumentState

# Fewer files are read in the indexing process: starting a process costs about 0.1-0.3 s.
MIN_FILES = 1000
MAX_PROCESSES = 4
# Files, and bytes, a batch holds at most: large enough that handing one over costs little
# per file, small enough that the first batches come back soon.
BATCH_FILES = 128
BATCH_BYTES = 8 * 2**20
# Batches asked for ahead of the one being handed over, per process.
AHEAD = 3
# The first files, up to this many (and bytes), are read by the calling thread while the
# processes start (0.1-0.4 s before their first batch comes back): the first batches to
# embed, and the first commit, need not wait for them.
FIRST_HERE = 512
FIRST_HERE_BYTES = 2**20

SETTING = "SEMSEARCH_READ_PROCESSES"

_reader: Reader | None = None


def process_count(files: int, counter_travels: bool) -> int:
    """How many processes should read `files` files: SEMSEARCH_READ_PROCESSES when set (0:
    none, read in a thread), else one fewer than the CPUs (at most 4) for a run of at least
    1,000 files started from semsearch's own command, if the model's token counter can go
    with them; else none."""
    if config.setting(SETTING) is not None:
        return min(config.int_setting(SETTING, 0), 64)
    if files < MIN_FILES or not counter_travels or not _main_is_safe():
        return 0
    return max(min((os.cpu_count() or 1) - 1, MAX_PROCESSES), 0)


def _main_is_safe() -> bool:
    """Whether a new process can start without running the program's own code: a spawned
    process imports the main script, and a script without an `if __name__ == "__main__"`
    guard would index again (or wait for the lock) in every one."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:
        return True  # an interactive session or `python -c`: nothing to import
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "semsearch.__main__":
        return True
    return os.path.basename(path) in {"semsearch", "semsearch.exe", "semsearch-script.py"}


def _start(
    settings: ChunkSettings, max_tokens: int | None, count_tokens: Callable[[str], int] | None, force: bool, parent: int
) -> None:
    # Ctrl-C reaches the whole process group; stopping is the indexing process's to decide.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _reader
    _reader = Reader(settings, max_tokens=max_tokens, count_tokens=count_tokens, force=force)
    # The indexing process's id comes from it: one killed while this process started has
    # left it to another parent already, which it would otherwise watch instead.
    threading.Thread(target=_end_with, args=(parent,), name="semsearch-orphan-watch", daemon=True).start()


def _end_with(parent: int) -> None:
    """End this process once the indexing process is gone (killed: nothing told us to stop,
    and the task queue never closes, as this process holds its other end too)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _read(tasks: list[tuple[str, int, int, DocumentState | None]]) -> list[Item]:
    from pathlib import Path

    from ..readers.walk import FileEntry

    assert _reader is not None, "the process was started without its reader"
    return [_reader.file(FileEntry(Path(path), size, mtime_ns), state) for path, size, mtime_ns, state in tasks]


def _batches(todo: Sequence[tuple[FileEntry, DocumentState | None]]) -> Iterator[list[tuple[str, int, int, DocumentState | None]]]:
    # Plain values travel: a pickled Path costs several times a string.
    batch: list[tuple[str, int, int, DocumentState | None]] = []
    size = 0
    for entry, state in todo:
        batch.append((str(entry.path), entry.size, entry.mtime_ns, state))
        size += entry.size
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _first_here(todo: Sequence[tuple[FileEntry, DocumentState | None]]) -> int:
    """How many of the first files the calling thread reads while the processes start: up
    to FIRST_HERE of them and FIRST_HERE_BYTES together; small files only, as a large one
    (a long PDF, say) is the processes' to read."""
    count = size = 0
    while count < min(len(todo), FIRST_HERE) and size + todo[count][0].size <= FIRST_HERE_BYTES:
        size += todo[count][0].size
        count += 1
    return count


def read_in_processes(
    todo: Sequence[tuple[FileEntry, DocumentState | None]], reader: Reader, counter: Callable[[str], int] | None, processes: int
) -> Iterator[Item]:
    """The items for `todo`, in order, read by `processes` other processes with `reader`'s
    settings (and `counter` as its token counter); the first few by `reader` itself, in
    this thread, while those processes start."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Spawned, not forked: the indexing process runs threads, and a fork copies their locks.
    pool = ProcessPoolExecutor(
        processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
        initargs=(reader.settings, reader.max_tokens, counter, reader.force, os.getpid()),
    )
    here = _first_here(todo)
    pending: deque[Future] = deque()
    batches = _batches(todo[here:])
    try:
        for batch in batches:
            pending.append(pool.submit(_read, batch))
            if len(pending) >= processes * AHEAD:
                break
        for entry, state in todo[:here]:
            yield reader.file(entry, state)
        while pending:
            items = pending.popleft().result()
            for batch in batches:
                pending.append(pool.submit(_read, batch))
                break
            yield from items
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
