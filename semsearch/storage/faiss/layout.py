"""The shapes a FAISS index can take, and which one a number of vectors calls for.

Up to `VectorSettings.approximate_above` vectors, search is exact (Flat): a scan of every
vector, which benchmarks/scale.py shows stays within a few milliseconds there. Above it the
index is an IVF: k-means cells (nlist ≈ 4·√N, as faiss recommends) trained on a sample, and
a query scans the `nprobe` nearest cells (see calibration.py for how nprobe is chosen) —
unless the recall target needs more than half of them (vectors without cluster structure),
where a scan of every vector costs no more: exact search stays, with the reason. The
layout is rebuilt when the count leaves the range it was built for, with hysteresis so an
index near the threshold is not rebuilt back and forth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...settings import VectorSettings

# An IVF index is rebuilt when the count grows past GROWTH times, or falls below
# 1/GROWTH of, the count its cells were trained for; back to Flat below half the threshold.
GROWTH = 4


@dataclass(frozen=True)
class Layout:
    """The shape of a FAISS index: exact or IVF, its encoding and parameters."""

    kind: str = "flat"  # "flat" or "ivf"
    encoding: str = "float32"
    nlist: int = 0
    nprobe: int = 0
    trained_for: int = 0  # the vector count the cells were sized for
    recall: float | None = None  # recall@10 against exact, measured when built
    # Why the layout is not the one the count calls for: exact search kept where an IVF
    # would have had to probe most of its cells to reach the recall target.
    reason: str | None = None

    def describe(self) -> str:
        name = self.kind if self.encoding == "float32" else f"{self.kind}-{self.encoding}"
        if self.reason:
            return f"{name} ({self.reason})"
        if self.kind != "ivf":
            return name
        measured = f", recall@10 {self.recall:.3f}" if self.recall is not None else ""
        return f"{name} (nlist {self.nlist}, nprobe {self.nprobe}{measured})"


def planned_layout(count: int, settings: VectorSettings, current: Layout | None = None) -> Layout:
    """The layout `count` vectors should have; `current` is kept while it is still fit."""
    if current is not None and current.encoding == settings.encoding:
        if current.kind == "flat" and count <= settings.approximate_above:
            return current
        if current.kind == "flat" and current.reason and count <= current.trained_for * GROWTH:
            # An IVF was measured not to beat exact search at about this size: not again
            # until the index has grown well past it.
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


def footprint(count: int, dimensions: int, layout: Layout) -> int:
    code = dimensions * (1 if layout.encoding == "sq8" else 4)
    return count * (code + 8) + layout.nlist * dimensions * 4
