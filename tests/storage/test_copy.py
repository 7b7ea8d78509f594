"""Copying an index between backends with its vectors: nothing embedded again, the same answers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from semsearch import Index, copy_index
from semsearch.apps.cli import cli
from semsearch.errors import SemsearchError
from tests.pgserver import PASSWORD

QUERIES = ["what do kittens eat", "night trains vienna", "pruning roses spring", "Köln cathedral", "北京的建筑"]


def answers(location, fake, modes=("hybrid", "dense", "keyword")) -> list:
    found = []
    with Index.open(location, embedder=fake, create=False) as index:
        for query in QUERIES:
            for mode in modes:
                for filters in ({}, {"ext": "md"}):
                    hits = index.search(query, mode=mode, limit=50, per_file=0, **filters)
                    # Every hit (no cut among equal scores), in an order that does not depend on chunk ids.
                    found.append(sorted((-round(hit.score, 5), hit.path, hit.text, hit.section, hit.start_line) for hit in hits))
        status = index.status()
    return [found, status.documents, status.chunks, status.vectors, status.roots, status.model]


def test_local_to_postgres_and_back_gives_the_same_answers_without_embedding(tmp_path, postgres_url, docs, library, fake):
    local = tmp_path / "ix"
    with Index.open(local, embedder=fake) as index:
        index.add([docs, library], include=None)
    before = answers(local, fake)
    embedded = len(fake.embedded)
    assert copy_index(local, postgres_url) == 9
    # The same vectors, so the same dense answers; keyword scores are PostgreSQL's own BM25.
    assert answers(postgres_url, fake, ["dense"]) == answers(local, fake, ["dense"])
    back = tmp_path / "back"
    assert copy_index(postgres_url, back) == 9
    assert answers(back, fake) == before
    assert len(fake.embedded) == embedded, "nothing was embedded again"
    with Index.open(back, embedder=fake) as index:
        assert index.check().problems == []
        assert index.add([docs, library]).unchanged == 9, "the copy knows its files are unchanged"


def test_a_destination_holding_documents_is_refused(tmp_path, postgres_url, docs, fake):
    with Index.open(tmp_path / "a", embedder=fake) as index:
        index.add([docs])
    with Index.open(postgres_url, embedder=fake) as index:
        index.add_texts(["r1"], ["Something else entirely."])
    with pytest.raises(SemsearchError, match="already holds documents"):
        copy_index(tmp_path / "a", postgres_url)


def test_the_copy_command(tmp_path, postgres_url, docs, fake_model):
    runner = CliRunner()
    assert runner.invoke(cli, ["--index", str(tmp_path / "a"), "index", str(docs), "--model", "fake"]).exit_code == 0
    result = runner.invoke(cli, ["copy", str(tmp_path / "a"), postgres_url])
    assert result.exit_code == 0, result.output
    assert result.output == f"Copied 4 documents to {postgres_url.replace(':' + PASSWORD + '@', '@')}.\n"
    result = runner.invoke(cli, ["--index", postgres_url, "search", "kittens", "--json"])
    assert '"cats.md' in result.output or "cats.md" in result.output
