"""Which layout the vector index takes for vectors with and without cluster structure.

    python benchmarks/exact_or_ivf.py [--vectors 100000] [--dimensions 64]

Builds the index `VectorIndex.build` makes past the exact-search threshold for two sets of
unit vectors: random ones (no clusters: every cell is as near as any other) and ones around
200 topic centres (as embeddings of documents are). Prints the layout each got (an IVF with
its calibrated nprobe, or exact search kept and why), the build time, and the median time of
a query (k=10) against the index built and against exact search over the same vectors.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semsearch.settings import VectorSettings  # noqa: E402
from semsearch.storage.faiss.layout import Layout, planned_layout  # noqa: E402
from semsearch.storage.faiss.vectors import VectorIndex  # noqa: E402


def vectors(kind: str, count: int, dimensions: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    if kind == "random":
        matrix = rng.standard_normal((count, dimensions))
    else:
        centres = rng.standard_normal((200, dimensions))
        matrix = centres[rng.integers(0, 200, count)] + 0.6 * rng.standard_normal((count, dimensions))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def query_ms(index: VectorIndex, queries: np.ndarray) -> float:
    times = []
    for query in queries:
        started = time.perf_counter()
        index.search(query, 10)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dimensions", type=int, default=64)
    args = parser.parse_args()
    ids = np.arange(1, args.vectors + 1, dtype=np.int64)
    layout = planned_layout(args.vectors, VectorSettings())
    print(f"{args.vectors} vectors of {args.dimensions} dimensions: past the threshold, an IVF of {layout.nlist} cells")
    for kind in ("random", "clustered"):
        matrix = vectors(kind, args.vectors, args.dimensions)

        def read(wanted, matrix=matrix):
            chosen = ids if wanted is None else np.asarray(wanted)
            for start in range(0, len(chosen), 8192):
                part = chosen[start : start + 8192]
                yield part, matrix[part - 1]

        started = time.perf_counter()
        built = VectorIndex.build(args.dimensions, ids, read, layout)
        seconds = time.perf_counter() - started
        exact = VectorIndex.build(args.dimensions, ids, read, Layout())
        queries = vectors(kind, 200, args.dimensions) if kind == "random" else matrix[:200] + 0.01
        print(f"{kind}: {built.layout.describe()}; built in {seconds:.1f} s; query p50 {query_ms(built, queries):.2f} ms "
              f"(exact search {query_ms(exact, queries):.2f} ms)")


if __name__ == "__main__":
    main()
