"""The vector cache of a local index: a FAISS index kept in step with the database.

The database is the source of truth; the cache holds the vectors of its chunks, keyed by
chunk id, and records which generation of the database it reflects. Reading never writes:
a search brings the cache up to date in memory only (adding what was committed since the
file was saved), and the next writer, which holds the write lock, saves it. A writer
applies its own commits to the cache as it makes them, without comparing ids again, and a
long run saves it now and then, so that searches in other processes meanwhile load a
recent file instead of reading every vector from the database.

One cache serves every thread of its process: its calls take turns (a search of the FAISS
index takes a millisecond or two; the query's embedding, which takes longer, runs outside).
When another process has saved a file that reflects the database's latest commit, the cache
loads that file instead of reading the new vectors from the database, so a long-running
server follows the writer's layout and keeps its vectors mapped rather than copied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ...errors import SemsearchError, StorageError
from ...settings import VectorSettings
from .layout import planned_layout
from .vectors import INDEX_NAME, NOTE_NAME, Note, VectorIndex, read_note

if TYPE_CHECKING:
    import numpy as np

# Seconds between saves of the cache during a long run.
SAVE_EVERY = 60.0
# Chunks whose vectors `damage` compares between the FAISS file and the database.
CHECK_SAMPLE = 64
FILES = (INDEX_NAME, NOTE_NAME)


class VectorSource(Protocol):
    """What the cache reads from the database."""

    def generation(self) -> int: ...

    def embedded_chunk_ids(self) -> np.ndarray: ...

    def chunk_vectors(self, dimensions: int, chunk_ids: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def transaction(self) -> AbstractContextManager[None]: ...


class VectorCache:
    """The FAISS cache of one index folder, for one open index."""

    def __init__(
        self, directory: Path, source: VectorSource, settings: VectorSettings, dimensions: Callable[[], int | None]
    ) -> None:
        self.directory = directory
        self.source = source
        self.settings = settings
        self._dimensions = dimensions
        self._vectors: VectorIndex | None = None
        # The database generation the vectors in memory reflect, and the one the file does.
        self._generation = -1
        self._saved_generation = -1
        self._saved_at = time.monotonic()
        self._lock = threading.RLock()

    # -- reading ----------------------------------------------------------------------------

    def loaded(self) -> VectorIndex:
        """The cache as loaded from disk (or empty), not yet checked against the database."""
        with self._lock:
            if self._vectors is None:
                dimensions = self._dimensions()
                if dimensions is None:
                    raise SemsearchError("The index has no vectors yet: its model has not been called.", code="no_vectors")
                found = VectorIndex.load(self.directory)
                if found and found[0].dimensions == dimensions:
                    index, note = found
                    self._vectors = index
                    self._generation = note.generation if index.count == note.count else -1
                    self._saved_generation = self._generation
                else:
                    self._vectors = VectorIndex(dimensions)
                    self._generation = self._saved_generation = -1
            return self._vectors

    def current(self) -> VectorIndex:
        """The cache, brought up to the committed state of the database (in memory only)."""
        with self._lock:
            self.sync()
            return self.loaded()

    def reflects(self, generation: int) -> bool:
        """Whether the cache in memory reflects this generation of the database."""
        return self._vectors is not None and self._generation == generation

    def sync(self) -> bool:
        """Bring the cache up to the committed state of the database; True if it changed."""
        with self._lock:
            import numpy as np

            dimensions = self._dimensions()
            if dimensions is None:
                return False
            if self._vectors is not None and self.source.generation() == self._generation:
                return False
            if self._vectors is not None and self._saved_by_another():
                self._vectors = None
            index = self.loaded()
            if self.source.generation() == self._generation:
                return False
            # One read transaction, so ids and vectors come from the same snapshot.
            with self.source.transaction():
                generation = self.source.generation()
                stored = self.source.embedded_chunk_ids()
                cached = index.ids()
                index.remove(np.setdiff1d(cached, stored, assume_unique=True))
                missing = np.setdiff1d(stored, cached, assume_unique=True)
                if len(missing) and len(missing) == len(stored):
                    # Built from scratch, in the layout its size calls for.
                    self._vectors = self._built(stored, dimensions)
                else:
                    for ids, matrix in self.source.chunk_vectors(dimensions, missing):
                        index.add(ids, matrix)
            self._generation = generation
            return True

    def search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest chunk ids and scores in the committed state (see VectorIndex.search)."""
        with self._lock:
            return self.current().search(vector, k, allowed)

    def _saved_by_another(self) -> bool:
        """Whether the saved file reflects the database's latest commit while memory does
        not: another process committed and saved, so loading its file beats reading what it
        added from the database (and the file's layout is the one its size calls for)."""
        note = read_note(self.directory)
        return note is not None and note.generation != self._generation and note.generation == self.source.generation()

    def _built(self, stored: np.ndarray, dimensions: int) -> VectorIndex:
        """A new cache of the vectors of `stored` chunk ids. Call inside a read transaction."""
        layout = planned_layout(len(stored), self.settings)

        def read(ids):
            return self.source.chunk_vectors(dimensions, ids)

        return VectorIndex.build(dimensions, stored, read, layout, self.settings.recall)

    # -- writing (with the write lock held) -------------------------------------------------

    def applied(self, removed: list[int], added: np.ndarray, vectors: Callable[[np.ndarray], Iterator]) -> None:
        """The writer committed a change that removed and added these chunk ids, the cache
        being current before it: apply it (reading the added vectors through `vectors`), so
        the cache reflects the new generation without comparing ids again."""
        with self._lock:
            index = self.loaded()
            index.remove(removed)
            for ids, matrix in vectors(added):
                index.add(ids, matrix)
            self._generation = self.source.generation()
            # A long run saves the cache now and then: a search meanwhile (another process,
            # which never saves) then loads it and adds only what came since, instead of
            # reading every vector from the database each time.
            now = time.monotonic()
            if now - self._saved_at > SAVE_EVERY:
                self._saved_at = now
                with suppress(StorageError):  # a full disk: the run's own commits matter more
                    self.save()

    def relayout(self, step: Callable[[str], None] | None = None) -> None:
        """Rebuild the cache from the database when its size has left the range its layout
        suits (exact search past the threshold, IVF cells sized for a much smaller or larger
        index). Only when the cache is in step with the database. `step` hears of a rebuild."""
        with self._lock:
            current = self._vectors
            dimensions = self._dimensions()
            if current is None or dimensions is None or self._generation != self.source.generation():
                return
            planned = planned_layout(current.count, self.settings, current.layout)
            if planned != current.layout:
                if step:
                    kind = "an approximate (IVF)" if planned.kind == "ivf" else "an exact"
                    step(f"building {kind} vector index of {current.count:,} vectors")
                # The old layout goes first: both at once would hold every vector twice.
                generation, self._vectors, self._generation = self._generation, None, -1
                _give_back_memory()
                with self.source.transaction():
                    self._vectors = self._built(self.source.embedded_chunk_ids(), dimensions)
                self._generation = generation
                self._saved_generation = -1  # the file has the old layout

    def save(self) -> None:
        """Write the cache as it is in memory (StorageError when the disk refuses)."""
        with self._lock:
            if self._vectors is not None:
                self._vectors.save(self.directory, self._generation)
                self._saved_generation = self._generation

    def behind(self) -> bool:
        """Whether the file reflects less than memory does: what this process's writes, or a
        search's catch-up, brought it to."""
        return self._vectors is not None and self._generation != self._saved_generation

    def save_if_behind(self) -> None:
        """Save the cache if the file is behind the memory."""
        with self._lock:
            if self.behind():
                self.save()

    def rebuild(self) -> None:
        """Forget the cache and build it again from the database, and save it."""
        with self._lock:
            self.reset()
            self.current()
            self.save()

    def reset(self, settings: VectorSettings | None = None) -> None:
        """Delete the saved cache and forget it (and take new layout settings)."""
        with self._lock:
            for name in FILES:
                (self.directory / name).unlink(missing_ok=True)
            if settings is not None:
                self.settings = settings
            self._vectors = None
            self._generation = self._saved_generation = -1

    # -- what it holds ----------------------------------------------------------------------

    def note(self) -> Note | None:
        """The note of the saved file (cheap: no FAISS)."""
        return read_note(self.directory)

    def disk_bytes(self) -> int:
        path = self.directory / INDEX_NAME
        return path.stat().st_size if path.exists() else 0

    def state(self, chunk_count: int) -> str | None:
        """How the saved file differs from the database, if it does."""
        import numpy as np

        dimensions = self._dimensions()
        if dimensions is None or chunk_count == 0:
            return None
        loaded = VectorIndex.load(self.directory)
        if loaded is None:
            return "the FAISS cache is missing or unreadable"
        index, note = loaded
        if index.dimensions != dimensions:
            return f"the FAISS cache has {index.dimensions} dimensions, the index {dimensions}"
        stored = self.source.embedded_chunk_ids()
        cached = np.sort(index.ids())
        if len(cached) != len(stored) or not np.array_equal(cached, stored):
            return f"the FAISS cache holds {len(cached)} vectors for {len(stored)} chunks"
        if note.generation != self.source.generation():
            return "the FAISS cache is marked as older than the database"
        return None

    def damage(self) -> str | None:
        """Whether the saved file, current by its ids and generation, holds the vectors the
        database holds, judged on a random sample of chunks (a damaged file that still loads
        would give wrong results, and no search would notice)."""
        import numpy as np

        dimensions = self._dimensions()
        stored = self.source.embedded_chunk_ids()
        loaded = VectorIndex.load(self.directory) if len(stored) and dimensions else None
        if loaded is None or dimensions is None:
            return None
        sample = np.sort(np.random.default_rng().choice(stored, size=min(CHECK_SAMPLE, len(stored)), replace=False))
        wrong = sum(loaded[0].disagreements(ids, matrix) for ids, matrix in self.source.chunk_vectors(dimensions, sample))
        return f"{wrong} of {len(sample)} sampled vectors differ from the database" if wrong else None


def _give_back_memory() -> None:
    """Return freed heap to the system before the largest allocation of a run.

    After a large file, the memory its chunks held is free but stays in the process (glibc
    keeps freed heap pages), and the new layout would be built on top of it. For the 50 MB
    file of benchmarks/large_file.py that is a good part of the IVF build's peak. A no-op
    where the C library has no malloc_trim (macOS, musl, Windows)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
