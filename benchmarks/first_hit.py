"""Time from `semsearch index` starting to the first search that finds a document's rare word.

    apt-get install -y python3.11-doc
    python benchmarks/first_hit.py                                  # tutorial, howto, faq; the local model
    python benchmarks/first_hit.py --subset faq --repo /path/to/older/checkout   # the same with other code
    python benchmarks/first_hit.py --stop-at-keywords   # Ctrl-C the run once every word is found by keywords

Copies the subset of the Python 3.11 documentation to a scratch folder and picks, for
--words documents spread over the subset, a word that occurs in that document and in no
other. Then starts `semsearch index` on the copy in another process (the code of --repo,
default this checkout) and, from this process, looks every 0.1 s for each word not found yet
in the index database (read-only, through its keyword index): the seconds until a chunk
holding the word is there (searchable by keywords), and until that chunk has its vector
(searchable by meaning too). Before documents were written ahead of their vectors, the two
were the same moment. At the end the words are searched once more through `Index.search`,
as a user would. With --stop-at-keywords the run is interrupted (SIGINT, as Ctrl-C) once every
word is found by keywords, and `check` is run on what it leaves. Prints every figure, the
machine and the load.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = Path("/usr/share/doc/python3.11/html")
WORD = re.compile(r"[a-z]{7,}")


def rare_words(folder: Path, count: int) -> dict[Path, str]:
    """For `count` documents spread over `folder`, a word found in that document only."""
    sys.path.insert(0, str(REPO))
    from semsearch.readers import read_document

    words: dict[Path, Counter] = {}
    for path in sorted(folder.rglob("*.html")):
        try:
            words[path] = Counter(WORD.findall(read_document(path, path.read_bytes()).text.lower()))
        except Exception:  # noqa: BLE001 - a page the readers refuse is simply not a candidate
            continue
    spread = Counter(word for counts in words.values() for word in counts)
    chosen: dict[Path, str] = {}
    candidates = [path for path, counts in words.items() if any(spread[word] == 1 for word in counts)]
    step = max(len(candidates) / count, 1.0)
    for number in range(min(count, len(candidates))):
        path = candidates[min(int(number * step), len(candidates) - 1)]
        unique = [word for word, _ in words[path].most_common() if spread[word] == 1]
        chosen[path] = unique[0]
    return chosen


def look(database: Path, word: str) -> tuple[bool, bool]:
    """Whether a chunk holding `word` is in the index, and whether it has its vector."""
    if not database.exists():
        return False, False
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "chunks_fts" not in tables:
                return False, False
            waiting = "vector_id IN (SELECT vector_id FROM backlog)" if "backlog" in tables else "0"
            rows = db.execute(
                f"SELECT {waiting} FROM chunks WHERE id IN (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?)", [f'"{word}"']
            ).fetchall()
    except sqlite3.OperationalError:  # the writer is creating the database
        return False, False
    return bool(rows), any(not row[0] for row in rows)


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", nargs="+", default=["tutorial", "howto", "faq"])
    parser.add_argument("--words", type=int, default=8)
    parser.add_argument("--model", default="local")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose `semsearch index` runs")
    parser.add_argument("--stop-at-keywords", action="store_true", help="interrupt the run once every word is found by keywords")
    args = parser.parse_args()
    if not DOCS.exists():
        sys.exit(f"{DOCS} is missing: apt-get install -y python3.11-doc")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {load()}, code at {args.repo}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "docs"
        for name in args.subset:
            shutil.copytree(DOCS / name, folder / name)
        targets = rare_words(folder, args.words)
        database = Path(scratch) / "ix" / "index.db"
        env = dict(os.environ, PYTHONPATH=str(args.repo), IONOS_API_TOKEN="")
        started = time.monotonic()
        run = subprocess.Popen(
            [sys.executable, "-m", "semsearch", "--index", str(Path(scratch) / "ix"), "index", "--model", args.model, str(folder)],
            cwd=args.repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        keyword: dict[Path, float] = {}
        dense: dict[Path, float] = {}
        while True:
            ended = run.poll() is not None
            for path, word in targets.items():
                if path in dense:
                    continue
                found, embedded = look(database, word)
                now = time.monotonic() - started
                if found and path not in keyword:
                    keyword[path] = now
                if embedded:
                    dense[path] = now
            if ended and len(dense) == len(targets):
                break
            if args.stop_at_keywords and len(keyword) == len(targets) and not ended:
                run.send_signal(signal.SIGINT)
                run.wait(60)
                break
            if ended and run.returncode != 0:
                sys.exit(f"semsearch index failed: {run.stderr.read()}")
            if ended and time.monotonic() - started > 60 * 60:
                break
            time.sleep(0.1)
        total = time.monotonic() - started
        if run.returncode not in (0, None) and not args.stop_at_keywords:
            sys.exit(f"semsearch index failed: {run.stderr.read()}")
        output = run.stdout.read().strip().splitlines() or [f"(interrupted, exit status {run.returncode})"]
        print(f"Indexed {', '.join(args.subset)} with {args.model}: {output[0] if output else ''} {output[1] if len(output) > 1 else ''}")
        print(f"Run ended after {total:.1f} s (load {load()})")
        print(f"{'document':<40} {'word':<18} {'keywords s':>10} {'vector s':>9}")
        for path, word in targets.items():
            print(f"{str(path.relative_to(folder)):<40} {word:<18} {keyword.get(path, float('nan')):>10.1f} {dense.get(path, float('nan')):>9.1f}")
        firsts = sorted(keyword.values())
        print(f"Keyword hit: first {firsts[0]:.1f} s, median {firsts[len(firsts) // 2]:.1f} s, last {firsts[-1]:.1f} s")
        seconds = sorted(dense.values())
        if seconds:
            print(f"With its vector ({len(seconds)} of {len(targets)}): first {seconds[0]:.1f} s, median "
                  f"{seconds[len(seconds) // 2]:.1f} s, last {seconds[-1]:.1f} s")
        if args.repo == REPO:
            from semsearch import Index

            with Index.open(Path(scratch) / "ix", create=False) as index:
                missed = [word for path, word in targets.items() if not any(hit.path == str(path) for hit in index.search(word, mode="keyword"))]
                status = index.status()
                report = index.check()
            print("Index.search finds every word by keywords" if not missed else f"Index.search misses {missed}")
            print(f"Left: {status.documents} documents, {status.chunks} chunks, {status.waiting_chunks} waiting; "
                  f"check: {'ok' if report.ok and not report.problems else report.problems}")


if __name__ == "__main__":
    main()
