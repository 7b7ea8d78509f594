"""The FAISS index: a cache of the chunk vectors for fast search, and the only module importing faiss.

Vectors are L2-normalised and searched by inner product, so scores are cosine similarities.
Chunk ids from SQLite are the FAISS ids (IDMap2 for exact search, the inverted lists' own
ids for IVF), which stay stable under deletes. The file is written to a temporary name and
renamed, with a small JSON note of the store generation it reflects and of its layout; a
stale or missing file is brought up to date from SQLite.

Layouts. Up to `VectorSettings.approximate_above` vectors, search is exact (Flat): a scan
of every vector, which benchmarks/scale.py shows stays within a few milliseconds there.
Above it the index is an IVF: k-means cells (nlist ≈ 4·√N, as faiss recommends) trained on
a sample, and a query scans the `nprobe` nearest cells. `nprobe` is not assumed: at build
time it is raised until recall@10 against exact search, measured on a sample of the
index's own vectors (leave-one-out), reaches the target, then doubled, as real queries lie
further from the data; it and the measured recall are recorded in the note. The
layout is rebuilt from SQLite when the count leaves the range it was built for, with
hysteresis so an index near the threshold is not rebuilt back and forth. SQ8 compression
(one byte per dimension instead of four) is an opt-in setting for very large indexes.

Saved files are memory-mapped on load, so opening a large index costs milliseconds and a
search only reads the cells it probes, asking for them all at once (`readahead`). A mapped
index is read-only: the first change reads it into memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SemsearchError, StorageError
from .readahead import ReadAhead

if TYPE_CHECKING:
    import numpy as np

INDEX_NAME = "vectors.faiss"
NOTE_NAME = "vectors.json"

# Exact search up to this many vectors; see benchmarks/README.md ("Speed at scale") for
# the Flat latency against N that puts it here.
APPROXIMATE_ABOVE = 25_000
# An IVF index is rebuilt when the count grows past GROWTH times, or falls below
# 1/GROWTH of, the count its cells were trained for; back to Flat below half the threshold.
GROWTH = 4
# Vectors whose own neighbours are compared, exact against approximate, to choose nprobe.
CALIBRATION_SAMPLE = 256
# Training points per cell: faiss asks for at least 39; more costs time for little gain.
TRAINING_PER_CELL = 40
ENCODINGS = ("float32", "sq8")

ReadVectors = Callable[["np.ndarray | None"], Iterator[tuple["np.ndarray", "np.ndarray"]]]


@dataclass(frozen=True)
class VectorSettings:
    """How the vector index is laid out: when to go approximate, compression, recall target.

    Stored with the index. `approximate_above`: exact search up to this many vectors.
    `encoding`: "float32" or "sq8" (8-bit scalar quantisation: 4× smaller, a little recall
    lost). `recall`: the recall@10 against exact search that an IVF's nprobe must reach on
    its calibration sample.
    """

    approximate_above: int = APPROXIMATE_ABOVE
    encoding: str = "float32"
    recall: float = 0.95

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise SemsearchError(f"Unknown vector encoding {self.encoding!r}: use one of {', '.join(ENCODINGS)}.")
        if self.approximate_above < 1 or not 0 < self.recall <= 1:
            raise SemsearchError("approximate_above must be at least 1 and recall between 0 and 1.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VectorSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass(frozen=True)
class Layout:
    """The shape of a FAISS index: exact or IVF, its encoding and parameters."""

    kind: str = "flat"  # "flat" or "ivf"
    encoding: str = "float32"
    nlist: int = 0
    nprobe: int = 0
    trained_for: int = 0  # the vector count the cells were sized for
    recall: float | None = None  # recall@10 against exact, measured when built

    def describe(self) -> str:
        name = self.kind if self.encoding == "float32" else f"{self.kind}-{self.encoding}"
        if self.kind != "ivf":
            return name
        measured = f", recall@10 {self.recall:.3f}" if self.recall is not None else ""
        return f"{name} (nlist {self.nlist}, nprobe {self.nprobe}{measured})"


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

    @property
    def layout(self) -> Layout:
        return Layout(self.kind, self.encoding, self.nlist, self.nprobe, self.trained_for, self.recall)

    @property
    def memory_bytes(self) -> int:
        """The bytes the vectors, ids and cells take when held in memory."""
        return _footprint(self.count, self.dimensions, self.layout)


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


def planned_layout(count: int, settings: VectorSettings, current: Layout | None = None) -> Layout:
    """The layout `count` vectors should have; `current` is kept while it is still fit."""
    if current is not None and current.encoding == settings.encoding:
        if current.kind == "flat" and count <= settings.approximate_above:
            return current
        if (
            current.kind == "ivf"
            and count > settings.approximate_above // 2
            and current.trained_for / GROWTH <= count <= current.trained_for * GROWTH
        ):
            return current
    if count <= settings.approximate_above:
        return Layout("flat", settings.encoding)
    nlist = max(16, int(4 * math.sqrt(count)))
    return Layout("ivf", settings.encoding, nlist=nlist, trained_for=count)


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
        return _footprint(self.count, self.dimensions, self.layout)

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
        batches = list(read(chosen))
        sample_ids = np.concatenate([batch_ids for batch_ids, _ in batches] or [np.zeros(0, np.int64)])
        sample = normalised(np.concatenate([m for _, m in batches] or [np.zeros((0, dimensions), np.float32)]))
        del batches
        if len(sample) < cells:
            raise SemsearchError(f"An IVF index of {cells} cells needs at least {cells} vectors to train on.")
        index._index.train(sample)
        if layout.kind == "flat":
            for batch_ids, matrix in read(None):
                index.add(batch_ids, matrix)
            return index
        rows = rng.choice(len(sample), min(CALIBRATION_SAMPLE, len(sample)), replace=False)
        probe, probe_ids = sample[rows], sample_ids[rows]
        del sample
        exact = _ExactNeighbours(probe, 11)
        for batch_ids, matrix in read(None):
            matrix = normalised(matrix)
            index._index.add_with_ids(matrix, np.ascontiguousarray(batch_ids, dtype=np.int64))
            exact.update(batch_ids, matrix)
        nprobe, measured = _calibrate(index._index, probe, probe_ids, exact, layout.nlist, recall, layout.encoding != "float32")
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


class _ExactNeighbours:
    """The exact top `k` of each query over vectors seen batch by batch."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        import numpy as np

        self.queries = queries
        self.k = k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype=np.int64)

    def update(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        import numpy as np

        scores = np.concatenate([self.scores, self.queries @ matrix.T], axis=1)
        every = np.concatenate([self.ids, np.broadcast_to(np.asarray(ids, dtype=np.int64), (len(self.queries), len(ids)))], axis=1)
        keep = min(self.k, scores.shape[1])
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        self.scores = np.take_along_axis(scores, top, axis=1)
        self.ids = np.take_along_axis(every, top, axis=1)


def recall_at(found, exact, k: int = 10) -> float:
    """Mean share of each row's exact top `k` that the same row of `found` holds in its top `k`."""
    hits = [len(set(list(f)[:k]) & set(list(e)[:k])) / max(min(k, len(e)), 1) for f, e in zip(found, exact)]
    return float(sum(hits) / max(len(hits), 1))


def _calibrate(
    index, probe: np.ndarray, probe_ids: np.ndarray, exact: _ExactNeighbours, nlist: int, target: float, quantised: bool
) -> tuple[int, float]:
    """Twice the smallest nprobe (doubling) whose recall@10 on `probe` reaches `target`, and
    the recall at the nprobe returned.

    The probe vectors are the index's own, so each finds itself; it is left out of both
    lists (leave-one-out), as a query is never exactly a stored passage. A hit counts when
    its score reaches the exact 10th best, so ties in the exact list do not count as misses.
    Compressed vectors cannot reach every exact neighbour even when every cell is probed:
    for them the target is capped just below that ceiling.
    """
    import numpy as np

    faiss = _faiss()
    # A small margin over the target, as the sample only estimates the index's recall.
    goal = min(1.0, target + 0.01)
    order = np.argsort(-exact.scores, axis=1)
    exact_ids = np.take_along_axis(exact.ids, order, axis=1)
    exact_scores = np.take_along_axis(exact.scores, order, axis=1)
    others = exact_ids != probe_ids[:, None]
    tenth = np.array([scores[keep][:10][-1] if keep.any() else -np.inf for scores, keep in zip(exact_scores, others)])
    wanted = np.minimum(others.sum(axis=1), 10)

    def measure(nprobe: int) -> float:
        scores, found = index.search(probe, 11, params=faiss.SearchParametersIVF(nprobe=nprobe))
        valid = (found >= 0) & (found != probe_ids[:, None])
        hits = np.array([
            min(int((row_scores[keep][:10] >= limit - 1e-5).sum()), need)
            for row_scores, keep, limit, need in zip(scores, valid, tenth, wanted)
        ])
        return float(np.mean(hits / np.maximum(wanted, 1)))

    if quantised:
        goal = min(goal, measure(nlist) - 0.01)
    nprobe = 1
    while nprobe < nlist and measure(nprobe) < goal:
        nprobe = min(nprobe * 2, nlist)
    # A query lies further from the data than the index's own vectors do, and its
    # neighbours spread over more cells: probe twice as many (still a few percent).
    nprobe = min(nprobe * 2, nlist)
    return nprobe, round(measure(nprobe), 4)


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


def _footprint(count: int, dimensions: int, layout: Layout) -> int:
    code = dimensions * (1 if layout.encoding == "sq8" else 4)
    return count * (code + 8) + layout.nlist * dimensions * 4


def _kind(index) -> str:
    faiss = _faiss()
    return "ivf" if faiss.try_extract_index_ivf(index) is not None else "flat"


def _identity(path: Path | None) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _write_json(path: Path, value: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(value))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
