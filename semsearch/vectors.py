"""The FAISS index: a cache of the chunk vectors for fast search, and the only module importing faiss.

Vectors are L2-normalised and searched by inner product, so scores are cosine similarities.
Chunk ids from SQLite are the FAISS ids (IDMap2), which stay stable under deletes. The
file is written to a temporary name and renamed, with a small JSON note of the store
generation it reflects; a stale or missing file is brought up to date from SQLite.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import StorageError

if TYPE_CHECKING:
    import numpy as np

INDEX_NAME = "vectors.faiss"
NOTE_NAME = "vectors.json"


@dataclass(frozen=True)
class Note:
    """What a saved FAISS file reflects."""

    generation: int
    count: int
    dimensions: int
    kind: str = "flat"


def _faiss():
    import faiss

    return faiss


def normalised(matrix: np.ndarray) -> np.ndarray:
    """A float32, C-contiguous, L2-normalised copy (zero rows stay zero)."""
    import numpy as np

    matrix = np.array(matrix, dtype=np.float32, order="C", ndmin=2, copy=True)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


class VectorIndex:
    """Exact inner-product search over normalised vectors, keyed by chunk id."""

    def __init__(self, dimensions: int, index=None) -> None:
        faiss = _faiss()
        self.dimensions = dimensions
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        import numpy as np

        if self.count == 0:
            return np.zeros(0, dtype=np.int64)
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        import numpy as np

        if len(ids):
            self._index.add_with_ids(normalised(vectors), np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids) -> None:
        import numpy as np

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids):
            self._index.remove_ids(_faiss().IDSelectorBatch(ids))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest chunk ids and their cosine scores, best first.

        `allowed` restricts the search to those chunk ids (filters are applied before the
        cut to `k`, so a filter never hides a match that exists).
        """
        import numpy as np

        faiss = _faiss()
        k = min(k, self.count if allowed is None else min(self.count, len(allowed)))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)))
        scores, ids = self._index.search(normalised(query), k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def save(self, directory: Path, generation: int) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one.

        Call with the index's write lock held. Raises StorageError when the disk is full
        or the folder is not writable; the database is untouched by such a failure.
        """
        faiss = _faiss()
        # Temporary files of a killed writer: nobody else writes while we hold the lock.
        for stale in directory.glob(f".{INDEX_NAME}.*.tmp"):
            stale.unlink(missing_ok=True)
        target = directory / INDEX_NAME
        temporary = directory / f".{INDEX_NAME}.{os.getpid()}.tmp"
        try:
            faiss.write_index(self._index, str(temporary))
            os.replace(temporary, target)
            note = Note(generation, self.count, self.dimensions)
            _write_json(directory / NOTE_NAME, note.__dict__)
        except (OSError, RuntimeError) as exc:
            raise StorageError(
                f"Could not save the vector cache in {directory} ({exc}). The database is intact; "
                "free some space or fix the folder's permissions, and the cache is rebuilt on next use."
            ) from None
        finally:
            temporary.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path) -> tuple[VectorIndex, Note] | None:
        """The saved index and its note, or None when missing or unreadable."""
        try:
            note = Note(**json.loads((directory / NOTE_NAME).read_text()))
            index = _faiss().read_index(str(directory / INDEX_NAME))
        except (OSError, ValueError, TypeError, RuntimeError):
            return None
        if index.d != note.dimensions:
            return None
        return cls(note.dimensions, index), note


def _write_json(path: Path, value: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(value))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
