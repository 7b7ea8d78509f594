"""Re-indexing speed: an unchanged folder of 10,000 files, then the same with 1% changed.

    python benchmarks/reindex.py [--files 10000] [--changed 0.01] [--cost-ms 20]

The first build uses a stand-in embedder (hashed vectors, no model) so that it takes
seconds, not hours; the re-index of an unchanged folder never calls the embedder at all.
For the 1% run the stand-in charges `--cost-ms` per text, like a real model, so the
output shows how much of the time is embedding and how much is everything else.
Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from semsearch import Index  # noqa: E402

WORDS = (
    "account backup cluster deploy editor folder gateway history invoice journal kernel ledger mirror "
    "network office printer query release server ticket update vendor window archive budget calendar"
).split()


class StandInEmbedder:
    """Deterministic vectors from a hash; sleeps `cost` seconds per text to act like a model."""

    model_id = "stand-in"
    dimensions = 384
    batch_size = 32

    def __init__(self, cost: float = 0.0) -> None:
        self.cost = cost
        self.texts = 0
        self.busy = 0.0

    def embed_documents(self, texts):
        started = time.perf_counter()
        if self.cost:
            time.sleep(self.cost * len(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dimensions).astype(np.float32))
        self.texts += len(texts)
        self.busy += time.perf_counter() - started
        return np.stack(rows)

    def embed_query(self, text):
        return self.embed_documents([text])[0]


def make_corpus(root: Path, files: int) -> list[Path]:
    rng = random.Random(1)
    paths = []
    for i in range(files):
        folder = root / f"dir{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        paragraphs = [" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(3)]
        path = folder / f"note{i:05d}.md"
        path.write_text(f"# Note {i}\n\n" + "\n\n".join(paragraphs) + "\n")
        paths.append(path)
    return paths


def fresh_process(index_dir: Path, docs: Path) -> float:
    """Wall time of a new Python process that opens the index and re-indexes the folder."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r})\n"
        "from reindex import StandInEmbedder\nfrom semsearch import Index\n"
        f"with Index.open({str(index_dir)!r}, embedder=StandInEmbedder()) as index:\n"
        f"    stats = index.add([{str(docs)!r}])\n"
        "assert stats.chunks_embedded == 0\n"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--cost-ms", type=float, default=20.0, help="stand-in model cost per text in the 1%% run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        docs, index_dir = Path(tmp) / "docs", Path(tmp) / "index"
        paths = make_corpus(docs, args.files)
        embedder = StandInEmbedder()
        with Index.open(index_dir, embedder=embedder) as index:
            started = time.perf_counter()
            first = index.add([docs])
            build = time.perf_counter() - started
            print(f"files: {args.files}, chunks: {first.chunks_added}")
            print(f"first build (stand-in embedder, no model cost): {build:.2f} s, {first.chunks_added / build:.0f} chunks/s")

            timings = []
            for _ in range(3):
                started = time.perf_counter()
                stats = index.add([docs])
                timings.append(time.perf_counter() - started)
                assert stats.unchanged == args.files and stats.chunks_embedded == 0
            print(f"re-index unchanged, library call: best {min(timings):.3f} s, median {sorted(timings)[1]:.3f} s")
        cold = [fresh_process(index_dir, docs) for _ in range(3)]
        print(f"re-index unchanged, fresh process (imports included): best {min(cold):.3f} s, median {sorted(cold)[1]:.3f} s")

        changed = random.Random(2).sample(paths, int(args.files * args.changed))
        for path in changed:
            path.write_text(path.read_text().replace("Note", "Revised note", 1) + "\nAn added closing line.\n")
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
        embedder = StandInEmbedder(cost=args.cost_ms / 1000)
        with Index.open(index_dir, embedder=embedder) as index:
            started = time.perf_counter()
            stats = index.add([docs])
            elapsed = time.perf_counter() - started
        print(
            f"re-index with {len(changed)} files changed ({args.changed:.0%}): {elapsed:.2f} s; "
            f"{stats.changed} changed, {stats.unchanged} unchanged, {stats.chunks_embedded} chunks embedded; "
            f"embedder busy {embedder.busy:.2f} s ({embedder.busy / elapsed:.0%} of the run, {args.cost_ms:.0f} ms per text)"
        )


if __name__ == "__main__":
    main()
