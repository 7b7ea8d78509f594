"""The SQLite keyword index (FTS5) kept in step with the chunks, and repaired when it is not."""

from __future__ import annotations

import sqlite3

from semsearch import Index


def test_keyword_index_follows_changes_and_check_repairs_it(tmp_path, library, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        (library / "tea.txt").write_text("Black tea wants boiling water and four minutes.\n")
        (library / "errors.md").unlink()
        index.add([library])
        assert index.search("KX-4471", mode="keyword") == []
        assert index.search("green", mode="keyword") == []
        assert index.search("black tea boiling", mode="keyword")[0].path.endswith("tea.txt")
        assert index.check().problems == []
    connection = sqlite3.connect(tmp_path / "ix" / "index.db")
    with connection:
        connection.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")
    connection.close()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert any("keyword index" in problem for problem in index.check().problems)
        assert index.check(repair=True).ok
        assert index.check().problems == []
        assert index.search("black tea boiling", mode="keyword")[0].path.endswith("tea.txt")


def test_keyword_counts_follow_changes_by_another_connection(tmp_path, library, fake):
    # A searcher keeps its query words' analysis and counts, but not past a change.
    with Index.open(tmp_path / "ix", embedder=fake) as searcher:
        with Index.open(tmp_path / "ix", embedder=fake) as writer:
            writer.add([library])
        assert searcher._backend.store.keyword_search(["zeppelin"], 10)[0] == []
        assert len(searcher._backend.store.keyword_search(["minutes", "zeppelin"], 10)[0]) == 1
        (library / "zeppelin.txt").write_text("The zeppelin flight took ninety minutes.\n")
        with Index.open(tmp_path / "ix", embedder=fake) as writer:
            writer.add([library])
        assert len(searcher._backend.store.keyword_search(["zeppelin"], 10)[0]) == 1
        assert searcher.search("zeppelin minutes", mode="keyword")[0].path.endswith("zeppelin.txt")
