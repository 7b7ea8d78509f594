"""SQLite inserts in one thread while another decodes embedding responses, against the two
one after the other: what a second thread in the indexing process brings.

    python benchmarks/sqlite_beside_decoding.py [--rounds 2]

The inserts are those of a run of 20,000 one-chunk notes in commits of 400: a row per chunk
(its text and a 4 KB vector) and its FTS5 entry (the tokenizer semsearch uses), with
`executemany` as semsearch writes them and with multi-row `INSERT ... VALUES (...), (...)`
statements of 100 rows. The decoding is 80 responses of 256 base64 vectors of 1,024
dimensions, parsed as `RemoteEmbedder` parses them (json, then base64 per vector).

SQLite releases the interpreter lock inside each statement and waits to take it back; while
the other thread decodes, each wait lasts until that thread lets go (up to the switch
interval, 5 ms). Prints seconds; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sqlite3
import string
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semsearch.storage.sqlite.keywords import KEYWORD_TOKENIZER  # noqa: E402

ROWS = 20_000
PER_COMMIT = 400
RESPONSES = 80


def fresh(folder: Path) -> sqlite3.Connection:
    path = folder / "beside.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, document_id INTEGER, ordinal INTEGER, text TEXT, vector BLOB)")
    db.execute(f'CREATE VIRTUAL TABLE chunks_fts USING fts5(body, content=\'\', tokenize="{KEYWORD_TOKENIZER}")')
    return db


def insert_many(db: sqlite3.Connection, rows: list[tuple]) -> None:
    db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", rows)
    db.executemany("INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)", [(row[0], row[3]) for row in rows])


def insert_multi(db: sqlite3.Connection, rows: list[tuple], per: int = 100) -> None:
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        db.execute("INSERT INTO chunks VALUES " + ",".join(["(?, ?, ?, ?, ?)"] * len(part)), [v for row in part for v in row])
        db.execute(
            "INSERT INTO chunks_fts (rowid, body) VALUES " + ",".join(["(?, ?)"] * len(part)),
            [v for row in part for v in (row[0], row[3])],
        )


def store(db: sqlite3.Connection, rows: list[tuple], insert) -> None:
    for start in range(0, len(rows), PER_COMMIT):
        db.execute("BEGIN")
        insert(db, rows[start : start + PER_COMMIT])
        db.execute("COMMIT")


def decode(body: bytes) -> None:
    for _ in range(RESPONSES):
        data = json.loads(body)["data"]
        np.vstack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(1)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(30_000)]
    vector = np.random.default_rng(1).random(1024, dtype=np.float32).tobytes()
    rows = [(n, n, 0, " ".join(rng.choices(words, k=65)), vector) for n in range(1, ROWS + 1)]
    matrix = np.random.default_rng(2).random((256, 1024), dtype=np.float32)
    body = json.dumps({"data": [{"index": n, "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode()}
                                for n, row in enumerate(matrix)]}).encode()
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(1, args.rounds + 1):
            started = time.perf_counter()
            decode(body)
            alone = time.perf_counter() - started
            print(f"round {round_}: decoding {RESPONSES} responses alone {alone:.3f} s")
            for name, insert in (("executemany", insert_many), ("multi-row INSERT", insert_multi)):
                db = fresh(Path(folder))
                started = time.perf_counter()
                store(db, rows, insert)
                inserts = time.perf_counter() - started
                db.close()
                db = fresh(Path(folder))
                other = threading.Thread(target=decode, args=(body,))
                started = time.perf_counter()
                other.start()
                store(db, rows, insert)
                other.join()
                both = time.perf_counter() - started
                db.close()
                print(f"  {name}: {ROWS:,} rows alone {inserts:.3f} s; with the decoding beside them {both:.3f} s"
                      f" (one after the other: {inserts + alone:.3f} s)")


if __name__ == "__main__":
    main()
