"""What `semsearch watch` costs: save-to-searchable latency, a storm, and idle cost.

    python benchmarks/watch.py [--edits 20] [--storm 10000] [--idle-minutes 10] [--local]

- latency: a watcher (a thread, with its own `Index`) over a folder of 2,000 notes (100 with
  the bundled model) plus sample_docs; the script saves one small file with a new word, then searches for that word
  (keyword mode, from a second `Index`, as another client would) until it is found. p50 and
  p95 over `--edits` saves, with an embedder that costs nothing (`synthetic.WordVectorEmbedder`)
  and, with `--local`, with the bundled model.
- storm: `--storm` files written at once (a checkout) under the watched folder: the time from
  the first write until all of them are searchable and how many updates it took, against
  one `Index.add` of the same change on a copy of the same index.
- idle: a watcher process left alone for `--idle-minutes`: CPU seconds used and RSS at each
  minute (from /proc).

Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

from semsearch import Index  # noqa: E402

REPO = HERE.parent


def make_folder(root: Path, notes: int) -> Path:
    folder = root / "docs"
    shutil.copytree(REPO / "sample_docs", folder)
    words = synthetic.WORDS
    for i in range(notes):
        sub = folder / "notes" / f"n{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        text = " ".join(words[(i * 37 + j * 11) % len(words)] for j in range(60))
        (sub / f"note{i}.txt").write_text(f"Note {i}. {text}.\n")
    return folder


def start_watcher(index: Index, updates: list) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    ready = threading.Event()

    def notice(said) -> None:
        if said.kind == "watching":
            ready.set()

    thread = threading.Thread(
        target=index.watch, kwargs=dict(on_update=updates.append, on_notice=notice, stop=stop), daemon=True
    )
    thread.start()
    if not ready.wait(120):
        raise SystemExit("the watcher did not start")
    return thread, stop


def latency(root: Path, edits: int, model: str) -> None:
    # The bundled model embeds a few chunks a second: its folder is kept small, as the first
    # indexing of it is not what is measured.
    notes = 2000 if model == "free" else 100
    folder = make_folder(root, notes)
    location = root / f"index-{model}"
    embedder = synthetic.WordVectorEmbedder() if model == "free" else None
    options = dict(embedder=embedder) if embedder else dict(model="local")
    with Index.open(location, **options) as index:
        index.add([folder])
        updates: list = []
        thread, stop = start_watcher(index, updates)
        seconds = []
        with Index.open(location, **options) as reader:
            for i in range(edits):
                word = f"zqxlatency{i}word"
                saved = time.perf_counter()
                (folder / "notes" / f"edit{i}.txt").write_text(f"A small edit that mentions {word}.\n")
                while not reader.search(word, mode="keyword", limit=1):
                    time.sleep(0.01)
                seconds.append(time.perf_counter() - saved)
                time.sleep(0.2)
        stop.set()
        thread.join()
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    print(
        f"latency, {model} embedder, {notes:,} notes and sample_docs, {edits} saves: p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, "
        f"max {ms[-1]:.0f} ms (debounce 300 ms, settle 300 ms; {len(updates)} updates)"
    )


def storm(root: Path, files: int) -> None:
    folder = make_folder(root, 200)
    location = root / "index-storm"
    with Index.open(location, embedder=synthetic.WordVectorEmbedder()) as index:
        index.add([folder])
    copy_location, copy_folder = root / "index-storm-copy", root / "docs-copy"
    shutil.copytree(location, copy_location)
    shutil.copytree(folder, copy_folder)

    def write(target: Path) -> None:
        words = synthetic.WORDS
        for i in range(files):
            sub = target / "checkout" / f"d{i % 50:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"file{i}.txt").write_text(f"Checkout file {i}: {words[i % len(words)]} {words[(i * 7) % len(words)]}.\n")

    with Index.open(location, embedder=synthetic.WordVectorEmbedder()) as index:
        updates: list = []
        thread, stop = start_watcher(index, updates)
        before = index.status().documents
        started = time.perf_counter()
        write(folder)
        written = time.perf_counter() - started
        with Index.open(location, embedder=synthetic.WordVectorEmbedder()) as reader:
            while reader.status().documents < before + files:
                time.sleep(0.05)
        watched = time.perf_counter() - started
        stop.set()
        thread.join()
    # The same change applied by one run, on a copy of the index (paths differ: the copy's
    # folder is a folder of its own, indexed under its own name).
    with Index.open(copy_location, embedder=synthetic.WordVectorEmbedder()) as index:
        index.remove([str(folder)])
        index.add([copy_folder])
        write(copy_folder)
        started = time.perf_counter()
        stats = index.add([copy_folder])
        one_run = time.perf_counter() - started
    print(
        f"storm of {files:,} files: all searchable {watched:.1f} s after the first write (writing took {written:.1f} s), "
        f"in {len(updates)} updates; one `index` run of the same change: {one_run:.1f} s ({stats.new:,} new)"
    )


IDLE_CHILD = """
import sys, threading
sys.path.insert(0, {here!r})
import synthetic
from semsearch import Index
index = Index.open({index!r}, embedder=synthetic.WordVectorEmbedder())
def notice(said):
    if said.kind == "watching":
        print("ready", flush=True)
index.watch(on_notice=notice)
"""


def _cpu_and_rss(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def idle(root: Path, minutes: float) -> None:
    folder = make_folder(root, 2000)
    location = root / "index-idle"
    with Index.open(location, embedder=synthetic.WordVectorEmbedder()) as index:
        index.add([folder])
    child = subprocess.Popen(
        [sys.executable, "-c", IDLE_CHILD.format(here=str(HERE), index=str(location))],
        stdout=subprocess.PIPE, text=True, cwd=root,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the idle watcher did not start")
        cpu0, rss0 = _cpu_and_rss(child.pid)
        samples = [rss0]
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            time.sleep(min(60.0, minutes * 60))
            samples.append(_cpu_and_rss(child.pid)[1])
        cpu1, rss1 = _cpu_and_rss(child.pid)
    finally:
        child.terminate()
        child.wait(20)
    elapsed = time.monotonic() - started
    print(
        f"idle {elapsed / 60:.1f} min over 2,000 notes: {cpu1 - cpu0:.2f} CPU s ({100 * (cpu1 - cpu0) / elapsed:.3f}% of a core); "
        f"RSS {rss0:.0f} MB at the start, {rss1:.0f} MB at the end (samples: {', '.join(f'{value:.0f}' for value in samples)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--idle-minutes", type=float, default=10.0)
    parser.add_argument("--local", action="store_true", help="also measure latency with the bundled model")
    parser.add_argument("--only", choices=["latency", "storm", "idle"], help="run one part")
    args = parser.parse_args()
    print(f"{synthetic.machine()}, {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory(prefix="semsearch-watch-") as scratch:
        root = Path(scratch)
        if args.only in (None, "latency"):
            latency(root / "free", args.edits, "free")
            if args.local:
                latency(root / "local", args.edits, "local")
        if args.only in (None, "storm"):
            storm(root / "storm", args.storm)
        if args.only in (None, "idle"):
            idle(root / "idle", args.idle_minutes)


if __name__ == "__main__":
    main()
