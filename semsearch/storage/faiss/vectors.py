"""The FAISS index: a cache of the chunk vectors for fast search, and the only module importing faiss.

Vectors are L2-normalised and searched by inner product, so scores are cosine similarities.
Chunk ids from SQLite are the FAISS ids (IDMap2 for exact search, the inverted lists' own
ids for IVF), which stay stable under deletes. The file is written to a temporary name and
renamed, with a small JSON note of the store generation it reflects and of its layout; a
stale or missing file is brought up to date from SQLite.

Layouts (layout.py): exact search up to a threshold, an IVF above it whose `nprobe` is not
assumed but measured at build time (calibration.py) and recorded in the note. SQ8
compression (one byte per dimension instead of four) is an opt-in setting for very large
indexes.

Saved files are memory-mapped on load, so opening a large index costs milliseconds and a
search only reads the cells it probes, asking for them all at once (`readahead`). A mapped
index is read-only: the first change reads it into memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import SemsearchError, StorageError
from .calibration import CALIBRATION_SAMPLE, ExactNeighbours, calibrate
from .layout import Layout, footprint
from .readahead import ReadAhead

if TYPE_CHECKING:
    import numpy as np

INDEX_NAME = "vectors.faiss"
NOTE_NAME = "vectors.json"
# Training points per cell: faiss asks for at least 39; more costs time for little gain.
TRAINING_PER_CELL = 40
# An IVF whose calibrated nprobe exceeds this share of its cells scans about as much as an
# exact search, plus its own overhead: exact search is kept instead.
MOST_CELLS = 0.5

ReadVectors = Callable[["np.ndarray | None"], Iterator[tuple["np.ndarray", "np.ndarray"]]]


@dataclass(frozen=True)
class Note:
    """What a saved FAISS file reflects, and how it is laid out."""

    generation: int
    count: int
    dimensions: int
    kind: str = "flat"
    encoding: str = "float32"
    nlist: int = 0
    nprobe: int = 0
    trained_for: int = 0
    recall: float | None = None
    reason: str | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.kind, self.encoding, self.nlist, self.nprobe, self.trained_for, self.recall, self.reason)

    @property
    def memory_bytes(self) -> int:
        """The bytes the vectors, ids and cells take when held in memory."""
        return footprint(self.count, self.dimensions, self.layout)


def read_note(directory: Path) -> Note | None:
    """The note of the saved FAISS file, or None when missing or unreadable (cheap: no FAISS)."""
    try:
        return Note(**json.loads((directory / NOTE_NAME).read_text()))
    except (OSError, ValueError, TypeError):
        return None


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


def _empty(dimensions: int, layout: Layout):
    faiss = _faiss()
    inner = faiss.METRIC_INNER_PRODUCT
    if layout.kind == "flat":
        if layout.encoding == "sq8":
            return faiss.IndexIDMap2(faiss.IndexScalarQuantizer(dimensions, faiss.ScalarQuantizer.QT_8bit, inner))
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))
    quantizer = faiss.IndexFlatIP(dimensions)
    if layout.encoding == "sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, dimensions, layout.nlist, faiss.ScalarQuantizer.QT_8bit, inner)
    else:
        index = faiss.IndexIVFFlat(quantizer, dimensions, layout.nlist, inner)
    # Cosine: the cells' centroids are normalised too.
    index.cp.spherical = True
    index.cp.niter = 10
    index.cp.max_points_per_centroid = TRAINING_PER_CELL
    return index


def _reserve(index, sample: np.ndarray, total: int) -> None:
    """Make room in each cell of a trained IVF for the vectors the sample says will land
    there. Cells filled one batch at a time grow by doubling, which at the end of a build
    holds up to twice the index's size; room made ahead (a little over the estimate) does
    not, and a cell that outgrows its estimate still grows as before."""
    import numpy as np

    _, cells = index.quantizer.search(sample, 1)
    counts = np.bincount(cells[:, 0], minlength=index.nlist)
    expected = np.ceil(counts * (total / max(len(sample), 1)) * (1.0 if len(sample) >= total else 1.1)).astype(np.int64)
    lists = index.invlists
    for cell in np.flatnonzero(expected):
        # resize up and back down: the size stays 0, the capacity stays reserved.
        lists.resize(int(cell), int(expected[cell]))
        lists.resize(int(cell), 0)


class VectorIndex:
    """Inner-product search over normalised vectors, keyed by chunk id: exact or IVF."""

    def __init__(self, dimensions: int, index=None, layout: Layout | None = None, source: Path | None = None) -> None:
        self.dimensions = dimensions
        self.layout = layout or Layout()
        self._index = index if index is not None else _empty(dimensions, self.layout)
        # A memory-mapped file (read-only) and its identity, or None when held in memory.
        self._source = source
        self._source_stat = _identity(source) if source is not None else None
        self._read_ahead = ReadAhead()

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def mapped(self) -> bool:
        return self._source is not None

    def ids(self) -> np.ndarray:
        import numpy as np

        faiss = _faiss()
        if self.count == 0:
            return np.zeros(0, dtype=np.int64)
        if self.layout.kind == "flat":
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists
        parts = []
        for number in range(lists.nlist):
            size = lists.list_size(number)
            if size:
                parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
        return np.sort(np.concatenate(parts)).astype(np.int64)

    def memory_bytes(self) -> int:
        """The bytes the vectors, ids and cells take when held in memory (a search of a
        mapped file keeps only the parts it reads)."""
        return footprint(self.count, self.dimensions, self.layout)

    def _writable(self) -> None:
        """Read a memory-mapped file into memory before the first change."""
        if self._source is None:
            return
        faiss = _faiss()
        # Files are only ever replaced by rename, so the same inode means the same content.
        if _identity(self._source) == self._source_stat:
            index = faiss.read_index(str(self._source))
            if _identity(self._source) != self._source_stat:
                index = None
        else:
            index = None
        if index is None:
            index = faiss.deserialize_index(faiss.serialize_index(self._index))
        self._index = index
        self._configure()
        self._source = self._source_stat = None

    def _configure(self) -> None:
        if self.layout.kind == "ivf":
            self._index.nprobe = max(1, self.layout.nprobe)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        import numpy as np

        if len(ids):
            self._writable()
            self._index.add_with_ids(normalised(vectors), np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids) -> None:
        import numpy as np

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids):
            self._writable()
            self._index.remove_ids(_faiss().IDSelectorBatch(ids))

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, *, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest chunk ids and their cosine scores, best first.

        `allowed` restricts the search to those chunk ids (filters are applied before the
        cut to `k`, so a filter never hides a match that exists). An IVF index probes more
        cells when a filter admits a small share of the vectors, so about as many admitted
        vectors are compared as without one. `nprobe` overrides the calibrated value.
        """
        import numpy as np

        faiss = _faiss()
        k = min(k, self.count if allowed is None else min(self.count, len(allowed)))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if self.layout.kind == "ivf":
            probes = nprobe or self.layout.nprobe or 1
            if allowed is not None:
                probes = math.ceil(probes * self.count / max(len(allowed), 1))
            params = faiss.SearchParametersIVF(nprobe=min(max(probes, 1), self.layout.nlist))
            if selector is not None:
                params.sel = selector
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        # One query is searched by one thread: faiss parallelises over queries anyway, and
        # waking (and, on a busy machine, spinning) a second OpenMP thread costs more than it brings.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            if self._source is not None:
                scores, ids = self._search_mapped(normalised(query), k, params)
            else:
                scores, ids = self._index.search(normalised(query), k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def disagreements(self, ids: np.ndarray, matrix: np.ndarray) -> int:
        """How many of these chunks (their ids and stored vectors) this index does not hold
        as stored. Searched for with its own vector, a chunk comes back among the first ten
        with a cosine of about 1 (SQ8 rounds it), unless ten copies of its text outrank it.
        One cell is enough for an IVF: a vector was filed in the cell nearest to it."""
        wrong = 0
        for chunk_id, vector in zip(ids.tolist(), matrix):
            found, scores = self.search(vector, 10, nprobe=1)
            own = scores[found == chunk_id]
            if len(scores) and scores[0] > 1.01:  # no cosine is above 1
                wrong += 1
            elif len(own):
                wrong += int(own[0] < 0.98)
            else:
                wrong += int(not (len(scores) == 10 and scores[-1] >= 0.98))
        return wrong

    def _search_mapped(self, query: np.ndarray, k: int, params) -> tuple[np.ndarray, np.ndarray]:
        """Search a memory-mapped file, having asked the kernel to read what the search will
        touch (see `readahead`): every vector of an exact index, the probed cells of an IVF."""
        import numpy as np

        faiss = _faiss()
        if self.layout.kind != "ivf":
            self._read_ahead(["vectors"], lambda _: [_code_range(self._index.index)])
            return self._index.search(query, k, params=params)
        # What IndexIVF.search does, with the cells' lists read ahead between its two steps.
        self._read_ahead(["centroids"], lambda _: [_code_range(self._index.quantizer)])
        cell_scores, cells = self._index.quantizer.search(query, params.nprobe)
        self._read_ahead(cells[0].tolist(), lambda due: _cell_ranges(self._index.invlists, due))
        scores = np.empty((1, k), dtype=np.float32)
        ids = np.empty((1, k), dtype=np.int64)
        self._index.search_preassigned_c(
            1, faiss.swig_ptr(query), k, faiss.swig_ptr(cells), faiss.swig_ptr(cell_scores),
            faiss.swig_ptr(scores), faiss.swig_ptr(ids), False, params,
        )
        return scores, ids

    @classmethod
    def build(
        cls, dimensions: int, ids: np.ndarray, read: ReadVectors, layout: Layout, recall: float = 0.95
    ) -> VectorIndex:
        """A new index of `layout` holding the vectors of `ids`, read through `read(ids or None)`
        (None: every vector, in batches). An IVF is trained on a sample, then its nprobe is
        calibrated to reach `recall` (recall@10 against exact search) and recorded."""
        import numpy as np

        index = cls(dimensions, None, layout)
        if layout.kind == "flat" and layout.encoding == "float32":
            for batch_ids, matrix in read(None):
                index.add(batch_ids, matrix)
            return index
        rng = np.random.default_rng(len(ids))
        cells = max(layout.nlist, 1)
        wanted = min(len(ids), max(cells * TRAINING_PER_CELL, 10_000))
        chosen = np.sort(rng.choice(ids, wanted, replace=False)) if wanted < len(ids) else np.asarray(ids)
        # Filled in place, batch by batch: one copy of the sample, not three.
        sample = np.empty((len(chosen), dimensions), dtype=np.float32)
        sample_ids = np.empty(len(chosen), dtype=np.int64)
        filled = 0
        for batch_ids, matrix in read(chosen):
            sample[filled : filled + len(batch_ids)] = matrix
            sample_ids[filled : filled + len(batch_ids)] = batch_ids
            filled += len(batch_ids)
        sample, sample_ids = sample[:filled], sample_ids[:filled]
        norms = np.linalg.norm(sample, axis=1, keepdims=True)
        np.divide(sample, norms, out=sample, where=norms > 0)
        if len(sample) < cells:
            raise SemsearchError(f"An IVF index of {cells} cells needs at least {cells} vectors to train on.")
        index._index.train(sample)
        if layout.kind == "flat":
            for batch_ids, matrix in read(None):
                index.add(batch_ids, matrix)
            return index
        _reserve(index._index, sample, len(ids))
        rows = rng.choice(len(sample), min(CALIBRATION_SAMPLE, len(sample)), replace=False)
        probe, probe_ids = sample[rows], sample_ids[rows]
        del sample
        exact = ExactNeighbours(probe, 11)
        for batch_ids, matrix in read(None):
            matrix = normalised(matrix)
            index._index.add_with_ids(matrix, np.ascontiguousarray(batch_ids, dtype=np.int64))
            exact.update(batch_ids, matrix)
        nprobe, measured = calibrate(index._index, probe, probe_ids, exact, layout.nlist, recall, layout.encoding != "float32")
        if nprobe > layout.nlist * MOST_CELLS:
            del index
            reason = (
                f"exact search kept: an IVF needed {nprobe} of its {layout.nlist} cells for recall@10 {recall:g}, "
                "as the vectors form no clusters"
            )
            return cls.build(dimensions, ids, read, Layout("flat", layout.encoding, trained_for=len(ids), reason=reason))
        index.layout = replace(layout, nprobe=nprobe, recall=measured)
        index._configure()
        return index

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
        if self._source is not None and self._source == target and _identity(target) == self._source_stat:
            # Mapped from this very file and never changed: only the note can be behind.
            self._write_note(directory, generation)
            return
        temporary = directory / f".{INDEX_NAME}.{os.getpid()}.tmp"
        try:
            faiss.write_index(self._index, str(temporary))
            os.replace(temporary, target)
            self._write_note(directory, generation)
        except (OSError, RuntimeError) as exc:
            raise StorageError(
                f"Could not save the vector cache in {directory} ({exc}). The database is intact; "
                "free some space or fix the folder's permissions, and the cache is rebuilt on next use."
            ) from None
        finally:
            temporary.unlink(missing_ok=True)

    def _write_note(self, directory: Path, generation: int) -> None:
        note = Note(generation, self.count, self.dimensions, **{
            key: value for key, value in asdict(self.layout).items()
        })
        _write_json(directory / NOTE_NAME, asdict(note))

    @classmethod
    def load(cls, directory: Path) -> tuple[VectorIndex, Note] | None:
        """The saved index (memory-mapped) and its note, or None when missing or unreadable."""
        faiss = _faiss()
        note = read_note(directory)
        path = directory / INDEX_NAME
        if note is None:
            return None
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        except (OSError, RuntimeError):
            return None
        if index.d != note.dimensions or _kind(index) != note.kind:
            return None
        loaded = cls(note.dimensions, index, note.layout, source=path)
        loaded._configure()
        return loaded, note


def _code_range(index) -> tuple[int, int]:
    """(address, length) of the vectors of an exact index (a mapped file's IVF centroids too)."""
    codes = _faiss().downcast_index(index).codes
    return int(codes.data()), codes.size()


def _cell_ranges(lists, cells) -> list[tuple[int, int]]:
    """(address, length) of the codes and of the ids of each cell's inverted list."""
    ranges = []
    for cell in cells:
        size = lists.list_size(cell) if cell >= 0 else 0
        if size:
            ranges += [(int(lists.get_codes(cell)), size * lists.code_size), (int(lists.get_ids(cell)), size * 8)]
    return ranges


def _kind(index) -> str:
    faiss = _faiss()
    return "ivf" if faiss.try_extract_index_ivf(index) is not None else "flat"


def _identity(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _write_json(path: Path, value: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(value))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
