"""Writing to a local index: SQLite transactions, with the FAISS cache following each commit."""

from __future__ import annotations

import json
import time
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
        # Hashes `stored_vectors` found without a vector row.
        self._absent: set[bytes] = set()
        # Hashes whose row waits for its vector (backlog.py).
        self._waiting: set[bytes] = set()
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

        # A chunk may be added twice in one transaction (written, then its vector replaced).
        added = np.unique(np.asarray(self._added, dtype=np.int64))
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
        self._waiting.clear()
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

    def _learn(self, hashes: Iterable[bytes]) -> None:
        """Look up the vector rows of hashes this writer has not seen yet."""
        wanted = [digest for digest in hashes if digest not in self._vector_ids and digest not in self._absent]
        if not wanted or self._only_own_vectors:
            return
        found = self.store.vector_rows(wanted)
        for digest, (vector_id, waiting) in found.items():
            self._vector_ids[digest] = vector_id
            if waiting:
                self._waiting.add(digest)
        self._absent.update(digest for digest in wanted if digest not in found)

    def stored_vectors(self, hashes: Iterable[bytes]) -> set[bytes]:
        hashes = list(hashes)
        self._learn(hashes)
        return {digest for digest in hashes if digest in self._vector_ids and digest not in self._waiting}

    def waiting_texts(self, limit: int, exclude: set[bytes]) -> list[tuple[bytes, str]]:
        return self.store.waiting_texts(limit, exclude)

    def waiting_count(self) -> int:
        return self.store.waiting_text_count()

    def reject(self, hashes: Iterable[bytes]) -> list[str]:
        documents = self.store.documents_waiting_for(list(hashes))
        if not documents:
            return []
        paths = [path for path, _ in self.store.document_paths(documents)]
        self.remove_documents(documents)
        return paths

    def commit(self, change: Commit) -> Committed:
        if change.vectors:
            self._learn(digest for digest, _ in change.vectors)
        # The cache takes this commit's changes if it is current before it: documents, and
        # vectors that change what chunks already written hold.
        if change.documents or change.replace_vectors or any(digest in self._waiting for digest, _ in change.vectors):
            self._current_cache()
        removed: list[int] = []
        added: list[int] = []
        with self.transaction():
            # New texts' vectors first, for the documents to refer to; then the documents;
            # then the vectors of texts that waited (or, forced, are replaced), so that only
            # chunks still there after the documents changed join the cache with them.
            later = self._store_new_vectors(change) if change.vectors else []
            if change.documents:
                removed, added = self._write_documents(change)
            if later:
                self._store_known_vectors(change, later)
            if change.touches:
                self.store.touch_documents(change.touches)
        return Committed(chunks_added=len(added), chunks_removed=len(removed))

    def _store_new_vectors(self, change: Commit) -> list[int]:
        """Store the vectors of texts without a row yet; returns the positions of the others."""
        import numpy as np

        self._check_dimensions(len(change.vectors[0][1]))
        hashes = [digest for digest, _ in change.vectors]
        self._learn(hashes)
        fresh = [number for number, digest in enumerate(hashes) if digest not in self._vector_ids]
        if fresh:
            digests = [hashes[number] for number in fresh]
            # Hashes this writer saw missing stay missing (it alone writes): no need to read
            # their ids back. (INSERT fails loudly, never silently, if one is not.)
            ids = self.store.add_vectors(
                digests, np.stack([change.vectors[number][1] for number in fresh]), new=len(set(digests)) == len(digests)
            )
            self._vector_ids.update(zip(digests, ids))
        seen = set(fresh)
        return [number for number in range(len(hashes)) if number not in seen]

    def _store_known_vectors(self, change: Commit, positions: list[int]) -> None:
        """Fill the rows of waiting texts, and (forced) replace stored vectors; the chunks
        using them join the cache with their new vectors."""
        import numpy as np

        filling = [number for number in positions if change.vectors[number][0] in self._waiting]
        replacing = [number for number in positions if number not in set(filling)] if change.replace_vectors else []
        vectors = {self._vector_ids[change.vectors[number][0]]: change.vectors[number][1] for number in filling + replacing}
        if filling:
            ids = [self._vector_ids[change.vectors[number][0]] for number in filling]
            self.store.fill_vectors(ids, np.stack([change.vectors[number][1] for number in filling]))
            self._waiting.difference_update(change.vectors[number][0] for number in filling)
        if replacing:
            self.store.add_vectors(
                [change.vectors[number][0] for number in replacing],
                np.stack([change.vectors[number][1] for number in replacing]), replace=True,
            )
        pairs = self.store.chunk_vector_ids(list(vectors))
        if replacing:
            # Already in the cache with their old vectors.
            self._removed += [chunk_id for chunk_id, vector_id in pairs if vector_id in vectors]
        self._added += [chunk_id for chunk_id, _ in pairs]
        if self.cache.reflects(self._start):
            for chunk_id, vector_id in pairs:
                self._added_vectors[chunk_id] = vectors[vector_id]

    def _write_documents(self, change: Commit) -> tuple[list[int], list[int]]:
        """Write the commit's documents; their texts without a vector row wait for one."""
        waiting: dict[bytes, tuple[str, int]] = {}
        raised: dict[int, int] = {}
        # Each text's hash, worked out once: (document, [(hash, text), ...]).
        texts = [(write, [pair for chunk in write.chunks for pair in chunk.embedded()]) for write in change.documents]
        self._learn(digest for _, pairs in texts for digest, _ in pairs)
        for write, pairs in texts:
            # The newest documents' texts are embedded first; records have no file time.
            priority = write.record.mtime_ns or time.time_ns()
            for digest, text in pairs:
                if digest not in self._vector_ids:
                    if digest not in waiting or waiting[digest][1] < priority:
                        waiting[digest] = (text, priority)
                elif digest in self._waiting:
                    vector_id = self._vector_ids[digest]
                    raised[vector_id] = max(raised.get(vector_id, 0), priority)
        if waiting:
            ids = self.store.add_waiting([(digest, text, priority) for digest, (text, priority) in waiting.items()])
            self._vector_ids.update(zip(waiting, ids))
            self._waiting.update(waiting)
            self._absent.difference_update(waiting)
        if raised:
            self.store.raise_priority(raised.items())
        parts = [part.hash for write in change.documents for chunk in write.chunks for part in chunk.parts]
        removed, added = self.store.replace_documents(
            [(write.record, write.chunks, [self._vector_ids[digest] for digest in write.hashes]) for write in change.documents],
            {digest: self._vector_ids[digest] for digest in parts if digest in self._vector_ids},
        )
        self._forget_dropped()
        self._removed += removed
        # The cache holds the chunks whose vector is there; the others join it when it comes.
        latest = {write.record.path: write for write in change.documents}.values()
        hashes = [digest for write in latest for _, digest in zip(write.chunks, write.hashes)]
        if len(hashes) != len(added):
            waiting_ids = self.store.waiting_among(added)
            self._added += [chunk_id for chunk_id in added if chunk_id not in waiting_ids]
            return removed, added  # their vectors are read back from the database
        brought = dict(change.vectors) if change.vectors and self.cache.reflects(self._start) else {}
        for chunk_id, digest in zip(added, hashes):
            if digest in self._waiting:
                continue
            self._added.append(chunk_id)
            vector = brought.get(digest)
            if vector is not None:
                self._added_vectors[chunk_id] = vector
        return removed, added

    def remove_documents(self, document_ids: Sequence[int]) -> int:
        if not document_ids:
            return 0
        self._current_cache()
        with self.transaction():
            removed = self.store.remove_documents(list(document_ids))
            self._forget_dropped()
            self._removed += removed
        return len(removed)

    def _forget_dropped(self) -> None:
        """Forget the rows of waiting texts the store deleted with their last chunk."""
        dropped = self.store.dropped_waiting
        if not dropped:
            return
        for digest in [digest for digest in self._waiting if self._vector_ids[digest] in dropped]:
            self._waiting.discard(digest)
            del self._vector_ids[digest]
            self._absent.add(digest)
        dropped.clear()

    def _check_dimensions(self, dimensions: int) -> None:
        """The first vectors of an index set its size; later ones must have it."""
        known = self.store.dimensions()
        if known is None:
            self.store.set_meta({"dimensions": str(dimensions)})
        else:
            check_dimensions(self.location, known, dimensions)
