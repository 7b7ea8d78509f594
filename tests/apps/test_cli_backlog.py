"""The command line while vectors are missing: status shows the backlog, searches say how
many chunks wait, progress shows both stages, and the next `index` embeds what is left."""

from __future__ import annotations

import json

from semsearch.apps.cli.indexing import ProgressLine
from semsearch.results import Progress
from tests.apps.test_remote_cli import TOKEN, run
from tests.openai_server import as_endpoint


def test_a_service_outage_leaves_documents_searchable_by_keyword_and_the_next_run_embeds_them(monkeypatch, docs):
    with as_endpoint(monkeypatch, TOKEN) as server:
        assert run("index", str(docs / "garden.rst")).exit_code == 0
        server.error_rate = 1.0
        monkeypatch.setenv("SEMSEARCH_MAX_RETRIES", "0")
        failed = run("index", str(docs))
        assert failed.exit_code == 1 and "searchable by keyword" in failed.output
        status = run("status")
        assert "Waiting:" in status.output and "for their vectors" in status.output
        waiting = json.loads(run("status", "--json").stdout)["waiting_chunks"]
        assert waiting > 0
        server.error_rate = 0.0
        hybrid = run("search", "cats purr")
        assert "cats.md" in hybrid.stdout
        assert f"{waiting:,} chunks are still waiting for their vectors" in hybrid.stderr
        server.reset_counters()
        resumed = json.loads(run("index", "--json").stdout)
        assert resumed["chunks_embedded"] > 0 and resumed["new"] == resumed["changed"] == 0
        assert json.loads(run("status", "--json").stdout)["waiting_chunks"] == 0
        assert "waiting" not in run("search", "cats purr").stderr


def test_progress_shows_documents_written_and_chunks_embedded(capsys):
    progress = ProgressLine(enabled=True).__enter__()
    progress(Progress(3, 10, 0, waiting=40))
    progress(Progress(10, 10, 40, waiting=0))
    progress(Progress(10, 10, 40, "saving the vector cache", 0))
    progress.__exit__(None, None, None)
    err = capsys.readouterr().err
    assert "3/10 documents written, 0 chunks embedded, 40 waiting" in err
    assert "10/10 documents written, 40 chunks embedded" in err
    assert "Saving the vector cache…" in err
