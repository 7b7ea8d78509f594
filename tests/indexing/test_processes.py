"""Reading and chunking files in other processes gives what reading in a thread gives."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.embedding.remote.client import RemoteEmbedder
from semsearch.indexing import processes
from semsearch.readers.walk import FileEntry
from tests.conftest import SAMPLE_DOCS, FakeEmbedder


def stored(index_dir: Path) -> list[tuple]:
    with sqlite3.connect(index_dir / "index.db") as db:
        return db.execute(
            "SELECT documents.path, documents.content_hash, chunks.ordinal, chunks.start_line, chunks.end_line,"
            " chunks.section, chunks.text FROM chunks JOIN documents ON documents.id = chunks.document_id"
            " ORDER BY documents.path, chunks.ordinal"
        ).fetchall()


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "docs"
    for path in SAMPLE_DOCS.rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(SAMPLE_DOCS)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (folder / "latin.txt").write_bytes("Caf\xe9 cr\xe8me, na\xefve r\xe9sum\xe9 of the d\xe9j\xe0 vu.".encode("latin-1") * 20)
    notes = folder / "notes"
    notes.mkdir(exist_ok=True)
    for number in range(300):  # more than a batch: several go out, in order
        (notes / f"note{number:03d}.txt").write_text(f"Note {number} about item{number} and its owner.\n")
    return folder


def test_files_read_in_processes_are_indexed_as_in_a_thread(tmp_path, folder, monkeypatch):
    # The first few files are read here while the processes start; the rest go out.
    monkeypatch.setattr(processes, "FIRST_HERE", 7)
    sent: list[int] = []
    batches = processes._batches

    def counted(todo):
        for batch in batches(todo):
            sent.append(len(batch))
            yield batch

    monkeypatch.setattr(processes, "_batches", counted)
    results = {}
    for count in (0, 2):
        monkeypatch.setenv("SEMSEARCH_READ_PROCESSES", str(count))
        with Index.open(tmp_path / f"index-{count}", embedder=FakeEmbedder()) as index:
            stats = index.add([folder])
            results[count] = (stats.new, sorted((s.path, s.reason) for s in stats.skipped), stored(tmp_path / f"index-{count}"))
            assert index.search("item123", mode="keyword", limit=1)[0].path.endswith("note123.txt")
    assert results[2] == results[0]
    new, skipped, rows = results[2]
    assert len(sent) > 2 and sum(sent) == new + len(skipped) - 7, "all but the first 7 files went to the processes"
    assert new >= 300 and [reason for path, reason in skipped if path.endswith("binary.txt")] == ["binary file"]
    assert any("Café crème" in row[-1] for row in rows)


def test_an_unchanged_file_read_in_a_process_is_not_written_again(tmp_path, folder, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_READ_PROCESSES", "1")
    embedder = FakeEmbedder()
    with Index.open(tmp_path / "index", embedder=embedder) as index:
        index.add([folder])
        note = folder / "notes" / "note007.txt"
        note.write_text(note.read_text())  # same content, a new modification time
        embedder.calls.clear()
        stats = index.add([folder])
    assert stats.unchanged >= 300 and stats.new == stats.changed == 0 and embedder.calls == []


def test_the_first_small_files_are_read_here_while_the_processes_start():
    def todo(*sizes):
        return [(FileEntry(Path(f"/notes/{number}.txt"), size, 0), None) for number, size in enumerate(sizes)]

    assert processes._first_here(todo(*[450] * 2000)) == processes.FIRST_HERE
    assert processes._first_here(todo(400_000, 400_000, 400_000, 10)) == 2, "up to FIRST_HERE_BYTES"
    assert processes._first_here(todo(20 * 2**20, 450, 450)) == 0, "a large first file goes to the processes"
    assert processes._first_here(todo()) == 0


KILLED_WHILE_STARTING = """
import os, signal, sys
from pathlib import Path
from semsearch.indexing.processes import read_in_processes
from semsearch.indexing.reading import Reader
from semsearch.readers.walk import FileEntry
from semsearch.settings import ChunkSettings
from tests.test_safety import children

folder = Path(sys.argv[1])
todo = [(FileEntry(path, path.stat().st_size, path.stat().st_mtime_ns), None) for path in sorted(folder.glob("*.txt"))]
items = read_in_processes(todo, Reader(ChunkSettings()), None, 1)
next(items)  # the reading process is starting; this one dies before it has
print(" ".join(str(pid) for pid in children(os.getpid())), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_reading_process_ends_when_the_indexing_process_dies_while_it_starts(tmp_path):
    from tests.test_safety import REPO

    for number in range(600):
        (tmp_path / f"note{number:03d}.txt").write_text(f"Note {number}.\n")
    said = tmp_path / "started.txt"
    with said.open("w") as out:  # a file, not a pipe: a process left behind would hold a pipe open
        subprocess.run([sys.executable, "-c", KILLED_WHILE_STARTING, str(tmp_path)], cwd=REPO, stdout=out,
                       stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    started = [int(pid) for pid in said.read_text().split()]
    assert started, "the script names the processes it started"

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 15
    try:
        while any(alive(pid) for pid in started):
            assert time.monotonic() < deadline, "a reading process outlived the indexing process that started it"
            time.sleep(0.05)
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_how_many_processes_read(monkeypatch):
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 2)
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__file__="/usr/bin/semsearch", __spec__=None))
    assert processes.process_count(5000, True) == 1
    assert processes.process_count(999, True) == 0, "too few files to pay for starting a process"
    assert processes.process_count(5000, False) == 0, "the token counter cannot go with them"
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 1)
    assert processes.process_count(5000, True) == 0
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 16)
    assert processes.process_count(5000, True) == processes.MAX_PROCESSES
    # A script of the user's would run again in every new process: not unless asked.
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__file__="/home/me/index_notes.py", __spec__=None))
    assert processes.process_count(5000, True) == 0
    monkeypatch.setenv("SEMSEARCH_READ_PROCESSES", "3")
    assert processes.process_count(10, True) == 3
    monkeypatch.setenv("SEMSEARCH_READ_PROCESSES", "0")
    assert processes.process_count(5000, True) == 0


def test_a_remote_models_token_counter_travels_without_its_token():
    embedder = RemoteEmbedder("BAAI/bge-large-en-v1.5", base_url="http://127.0.0.1:9/v1", api_key="secret-token-123")
    counter = embedder.portable_count_tokens()
    sent = pickle.dumps(counter)
    assert b"secret-token-123" not in sent and b"127.0.0.1" not in sent
    text = "Tokens of a sentence, counted in another process."
    assert pickle.loads(sent)(text) == embedder.count_tokens(text)
