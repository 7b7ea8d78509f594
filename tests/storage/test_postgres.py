"""What only a PostgreSQL index does: documents known by their folder's name, so machines
that mount one share at different places share its documents."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from semsearch import Index
from semsearch.errors import SemsearchError
from semsearch.storage.postgres import places


def as_host(monkeypatch, name: str) -> None:
    monkeypatch.setattr(places, "this_host", lambda: name)


def test_two_machines_mounting_a_share_at_different_places_share_its_documents(tmp_path, postgres_url, docs, fake, monkeypatch):
    first, second = tmp_path / "mnt" / "share", tmp_path / "Volumes" / "share"
    shutil.copytree(docs, first)
    shutil.copytree(first, second)  # copy2 keeps the modification times, as a share shows them
    as_host(monkeypatch, "laptop")
    with Index.open(postgres_url, embedder=fake) as index:
        assert index.add([first]).new == 4
    embedded = len(fake.embedded)
    as_host(monkeypatch, "server")
    with Index.open(postgres_url, embedder=fake) as index:
        stats = index.add([second])
        assert stats.new == 0 and stats.unchanged == 4 and len(fake.embedded) == embedded
        assert index.search("what do kittens eat", limit=1)[0].path == str(second / "pets" / "cats.md")
        assert index.status().roots == [str(second)]
    with psycopg.connect(postgres_url) as connection:
        stored = sorted(row[0] for row in connection.execute("SELECT path FROM documents"))
    assert stored == ["share/garden.rst", "share/pets/cats.md", "share/pets/dogs.txt", "share/travel.html"]
    as_host(monkeypatch, "laptop")
    with Index.open(postgres_url, embedder=fake) as index:
        assert index.search("what do kittens eat", limit=1)[0].path == str(first / "pets" / "cats.md")
    as_host(monkeypatch, "desktop")  # never indexed it: shown where it was last found
    with Index.open(postgres_url, embedder=fake) as index:
        assert index.search("what do kittens eat", limit=1)[0].path == str(second / "pets" / "cats.md")


def test_two_folders_of_one_name_on_one_machine_are_refused(tmp_path, postgres_url, fake):
    for parent in ("a", "b"):
        (tmp_path / parent / "notes").mkdir(parents=True)
        (tmp_path / parent / "notes" / "n.txt").write_text(f"Notes from {parent}.")
    with Index.open(postgres_url, embedder=fake) as index:
        index.add([tmp_path / "a" / "notes"])
        with pytest.raises(SemsearchError, match="Another folder named 'notes'"):
            index.add([tmp_path / "b" / "notes"])
        assert index.status().documents == 1


def test_a_moved_folder_keeps_its_documents(tmp_path, postgres_url, docs, fake):
    with Index.open(postgres_url, embedder=fake) as index:
        index.add([docs])
        moved = tmp_path / "elsewhere" / "docs"
        moved.parent.mkdir()
        docs.rename(moved)
        embedded = len(fake.embedded)
        stats = index.add([moved])
        assert stats.new == 0 and stats.unchanged == 4 and len(fake.embedded) == embedded
        assert index.status().roots == [str(moved)]


def test_a_url_is_shown_without_its_password_wherever_it_is_given():
    from semsearch.storage.postgres.connection import scrub, shown

    assert shown("postgresql://ann:p%40ss@db:5432/docs?sslmode=require") == "postgresql://ann@db:5432/docs?sslmode=require"
    assert shown("postgres://db/docs?user=ann&password=hunter2&sslmode=verify-full") == "postgres://db/docs?user=ann&sslmode=verify-full"
    assert scrub("failed for p@ss and p%40ss", "postgresql://ann:p%40ss@db/docs") == "failed for *** and ***"


def test_an_open_index_in_a_database_without_one_is_not_found(postgres_server):
    import psycopg

    from semsearch.errors import IndexNotFoundError

    with psycopg.connect(postgres_server.url(), autocommit=True) as connection:
        connection.execute("CREATE DATABASE empty_one")
    with pytest.raises(IndexNotFoundError, match="No index in the database postgresql://postgres@127.0.0.1"):
        Index.open(postgres_server.url("empty_one"), create=False)
