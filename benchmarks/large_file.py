"""Memory and time for one large text file: does indexing stream it, or hold it all?

    python benchmarks/large_file.py [--mb 50] [--model free|local]

Writes a plain-text file of `--mb` megabytes (paragraphs of prose-like sentences from
benchmarks/synthetic.py's vocabulary, every word of it distinct from the next file's), then
indexes it in a fresh process and prints the peak resident memory of that process
(ru_maxrss), the time, and the chunks written. `--model free` (the default) embeds with a
stand-in that costs nothing (synthetic.WordVectorEmbedder), so the figure is the pipeline's
own; `local` uses the bundled model (hours for 50 MB). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from semsearch import Index
import synthetic
embedder = synthetic.WordVectorEmbedder() if {model!r} == "free" else None
started = time.perf_counter()
with Index.open({index!r}, embedder=embedder, model=None if embedder else "local") as index:
    stats = index.add([{path!r}], max_file_size=None)
print(json.dumps({{
    "seconds": time.perf_counter() - started,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "chunks": stats.chunks_added,
}}))
"""


def write_file(path: Path, megabytes: float) -> None:
    rng = np.random.default_rng(11)
    words = np.array(synthetic.WORDS)
    target = int(megabytes * 2**20)
    written = 0
    with path.open("w") as out:
        while written < target:
            sentences = [" ".join(words[rng.integers(0, len(words), rng.integers(6, 18))]).capitalize() + "."
                         for _ in range(rng.integers(3, 8))]
            paragraph = " ".join(sentences) + "\n\n"
            out.write(paragraph)
            written += len(paragraph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--model", choices=["free", "local"], default="free")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="semsearch-large-") as scratch:
        folder = Path(scratch) / "docs"
        folder.mkdir()
        path = folder / "large.txt"
        started = time.perf_counter()
        write_file(path, args.mb)
        size = path.stat().st_size
        print(f"wrote {size / 2**20:.1f} MB in {time.perf_counter() - started:.1f} s; {synthetic.machine()}, {time.strftime('%Y-%m-%d')}")
        code = CHILD.format(here=str(HERE), model=args.model, index=str(Path(scratch) / "ix"), path=str(folder))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr[-3000:])
            raise SystemExit(1)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"indexed {size / 2**20:.1f} MB ({result['chunks']:,} chunks, model {args.model}) in {result['seconds']:.1f} s; "
            f"peak RSS {result['peak_rss_mb']:.0f} MB ({result['peak_rss_mb'] / (size / 2**20):.1f}× the file)"
        )


if __name__ == "__main__":
    main()
