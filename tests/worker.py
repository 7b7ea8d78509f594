"""An indexing run in a process of its own, for tests that kill it or race it.

    python -m tests.worker INDEX DOCS LOG [--delay S] [--pause-in sqlite|faiss|postgres] [--vectors] [--after N]

Every text the embedder is asked for is appended to LOG (one JSON string per line) before
it is embedded, so a test knows what was paid for. `--pause-in` stops the run at the
write that reaches N documents (inside the SQLite or PostgreSQL transaction; with
`--vectors`, the first write of vectors after N are stored: in the middle of the
backlog) or while saving FAISS (after the temporary file is written, before the rename),
writes LOG + ".paused" and sleeps, so the test can kill it exactly there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from semsearch import Index
from semsearch.storage.faiss.vectors import VectorIndex
from semsearch.storage.sqlite.store import Store
from tests.conftest import FakeEmbedder


class LoggingEmbedder(FakeEmbedder):
    batch_size = 4

    def __init__(self, log: Path, delay: float) -> None:
        super().__init__()
        self.log = log
        self.delay = delay

    def embed_documents(self, texts):
        with self.log.open("a") as f:
            for text in texts:
                f.write(json.dumps(text) + "\n")
        time.sleep(self.delay)
        return super().embed_documents(texts)


def pause(log: Path) -> None:
    Path(str(log) + ".paused").write_text("paused")
    time.sleep(600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("index")
    parser.add_argument("docs")
    parser.add_argument("log", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--pause-in", choices=["sqlite", "faiss", "postgres"])
    parser.add_argument("--after", type=int, default=1)
    parser.add_argument("--vectors", action="store_true", help="pause in a write of vectors rather than of documents")
    parser.add_argument("--remote", help="embed with the OpenAI-compatible service at this URL instead")
    parser.add_argument("--rps", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=5)
    args = parser.parse_args()

    if args.pause_in in ("sqlite", "postgres"):
        target: type = Store
        if args.pause_in == "postgres":
            from semsearch.storage.postgres.store import PostgresStore

            target = PostgresStore
        written: list = []

        def pausing(original):
            def write(self, rows, *more, **options):
                if args.vectors and rows and len(written) >= args.after:
                    pause(args.log)  # in the transaction of a later write of vectors
                result = original(self, rows, *more, **options)
                written.extend(rows)
                if not args.vectors and rows and len(written) >= args.after:
                    pause(args.log)  # inside the open transaction
                return result

            return write

        if not args.vectors:
            target.replace_documents = pausing(target.replace_documents)
        else:
            target.add_vectors = pausing(target.add_vectors)
            if args.pause_in == "sqlite":
                target.fill_vectors = pausing(target.fill_vectors)
    elif args.pause_in == "faiss":
        original_save = VectorIndex.save

        def save(self, directory, generation):
            import faiss

            faiss.write_index(self._index, str(directory / f".vectors.faiss.{__import__('os').getpid()}.tmp"))
            pause(args.log)
            original_save(self, directory, generation)

        VectorIndex.save = save

    if args.remote:
        opened = Index.open(
            args.index, model="BAAI/bge-m3", base_url=args.remote, api_key="test-token", rps=args.rps, burst=args.burst,
            batch_size=2, state_path=args.log.with_suffix(".state.json"),
        )
    else:
        opened = Index.open(args.index, embedder=LoggingEmbedder(args.log, args.delay))
    with opened as index:
        stats = index.add([args.docs])
    print(json.dumps(stats.to_dict()))


if __name__ == "__main__":
    main()
