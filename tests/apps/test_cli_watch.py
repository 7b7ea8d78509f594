"""`semsearch watch` as a process of its own, against the loopback embedding service:
its output, SIGTERM, and a SIGKILL in the middle of a storm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from semsearch import Index
from tests.openai_server import OpenAIServer, endpoint_environment

TOKEN = "watch-secret-31b7c0"


@pytest.fixture
def server():
    with OpenAIServer(token=TOKEN) as running:
        yield running


def environment(server) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEMSEARCH_")}
    env.update(endpoint_environment(server, TOKEN))
    return env


class Lines:
    """A process's stdout or stderr, read line by line in a thread."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r} in {self.lines}")


def _stored_vectors(index: Path) -> int:
    import sqlite3
    from contextlib import closing

    databases = list(index.glob("*.db"))
    if not databases:
        return 0
    with closing(sqlite3.connect(f"file:{databases[0]}?mode=ro", uri=True, timeout=5)) as db:
        # A text waiting for its vector has a row with an empty blob.
        return db.execute("SELECT count(*) FROM vectors WHERE length(vector) > 0").fetchone()[0]


def start(server, index: Path, *args: str) -> tuple[subprocess.Popen, Lines, Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "--index", str(index), "watch", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(server),
    )
    return process, Lines(process.stdout), Lines(process.stderr)


def test_watch_prints_a_json_line_per_update_and_stops_on_sigterm(server, tmp_path, docs):
    process, out, err = start(server, tmp_path / "index", str(docs), "--json")
    try:
        out.wait_for('"event": "watching"')
        first = json.loads(out.wait_for('"event": "update"'))  # the start-up pass indexed the folder
        assert first["new"] > 0
        (docs / "kiwi.md").write_text("Kiwis are flightless birds.\n")
        update = None
        deadline = time.monotonic() + 30
        while update is None or update.get("new") != 1:
            assert time.monotonic() < deadline, out.lines
            updates = [json.loads(line) for line in out.lines if '"event": "update"' in line]
            update = updates[-1] if len(updates) > 1 else None
            time.sleep(0.05)
        assert update["chunks_embedded"] == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        process.kill()
        process.wait()
    assert "Stopped watching" in "".join(err.lines)
    assert TOKEN not in "".join(out.lines + err.lines)


def test_watch_is_quiet_when_nothing_changes(server, tmp_path, docs):
    process, out, err = start(server, tmp_path / "index", str(docs))
    try:
        err.wait_for("Watching")
        settled = len(out.lines)
        (docs / "notes.md.swp").write_text("swap")
        time.sleep(2.0)
        assert len(out.lines) == settled
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    assert len([line for line in out.lines if "updated" in line]) == 1  # the start-up pass


def test_a_sigkill_mid_storm_resumes_consistent_with_every_file_once(server, tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(20):
        (folder / f"seed{i}.md").write_text(f"Seed file {i}.\n")
    index = tmp_path / "index"
    # Eight inputs a request (the client learns it in the start-up pass), slow ones once
    # the storm comes: it takes dozens of requests, each committed as it is answered.
    server.max_batch = 8
    process, out, err = start(server, index, str(folder))
    try:
        err.wait_for("Watching")
        server.latency = 0.3
        for i in range(300):
            (folder / f"page{i}.txt").write_text(f"Storm page {i} mentions the word storm{i}.\n")
        deadline = time.monotonic() + 60
        # Killed once some of the storm's vectors are committed (read from the database, as
        # the process pools its commits), long before all of them are.
        while _stored_vectors(index) < 20 + 16:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        process.kill()
        process.wait()
    time.sleep(0.5)  # a request in flight at the kill is answered to nobody: count it now
    embedded_before = server.inputs
    server.latency = 0.0
    for key in ("SEMSEARCH_BASE_URL", "IONOS_API_TOKEN", "SEMSEARCH_RPS", "SEMSEARCH_BURST"):
        monkeypatch.setenv(key, environment(server)[key])
    with Index.open(index) as reopened:
        stats = reopened.add()
        assert reopened.check().ok
        states = reopened._backend.document_states(reopened.folders())
        assert len(states) == 320
        # The batches committed before the kill are not paid for again.
        assert 0 < stats.chunks_embedded < 300
        assert server.inputs - embedded_before == stats.chunks_embedded
        hits = reopened.search("storm299", mode="keyword", limit=1)
        assert hits and hits[0].path.endswith("page299.txt")


def test_serve_watch_answers_with_what_changes_while_it_serves(server, tmp_path, docs):
    import socket

    import httpx

    index = tmp_path / "index"
    subprocess.run(
        [sys.executable, "-m", "semsearch", "--index", str(index), "index", str(docs)],
        env=environment(server), check=True, capture_output=True,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "--index", str(index), "serve", "--port", str(port), "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(server),
    )
    err = Lines(process.stderr)
    try:
        err.wait_for("Watching")
        (docs / "kiwi.md").write_text("Kiwis are flightless birds of New Zealand.\n")
        deadline = time.monotonic() + 30
        while True:
            hits = httpx.get(
                f"http://127.0.0.1:{port}/api/search", params={"q": "flightless kiwis", "mode": "keyword"}, timeout=10
            ).json()["results"]
            if hits and hits[0]["path"].endswith("kiwi.md"):
                break
            assert time.monotonic() < deadline, err.lines
            time.sleep(0.1)
        err.wait_for("updated 1 file (1 new")
        process.send_signal(signal.SIGINT)
        assert process.wait(40) in (0, 130)  # Ctrl-C: served and watched until told
    finally:
        process.kill()
        process.wait()
    assert TOKEN not in "".join(err.lines)
