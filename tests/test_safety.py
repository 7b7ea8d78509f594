"""Crash safety: killed runs, concurrent processes, full disks and read-only folders.

The indexing runs here are real processes (tests/worker.py) killed with SIGKILL at chosen
points; the embedder logs every text it was asked for, so the follow-up run can prove it
paid for nothing that had been committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.errors import IndexLockedError, ModelMismatchError
from tests.conftest import FakeEmbedder

REPO = Path(__file__).resolve().parent.parent
TOPICS = ["glaciers", "volcanoes", "orchids", "lighthouses", "comets", "bridges", "violins", "deserts", "coral", "tunnels"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(30):
        topic = TOPICS[i % len(TOPICS)]
        paragraphs = [f"Document {i} paragraph {p} is about {topic} and item{i}x{p}. " * 12 for p in range(3)]
        (folder / f"doc{i:02d}.txt").write_text("\n\n".join(paragraphs))
    return folder


def spawn(index: Path, docs: Path, log: Path, *args: str, user: int | None = None, processes: int = 0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), SEMSEARCH_READ_PROCESSES=str(processes))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker", str(index), str(docs), str(log), *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux: read from /proc)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def committed_hashes(index: Path) -> set[bytes]:
    if not (index / "index.db").exists():
        return set()
    connection = sqlite3.connect(f"{(index / 'index.db').as_uri()}?mode=ro", uri=True)
    try:
        # A text waiting for its vector has a row with an empty blob.
        return {bytes(row[0]) for row in connection.execute("SELECT hash FROM vectors WHERE length(vector) > 0")}
    except sqlite3.OperationalError:
        return set()
    finally:
        connection.close()


def logged(log: Path) -> list[str]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@pytest.mark.parametrize(
    "point, processes",
    [("embedding", 0), ("documents", 0), ("vectors", 0), ("faiss", 0), ("embedding", 1), ("documents", 1), ("vectors", 1)],
)
def test_killed_run_leaves_an_index_that_works_and_resumes(tmp_path, corpus, point, processes):
    """`processes`: files read in that many other processes (0: in a thread). Killed while
    embedding, inside the commit of documents, inside a commit of vectors in the middle of
    the backlog, or while saving the FAISS cache."""
    index_dir, log = tmp_path / "ix", tmp_path / "embedded.log"
    paused = Path(str(log) + ".paused")
    if point == "embedding":
        worker = spawn(index_dir, corpus, log, "--delay", "0.05", processes=processes)
        wait_for(lambda: len(committed_hashes(index_dir)) >= 12)
    else:
        extra = {"documents": ["--after", "3"], "vectors": ["--vectors", "--after", "20", "--delay", "0.02"], "faiss": []}[point]
        worker = spawn(index_dir, corpus, log, "--pause-in", "sqlite" if point != "faiss" else "faiss", *extra, processes=processes)
        wait_for(paused.exists)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    paid = logged(log)
    committed = committed_hashes(index_dir)
    # Documents are written before their texts are embedded: a run killed in that first
    # commit may have paid for nothing yet.
    assert paid or point == "documents", "the worker embedded something before it died"
    if point == "vectors":
        with Index.open(index_dir, embedder=FakeEmbedder()) as index:
            status = index.status()
            assert status.waiting_chunks > 0 and status.vectors == len(committed) > 0
            assert index.check().problems == []
            # A chunk still waiting for its vector is found by its rare word.
            hits = [hit for i in range(30) for hit in index.search(f"item{i}x1", mode="keyword", limit=1)]
            assert any(index._backend.waiting_among([hit.chunk_id]) for hit in hits)
    if point == "faiss":
        assert not (index_dir / "vectors.faiss").exists()

    embedder = FakeEmbedder()
    with Index.open(index_dir, embedder=embedder) as index:
        visible = index.status().documents
        hits = index.search("glaciers", limit=5)
        assert all(Path(hit.path).parent == corpus for hit in hits)
        assert bool(hits) == bool(visible)
        assert index.check().problems == []  # the search brought the cache up to date
        stats = index.add([corpus])
        assert stats.new + stats.unchanged == 30 and stats.skipped == []
        again = {digest(text) for text in embedder.embedded}
        assert again.isdisjoint(committed), "a committed chunk was embedded again"
        assert index.check().problems == []
        assert index.status().documents == 30
        for i in (0, 17, 29):
            paragraph = (corpus / f"doc{i:02d}.txt").read_text().split("\n\n")[1]
            assert index.search(paragraph, limit=1)[0].path.endswith(f"doc{i:02d}.txt")
    assert not list(index_dir.glob(".vectors.faiss.*.tmp")), "temporary files of the killed run are cleaned up"


def test_a_killed_run_leaves_no_reading_process_behind(tmp_path):
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(700):  # more than the run holds in hand: reading is not over when it dies
        (docs / f"note{i:03d}.txt").write_text(f"Note {i} about {TOPICS[i % len(TOPICS)]} and item{i}.\n")
    index_dir, log = tmp_path / "ix", tmp_path / "embedded.log"
    worker = spawn(index_dir, docs, log, "--delay", "0.05", processes=1)
    wait_for(lambda: len(committed_hashes(index_dir)) >= 12)
    readers = children(worker.pid)
    assert readers, "the reading process (and multiprocessing's resource tracker)"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in readers), timeout=15)
    committed = committed_hashes(index_dir)
    embedder = FakeEmbedder()
    with Index.open(index_dir, embedder=embedder) as index:
        stats = index.add([docs])
        assert stats.new + stats.unchanged == 700 and index.check().problems == []
    assert {digest(text) for text in embedder.embedded}.isdisjoint(committed)


def test_search_while_another_process_indexes(tmp_path, corpus):
    index_dir, log = tmp_path / "ix", tmp_path / "embedded.log"
    worker = spawn(index_dir, corpus, log, "--delay", "0.1")
    wait_for(lambda: len(committed_hashes(index_dir)) > 0)
    seen = []
    with Index.open(index_dir, embedder=FakeEmbedder(), create=False) as index:
        while worker.poll() is None:
            status = index.status()
            hits = index.search("comets", limit=3)
            assert all(hit.path.startswith(str(corpus)) for hit in hits)
            seen.append((status.documents, status.vectors))
            time.sleep(0.05)
        assert worker.returncode == 0, worker.stderr.read()
        assert index.status().documents == 30
        paragraph = (corpus / "doc21.txt").read_text().split("\n\n")[2]
        assert index.search(paragraph, limit=1)[0].path.endswith("doc21.txt")
    for counts in zip(*seen):
        assert list(counts) == sorted(counts), "a reader never sees the index go back"
    # Documents come first (found by keywords at once), their vectors behind them.
    assert len({vectors for _, vectors in seen}) >= 3, "the reader saw the run progress"


def test_second_writer_waits_then_fails_clearly(tmp_path, corpus):
    index_dir, log = tmp_path / "ix", tmp_path / "embedded.log"
    worker = spawn(index_dir, corpus, log, "--delay", "0.3")
    wait_for(lambda: len(logged(log)) > 0)
    try:
        with Index.open(index_dir, embedder=FakeEmbedder(), lock_timeout=0.3) as index:
            with pytest.raises(IndexLockedError, match=f"process {worker.pid}.*Wait for it to finish"):
                index.add([corpus])
    finally:
        worker.wait(timeout=120)
    assert worker.returncode == 0, worker.stderr.read()
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        assert index.check().problems == []
        assert index.add([corpus]).unchanged == 30


def test_second_writer_that_waits_long_enough_succeeds(tmp_path, corpus):
    index_dir, log = tmp_path / "ix", tmp_path / "embedded.log"
    worker = spawn(index_dir, corpus, log, "--delay", "0.02")
    wait_for(lambda: len(logged(log)) > 0)
    with Index.open(index_dir, embedder=FakeEmbedder(), lock_timeout=60) as index:
        stats = index.add([corpus])
    worker.wait(timeout=60)
    assert worker.returncode == 0
    assert stats.unchanged == 30 and stats.chunks_embedded == 0


def test_check_finds_and_repairs_damage(tmp_path, corpus):
    index_dir = tmp_path / "ix"
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        index.add([corpus])
        assert index.check().problems == []
    connection = sqlite3.connect(index_dir / "index.db")
    with connection:
        victim = connection.execute("SELECT vector_id, document_id FROM chunks LIMIT 1").fetchone()
        connection.execute("DELETE FROM vectors WHERE id = ?", [victim[0]])
        connection.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
    connection.close()
    embedder = FakeEmbedder()
    with Index.open(index_dir, embedder=embedder) as index:
        report = index.check()
        assert not report.ok
        assert "1 chunks have no vector" in report.problems
        assert any("FAISS cache" in note and "next search" in note for note in report.notes)
        repaired = index.check(repair=True)
        assert repaired.ok and repaired.repaired
        assert index.check().problems == []
        stats = index.add([corpus])
        assert stats.changed == 1 and stats.unchanged == 29
        assert index.check().problems == []


def _run_without_write_access(code: str) -> subprocess.CompletedProcess:
    """Run Python `code` bound by file permissions (as root, without the capability to override them)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        dropped = "-dac_override,-dac_read_search,-fowner"
        command = ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", *command]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_read_only_index_folder(tmp_path, corpus):
    index_dir = tmp_path / "ix"
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        index.add([corpus / "doc01.txt"])
    before = {p.name: p.read_bytes() for p in index_dir.iterdir() if p.is_file()}
    for path in index_dir.iterdir():
        path.chmod(0o444)
    index_dir.chmod(0o555)
    try:
        code = f"""
import json
import threading
from semsearch import Index, SemsearchError
from tests.conftest import FakeEmbedder
out = {{}}
import os
with Index.open(os.path.relpath({str(index_dir)!r}), embedder=FakeEmbedder()) as index:
    out["hits"] = [h.path for h in index.search("volcanoes item1x1", limit=1)]
    try:
        index.add([{str(corpus)!r}])
    except SemsearchError as exc:
        out["error"] = str(exc)
    try:
        index.add()
    except SemsearchError as exc:
        out["update"] = str(exc)
    report = index.check()
    out["check"] = [report.ok, report.problems]
print(json.dumps(out))
"""
        result = _run_without_write_access(code)
    finally:
        index_dir.chmod(0o755)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["hits"] == [str(corpus / "doc01.txt")]
    assert "permissions" in out["error"] and "read-only" in out["error"]
    assert out["update"] == out["error"], "updating the known folders is refused the same way"
    assert out["check"] == [True, []], "a read-only index is sound, not damaged"
    after = {p.name: p.read_bytes() for p in index_dir.iterdir() if p.is_file()}
    assert after == before, "nothing in the index was changed"
    assert stat.S_IMODE(index_dir.stat().st_mode) == 0o755


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux mount namespaces")
def test_full_disk_gives_a_clear_error_and_no_damage(tmp_path):
    """A tmpfs too small for the corpus; then more room, and the run finishes the job."""
    docs = tmp_path / "big"
    docs.mkdir()
    for i in range(60):
        (docs / f"f{i:02d}.txt").write_text("\n\n".join(f"File {i} block {b}: " + f"word{i}y{b} " * 150 for b in range(12)))
    script = tmp_path / "scenario.py"
    script.write_text(
        f"""
import json
import threading
from semsearch import Index, StorageError
from tests.conftest import FakeEmbedder
index_dir = {str(tmp_path / "disk" / "ix")!r}
out = {{}}
first = FakeEmbedder()
try:
    with Index.open(index_dir, embedder=first) as index:
        index.add([{str(docs)!r}])
except StorageError as exc:
    out["error"] = str(exc)
except Exception as exc:  # reported, so the test says what went wrong
    out["error"] = f"unexpected {{type(exc).__name__}}: {{exc}}"
out["first_embedded"] = first.embedded
import subprocess
subprocess.run(["mount", "-o", "remount,size=64m", {str(tmp_path / "disk")!r}], check=True)
second = FakeEmbedder()
import sqlite3
with sqlite3.connect(index_dir + "/index.db") as db:
    out["committed_before"] = [row[0].hex() for row in db.execute("SELECT hash FROM vectors WHERE length(vector) > 0")]
with Index.open(index_dir, embedder=second) as index:
    out["visible_before"] = index.status().documents
    stats = index.add([{str(docs)!r}])
    out["second_embedded"] = second.embedded
    out["documents"] = index.status().documents
    out["problems"] = index.check().problems
print(json.dumps(out))
"""
    )
    (tmp_path / "disk").mkdir()
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    command = f"mount -t tmpfs -o size=600k tmpfs {tmp_path / 'disk'} && {sys.executable} {script}"
    result = subprocess.run([*unshare, "sh", "-c", command], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    summary = {key: value for key, value in out.items() if not key.endswith("_embedded") and key != "committed_before"}
    assert "disk is full" in out.get("error", "") or "free some space" in out.get("error", ""), summary
    assert out["problems"] == [], summary
    assert out["documents"] == 60, summary
    # Documents are committed as they are read, before their vectors: the first commits may
    # have fit, or not even the first.
    assert out["visible_before"] < 60, summary
    # What the first run committed was not paid for twice: only the batches that failed to
    # commit and those embedded behind them are redone. With one worker the pipeline keeps at
    # most four batches of 32 uncommitted (two running or queued, the rest done and waiting
    # for their commit), so at most 128 texts.
    committed = set(out["committed_before"])
    assert not committed & {digest(text).hex() for text in out["second_embedded"]}
    redone = set(out["first_embedded"]) & set(out["second_embedded"])
    assert len(redone) <= 128, (len(out["first_embedded"]), len(redone))


def test_threads_sharing_one_index_take_turns(tmp_path):
    texts = [f"record {i} word{i} about password resets" for i in range(400)]

    def query(i: int) -> list[str]:
        mode = "keyword" if i % 2 else "hybrid"
        return [hit.path for hit in index.search(f"word{i}", mode=mode, limit=3)]

    with Index.open(tmp_path / "ix", embedder=FakeEmbedder()) as index:
        index.add_texts([f"t{i}" for i in range(400)], texts)
        expected = {i: query(i) for i in range(400)}
    index = Index.open(tmp_path / "ix", embedder=FakeEmbedder())
    wrong, errors = [], []
    start = threading.Barrier(4)

    def search(first: int) -> None:
        start.wait()
        for i in range(first, 400, 4):
            try:
                if query(i) != expected[i]:
                    wrong.append(i)
            except Exception as exc:  # noqa: BLE001 - any error is the finding
                errors.append(repr(exc))

    threads = [threading.Thread(target=search, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with index:
        assert errors == [] and wrong == []
        assert index.check().ok


def test_read_only_index_reads_commits_still_in_the_wal(tmp_path, corpus):
    """A killed run leaves commits in index.db-wal; a read-only copy must still see them."""
    index_dir = tmp_path / "ix"
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        index.add([corpus / "doc01.txt"])
    crash = (
        "import os\nfrom semsearch import Index\nfrom tests.conftest import FakeEmbedder\n"
        f"index = Index.open({str(index_dir)!r}, embedder=FakeEmbedder())\n"
        f"index.add([{str(corpus / 'doc02.txt')!r}])\n"
        "os._exit(0)  # no close: the WAL is not copied into the database file\n"
    )
    subprocess.run([sys.executable, "-c", crash], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), check=True)
    assert (index_dir / "index.db-wal").stat().st_size > 0
    index_dir.chmod(0o555)
    try:
        code = f"""
import json
from semsearch import Index
from tests.conftest import FakeEmbedder
with Index.open({str(index_dir)!r}, embedder=FakeEmbedder()) as index:
    print(json.dumps([index.status().documents, [h.path for h in index.search("volcanoes item2x1", limit=1)]]))
"""
        result = _run_without_write_access(code)
    finally:
        index_dir.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [2, [str(corpus / "doc02.txt")]]


def test_check_reports_a_damaged_database_and_does_not_claim_to_repair_it(tmp_path, corpus):
    index_dir = tmp_path / "ix"
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        index.add([corpus])
    connection = sqlite3.connect(index_dir / "index.db")
    try:
        page = connection.execute("SELECT max(pageno) FROM dbstat WHERE name = 'chunks' AND pagetype = 'leaf'").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table")
    finally:
        connection.close()
    with (index_dir / "index.db").open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xde\xad\xbe\xef" * 25)
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        for repair in (False, True):
            report = index.check(repair=repair)
            assert not report.ok and report.repaired == []
            assert report.problems and all(problem.startswith("SQLite: ") for problem in report.problems)
            assert "cannot mend" in report.advice and str(corpus) in report.advice


def test_check_sees_one_snapshot_while_another_process_commits(tmp_path, corpus, monkeypatch):
    from semsearch.storage.sqlite.store import Store

    index_dir = tmp_path / "ix"
    reading = Store.keyword_ids

    def commit_meanwhile(store):
        ids = reading(store)
        # Another writer commits between check's reads.
        with Index.open(index_dir, embedder=FakeEmbedder()) as other:
            other.add([corpus / "doc02.txt"])
        return ids

    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        index.add([corpus / "doc01.txt"])
        monkeypatch.setattr(Store, "keyword_ids", commit_meanwhile)
        report = index.check()
        monkeypatch.setattr(Store, "keyword_ids", reading)
        assert report.problems == []
        assert index.status().documents == 2 and index.check().problems == []


def test_processes_creating_one_index_at_once_all_succeed(tmp_path):
    index_dir = tmp_path / "ix"
    start = time.time() + 1.0
    code = (
        "import sys, time\nfrom semsearch import Index\nfrom tests.conftest import FakeEmbedder\n"
        f"time.sleep(max(0, {start} - time.time()))\n"
        f"Index.open({str(index_dir)!r}, embedder=FakeEmbedder()).close()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    runs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [run.communicate(timeout=120)[1] for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, errors
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        assert index.check().ok and index.model == "fake"


def test_an_index_filled_while_waiting_to_switch_models_is_kept(tmp_path, corpus, monkeypatch):
    """Opening an empty index with another model switches it, unless a run fills it first."""
    import semsearch.storage.local as index_module

    index_dir = tmp_path / "ix"
    Index.open(index_dir, embedder=FakeEmbedder()).close()
    real_lock = index_module.write_lock
    runs = []

    def lock_after_another_run(directory, *args):
        # What a run holding the lock commits before this open gets it.
        if not runs:
            runs.append(True)
            with Index.open(index_dir, embedder=FakeEmbedder()) as other:
                other.add([corpus / "doc01.txt"])
        return real_lock(directory, *args)

    monkeypatch.setattr(index_module, "write_lock", lock_after_another_run)
    with pytest.raises(ModelMismatchError):
        Index.open(index_dir, embedder=FakeEmbedder("other-model"))
    monkeypatch.setattr(index_module, "write_lock", real_lock)
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        assert index.status().documents == 1


def test_a_rebuild_stopped_before_its_commit_leaves_the_index_as_it_was(tmp_path, corpus, monkeypatch):
    from semsearch.storage.sqlite.store import Store

    index_dir = tmp_path / "ix"
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        index.add([corpus / "doc01.txt"])
    setting = Store.set_meta

    def stopped(store, values):
        if values.get("model") == "other-model":
            raise KeyboardInterrupt  # a kill between emptying and recording the new model
        setting(store, values)

    monkeypatch.setattr(Store, "set_meta", stopped)
    with pytest.raises(KeyboardInterrupt):
        Index.open(index_dir, embedder=FakeEmbedder("other-model"), rebuild=True)
    monkeypatch.setattr(Store, "set_meta", setting)
    with Index.open(index_dir) as index:
        assert index.model == "fake" and index.status().documents == 1


def test_a_failed_tidy_up_after_a_removal_still_reports_the_removal(tmp_path, corpus, monkeypatch, caplog):
    from semsearch.errors import StorageError
    from semsearch.storage.sqlite.store import Store

    def full(store, candidates=None):
        raise StorageError("Index database: database or disk is full: the disk is full.")

    with Index.open(tmp_path / "ix", embedder=FakeEmbedder()) as index:
        index.add([corpus])
        monkeypatch.setattr(Store, "delete_unused_vectors", full)
        assert index.remove([corpus / "doc01.txt"]) == 1
        monkeypatch.undo()
        assert "the change is saved" in caplog.text and "disk is full" in caplog.text
        assert index.status().documents == 29 and index.check().problems == []


def test_check_finds_vectors_damaged_in_the_faiss_file(tmp_path, corpus):
    import numpy as np

    index_dir = tmp_path / "ix"
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        index.add([corpus])
        index.search("glaciers", limit=1)
    vectors = index_dir / "vectors.faiss"
    data = bytearray(vectors.read_bytes())
    chunks = json.loads((index_dir / "vectors.json").read_text())["count"]
    # Flat IDMap2 file: the vectors (chunks × 64 floats), then the ids; overwrite the vectors.
    end = len(data) - chunks * 8 - 8
    start = end - chunks * 64 * 4
    data[start:end] = np.random.default_rng(0).standard_normal(chunks * 64).astype("<f4").tobytes()
    vectors.write_bytes(bytes(data))
    with Index.open(index_dir, embedder=FakeEmbedder()) as index:
        report = index.check()
        assert any(problem.startswith("FAISS cache: ") for problem in report.problems), report
        assert index.check(repair=True).ok
        assert index.check().problems == []
        assert index.search("glaciers item0x1", limit=1)[0].score <= 1.0


def test_a_long_run_saves_the_vector_cache_now_and_then(tmp_path, corpus, monkeypatch):
    """So that searches in other processes during the run need not rebuild it from SQLite."""
    from semsearch.storage.faiss import cache
    from semsearch.storage.faiss.vectors import read_note

    monkeypatch.setattr(cache, "SAVE_EVERY", 0.0)
    index_dir = tmp_path / "ix"
    embedder = FakeEmbedder()
    embedder.batch_size = 4
    seen = []
    with Index.open(index_dir, embedder=embedder) as index:
        index.add([corpus], progress=lambda event: seen.append(getattr(read_note(index_dir), "count", 0)))
        final = index.status().chunks
    assert any(0 < count < final for count in seen), seen
