"""Many indexers, one PostgreSQL index: real processes (tests/worker.py) at once, killed with
SIGKILL, or cut off by a server restart. Each logs every text it embeds, so a test can prove
that no text was paid for twice and that a resumed run paid for nothing already committed."""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from semsearch import Index
from tests.conftest import FakeEmbedder
from tests.test_safety import logged, spawn, wait_for

TOPICS = ["glaciers", "volcanoes", "orchids", "lighthouses", "comets", "bridges", "violins", "deserts"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(24):
        paragraphs = [f"Document {i} part {p} is about {TOPICS[i % len(TOPICS)]} and item{i}x{p}. " * 12 for p in range(3)]
        (folder / f"doc{i:02d}.txt").write_text("\n\n".join(paragraphs))
    return folder


def stored_hashes(url: str) -> set[bytes]:
    with psycopg.connect(url) as connection:
        return {bytes(row[0]) for row in connection.execute("SELECT hash FROM vectors WHERE embedding IS NOT NULL")}


def finish(process, timeout: float = 120) -> str:
    _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr
    return stderr


def test_indexers_at_once_on_one_folder_embed_each_text_once(tmp_path, postgres_url, corpus):
    with Index.open(postgres_url, embedder=FakeEmbedder()):
        pass  # set up once, so the runs race over the documents, not over the settings
    logs = [tmp_path / f"run{i}.log" for i in range(3)]
    runs = [spawn(postgres_url, corpus, log, "--delay", "0.05") for log in logs]
    for run in runs:
        finish(run)
    texts = [text for log in logs for text in logged(log)]
    assert texts and [text for text, count in Counter(texts).items() if count > 1] == []
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        assert index.status().documents == 24
        assert index.check().problems == []
        assert index.search("orchids", mode="keyword", limit=3)[0].path.endswith(".txt")


def test_indexers_of_two_folders_share_the_texts_they_have_in_common(tmp_path, postgres_url, corpus):
    with Index.open(postgres_url, embedder=FakeEmbedder()):
        pass
    copy = tmp_path / "copy"
    shutil.copytree(corpus, copy)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    runs = [spawn(postgres_url, folder, log, "--delay", "0.05") for folder, log in zip([corpus, copy], logs)]
    for run in runs:
        finish(run)
    texts = [text for log in logs for text in logged(log)]
    assert [text for text, count in Counter(texts).items() if count > 1] == []
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        status = index.status()
        assert status.documents == 48 and status.vectors == len(set(texts))
        assert index.check().problems == []


def test_a_killed_indexer_leaves_a_consistent_index_and_the_next_run_resumes(tmp_path, postgres_url, corpus):
    log = tmp_path / "killed.log"
    # Killed inside a commit of vectors once 12 are stored: in the middle of the backlog.
    run = spawn(postgres_url, corpus, log, "--pause-in", "postgres", "--vectors", "--after", "12", "--delay", "0.05")
    wait_for(lambda: Path(str(log) + ".paused").exists() or run.poll() is not None)
    assert run.poll() is None, run.stderr.read() if run.stderr else ""
    run.send_signal(signal.SIGKILL)
    run.wait()
    before = stored_hashes(postgres_url)
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        assert index.check().problems == []
        status = index.status()
        assert status.documents > 0 and status.waiting_chunks > 0 and status.vectors == len(before) > 0
        # A chunk still waiting for its vector is found by its rare word.
        hits = [hit for i in range(24) for hit in index.search(f"item{i}x1", mode="keyword", limit=1)]
        assert any(index._backend.waiting_among([hit.chunk_id]) for hit in hits)
    resumed = tmp_path / "resumed.log"
    finish(spawn(postgres_url, corpus, resumed))
    from tests.test_safety import digest

    again = [text for text in logged(resumed) if digest(text) in before]
    assert again == [], "nothing committed before the kill was embedded again"
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        status = index.status()
        assert (status.documents, status.waiting_chunks) == (24, 0) and index.check().problems == []


def test_a_server_restart_mid_run_is_a_clear_error_and_the_next_run_completes(tmp_path, postgres_server, postgres_url, corpus):
    log = tmp_path / "cut.log"
    run = spawn(postgres_url, corpus, log, "--delay", "0.3")
    wait_for(lambda: len(logged(log)) >= 4 or run.poll() is not None)
    postgres_server.restart()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode != 0
    assert "Cannot reach the index database postgresql://postgres@127.0.0.1" in stderr
    assert "Check that the server is running" in stderr and "s3cret" not in stderr
    time.sleep(0.2)
    finish(spawn(postgres_url, corpus, tmp_path / "again.log"))
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        assert index.status().documents == 24 and index.check().problems == []


def test_indexers_sharing_a_contract_share_its_rate_limit(tmp_path, postgres_url, corpus):
    from tests.openai_server import OpenAIServer

    with OpenAIServer(rate=4, burst=4) as server:
        with Index.open(postgres_url, model="BAAI/bge-m3", base_url=server.url, api_key="test-token", state_path=tmp_path / "s.json"):
            pass
        copy = tmp_path / "copy"
        copy.mkdir()
        for path in corpus.iterdir():  # other texts, so both indexers have work of their own
            (copy / path.name).write_text(path.read_text().replace("Document", "Report"))
        server.reset_counters()
        started = time.monotonic()
        runs = [
            spawn(postgres_url, folder, tmp_path / f"{folder.name}.log", "--remote", server.url, "--rps", "4", "--burst", "4")
            for folder in (corpus, copy)
        ]
        for run in runs:
            finish(run, timeout=300)
        elapsed = time.monotonic() - started
        requests, limited = server.requests, server.rate_limited
    assert requests >= 20
    assert limited == 0, f"{limited} of {requests} requests were refused for the rate"
    assert elapsed >= (requests - 4) / 4, "together they kept to 4 requests a second"


def test_texts_past_the_claim_limit_wait_in_the_backlog_instead_of_being_embedded_twice(tmp_path, postgres_url, corpus, monkeypatch):
    import threading

    from semsearch.storage.postgres import writer

    monkeypatch.setattr(writer, "MAX_CLAIMS", 4)
    with Index.open(postgres_url, embedder=FakeEmbedder()):
        pass
    embedded: list[str] = []

    class Slow(FakeEmbedder):
        batch_size = 2

        def embed_documents(self, texts):
            embedded.extend(texts)
            time.sleep(0.02)
            return super().embed_documents(texts)

    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Index.open(postgres_url, embedder=Slow()) as index:
                index.add([corpus])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(120)
    assert errors == []
    assert embedded and [text for text, count in Counter(embedded).items() if count > 1] == []
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        status = index.status()
        assert (status.documents, status.waiting_chunks) == (24, 0) and index.check().problems == []
        assert status.vectors == len(embedded)
