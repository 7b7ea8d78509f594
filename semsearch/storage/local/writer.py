"""Writing to a local index: SQLite transactions, with the FAISS cache following each commit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ...settings import VectorSettings, check_dimensions
from ..base import Commit, Committed, Writer

if TYPE_CHECKING:
    import numpy as np

    from ...readers.walk import Skipped
    from ..faiss.cache import VectorCache
    from ..sqlite.store import Store


class LocalWriter(Writer):
    """The writer of one `LocalBackend.writer()` block (the write lock is held)."""

    def __init__(self, store: Store, cache: VectorCache, location: str) -> None:
        self.store = store
        self.cache = cache
        self.location = location
        # Text hash -> stored vector id, as learned during this run.
        self._vector_ids: dict[bytes, int] = {}
        # An index that held no vectors when the lock was taken has only those this writer
        # stored: asking the database about any other is a query that finds nothing.
        self._only_own_vectors = store.db.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() is None
        # Hashes `stored_vectors` found without a vector.
        self._absent: set[bytes] = set()
        self._depth = 0
        # The database generation when the outermost transaction began, and the chunk ids
        # its changes removed and added: applied to the cache once it commits.
        self._start = -1
        self._removed: list[int] = []
        self._added: list[int] = []
        # The vectors of added chunks that came in this transaction, by chunk id: the cache
        # takes them from here rather than reading back what was just written.
        self._added_vectors: dict[int, np.ndarray] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth == 0:
            self._start = self.store.generation()
            self._removed, self._added, self._added_vectors = [], [], {}
        self._depth += 1
        try:
            with self.store.transaction():
                yield
        finally:
            self._depth -= 1
        if self._depth == 0:
            self._follow()

    def _follow(self) -> None:
        """Apply the committed change to the cache, if the cache was current before it (else
        the next search brings it up to date by comparing ids)."""
        dimensions = self.store.dimensions()
        if not (self._removed or self._added) or dimensions is None or not self.cache.reflects(self._start):
            return
        import numpy as np

        added = np.asarray(self._added, dtype=np.int64)
        known = self._added_vectors

        def vectors(ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            held = np.fromiter((int(i) in known for i in ids), dtype=bool, count=len(ids))
            if held.any():
                yield ids[held], np.stack([known[int(i)] for i in ids[held]])
            if not held.all():
                yield from self.store.chunk_vectors(dimensions, ids[~held])

        self.cache.applied(self._removed, added, vectors)
        self._added_vectors = {}

    def _current_cache(self) -> None:
        # Brought up to date before a change of chunks, so that the change can be applied
        # to it afterwards without comparing every id.
        if self._depth == 0 and self.store.dimensions() is not None:
            self.cache.sync()

    # -- settings and folders ---------------------------------------------------------------

    def set_settings(self, values: dict[str, str]) -> None:
        with self.transaction():
            self.store.set_meta(values)
        if "vectors" in values:
            # Rebuilt in the new layout when this writer is done (see LocalBackend._tidy).
            self.cache.reset(VectorSettings.from_dict(json.loads(values["vectors"])))

    def clear(self) -> None:
        with self.transaction():
            self.store.clear()
        self.cache.reset()
        self._vector_ids.clear()
        self._absent.clear()
        self._only_own_vectors = True

    def add_roots(self, roots: Iterable[str]) -> None:
        with self.transaction():
            self.store.add_roots(roots)

    def remove_roots(self, paths: Sequence[str]) -> None:
        with self.transaction():
            self.store.remove_roots(paths)

    def set_root_patterns(self, root: str, include: Sequence[str], exclude: Sequence[str]) -> None:
        with self.transaction():
            self.store.set_root_patterns(root, include, exclude)

    def set_root_size_limit(self, root: str, limit: int | None) -> None:
        with self.transaction():
            self.store.set_root_size_limit(root, limit)

    def replace_skipped(self, roots: Sequence[str], skipped: Iterable[Skipped], reader: int) -> None:
        with self.transaction():
            self.store.replace_skipped(roots, skipped, reader)

    # -- documents and vectors --------------------------------------------------------------

    def stored_vectors(self, hashes: Iterable[bytes]) -> set[bytes]:
        hashes = list(hashes)
        wanted = [digest for digest in hashes if digest not in self._vector_ids]
        if wanted and not self._only_own_vectors:
            found = self.store.vector_ids(wanted)
            self._vector_ids.update(found)
            self._absent.update(digest for digest in wanted if digest not in found)
        return {digest for digest in hashes if digest in self._vector_ids}

    def commit(self, change: Commit) -> Committed:
        import numpy as np

        if change.documents:
            self._current_cache()
        removed: list[int] = []
        added: list[int] = []
        with self.transaction():
            if change.vectors:
                self._check_dimensions(len(change.vectors[0][1]))
                hashes = [digest for digest, _ in change.vectors]
                # Hashes this writer saw missing stay missing (it alone writes): no need to
                # read their ids back. (INSERT fails loudly, never silently, if one is not.)
                new = len(set(hashes)) == len(hashes) and all(
                    digest not in self._vector_ids and (self._only_own_vectors or digest in self._absent) for digest in hashes
                )
                ids = self.store.add_vectors(
                    hashes, np.stack([vector for _, vector in change.vectors]), replace=change.replace_vectors, new=new
                )
                self._vector_ids.update(zip(hashes, ids))
            if change.documents:
                parts = [part.hash for write in change.documents for chunk in write.chunks for part in chunk.parts]
                wanted = [digest for write in change.documents for digest in write.hashes] + parts
                unknown = {digest for digest in wanted if digest not in self._vector_ids}
                if unknown and not self._only_own_vectors:
                    self._vector_ids.update(self.store.vector_ids(unknown))
                removed, added = self.store.replace_documents(
                    [
                        (write.record, write.chunks, [self._vector_ids[digest] for digest in write.hashes])
                        for write in change.documents
                    ],
                    {digest: self._vector_ids[digest] for digest in parts if digest in self._vector_ids},
                )
                self._removed += removed
                self._added += added
                self._hold_vectors(change, added)
            if change.touches:
                self.store.touch_documents(change.touches)
        return Committed(chunks_added=len(added), chunks_removed=len(removed))

    def _hold_vectors(self, change: Commit, added: list[int]) -> None:
        """Keep the vectors this commit brought for the chunks it added, by chunk id."""
        if not change.vectors or not self.cache.reflects(self._start):
            return
        brought = dict(change.vectors)
        # The chunks were written in this order (the last write of a path wins).
        latest = {write.record.path: write for write in change.documents}.values()
        hashes = [digest for write in latest for _, digest in zip(write.chunks, write.hashes)]
        if len(hashes) != len(added):
            return  # read back from the database instead
        for chunk_id, digest in zip(added, hashes):
            vector = brought.get(digest)
            if vector is not None:
                self._added_vectors[chunk_id] = vector

    def remove_documents(self, document_ids: Sequence[int]) -> int:
        if not document_ids:
            return 0
        self._current_cache()
        with self.transaction():
            removed = self.store.remove_documents(list(document_ids))
            self._removed += removed
        return len(removed)

    def _check_dimensions(self, dimensions: int) -> None:
        """The first vectors of an index set its size; later ones must have it."""
        known = self.store.dimensions()
        if known is None:
            self.store.set_meta({"dimensions": str(dimensions)})
        else:
            check_dimensions(self.location, known, dimensions)
