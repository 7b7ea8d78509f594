"""Asking the kernel to read parts of a memory-mapped file before they are touched.

A search of a memory-mapped FAISS file reads what it touches through page faults: on a
cold file (not read for a while, or evicted under memory pressure) each fault reads a few
pages and waits for them before the search goes on, so a query probing 16 cells of a
million-vector index waits for dozens of reads one after another (over 100 ms on a
virtual disk). Told first which ranges the search will read (madvise MADV_WILLNEED), the
kernel sends the reads out together and the search waits about as long as for one.

On a warm file the advice reads nothing but still walks the range's pages (about 80 ns a
page: 0.1 ms for a 6 MB range), so a part advised a moment ago is not advised again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from functools import lru_cache

# A part read within this many seconds is taken to be in memory still: pages just read
# are the last the kernel evicts.
AGAIN_AFTER = 10.0


class ReadAhead:
    """Read-ahead for the parts of one mapping, each advised at most once per AGAIN_AFTER."""

    def __init__(self) -> None:
        self._advised: dict[Hashable, float] = {}

    def __call__(self, parts: Iterable[Hashable], ranges: Callable[[list], Iterable[tuple[int, int]]]) -> None:
        """Advise the (address, length) ranges that `ranges(due)` gives for the `parts` not
        advised lately; returns at once (the kernel reads in the background)."""
        now = time.monotonic()
        due = [part for part in parts if now - self._advised.get(part, float("-inf")) >= AGAIN_AFTER]
        if due:
            for part in due:
                self._advised[part] = now
            read_ahead(ranges(due))


def read_ahead(ranges: Iterable[tuple[int, int]]) -> int:
    """Start reading the mapped memory at each (address, length); returns at once, with
    the number of ranges the kernel refused (advice only: a refusal changes no answer).

    Where the platform has no madvise this does nothing: the reads happen as before.
    """
    advise = _madvise()
    if advise is None:
        return 0
    function, page, willneed = advise
    refused = 0
    for address, length in ranges:
        if length > 0:
            start = address - address % page
            refused += function(start, address + length - start, willneed) != 0
    return refused


@lru_cache(maxsize=1)
def _madvise():
    import ctypes
    import mmap

    willneed = getattr(mmap, "MADV_WILLNEED", None)
    if willneed is None:
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function, mmap.PAGESIZE, willneed
