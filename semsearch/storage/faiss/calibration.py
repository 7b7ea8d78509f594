"""Choosing an IVF index's nprobe by measuring it: recall@10 against exact search, on a
sample of the index's own vectors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Vectors whose own neighbours are compared, exact against approximate, to choose nprobe.
CALIBRATION_SAMPLE = 256


class ExactNeighbours:
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


def calibrate(
    index, probe: np.ndarray, probe_ids: np.ndarray, exact: ExactNeighbours, nlist: int, target: float, quantised: bool
) -> tuple[int, float]:
    """Twice the smallest nprobe (doubling) whose recall@10 on `probe` reaches `target`, and
    the recall at the nprobe returned.

    The probe vectors are the index's own, so each finds itself; it is left out of both
    lists (leave-one-out), as a query is never exactly a stored passage. A hit counts when
    its score reaches the exact 10th best, so ties in the exact list do not count as misses.
    Compressed vectors cannot reach every exact neighbour even when every cell is probed:
    for them the target is capped just below that ceiling.
    """
    import faiss
    import numpy as np

    # A small margin over the target, as the sample only estimates the index's recall.
    goal = min(1.0, target + 0.01)
    order = np.argsort(-exact.scores, axis=1)
    exact_ids = np.take_along_axis(exact.ids, order, axis=1)
    exact_scores = np.take_along_axis(exact.scores, order, axis=1)
    others = exact_ids != probe_ids[:, None]
    tenth = np.array([scores[keep][:10][-1] if keep.any() else -np.inf for scores, keep in zip(exact_scores, others)])
    wanted = np.minimum(others.sum(axis=1), 10)

    def measure(nprobe: int) -> float:
        scores, found = index.search(probe, 11, params=faiss.SearchParametersIVF(nprobe=nprobe))  # type: ignore[call-arg]
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
