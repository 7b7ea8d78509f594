"""The command line on an index in PostgreSQL: the same commands, and a password never shown."""

from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner

from semsearch.apps.cli import cli
from tests.pgserver import PASSWORD


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_index_search_status_check_remove_on_a_url(docs, fake_model, postgres_url, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_INDEX", postgres_url)
    shown = postgres_url.replace(f":{PASSWORD}@", "@")
    outputs = []
    result = run("index", str(docs), "--model", "fake")
    outputs.append(result.output)
    assert result.exit_code == 0, result.output
    assert f"New index at {shown} using model fake" in result.output and "4 new" in result.output
    result = run("search", "what do kittens eat", "--limit", "2")
    outputs.append(result.output)
    assert result.exit_code == 0 and "cats.md:" in result.output.splitlines()[0]
    result = run("status")
    outputs.append(result.output)
    assert f"Index:      {shown}\n" in result.output and "Documents:  4" in result.output
    info = json.loads(run("status", "--json").output)
    assert info["path"] == shown and info["documents"] == 4 and info["index_type"].startswith("hnsw")
    result = run("check")
    outputs.append(result.output)
    assert result.exit_code == 0 and "The index is sound." in result.output
    result = run("remove", str(docs / "pets" / "cats.md"))
    outputs.append(result.output)
    assert result.output.startswith("Removed 1 document.\n")
    hits = json.loads(run("search", "cats kittens", "--json").output)
    assert hits and all(not hit["path"].endswith("cats.md") for hit in hits)
    assert not any(PASSWORD in output for output in outputs)


def test_index_option_takes_a_url(docs, fake_model, postgres_url, tmp_path):
    result = run("--index", postgres_url, "index", str(docs), "--model", "fake")
    assert result.exit_code == 0, result.output
    result = run("search", "--index", postgres_url, "night trains vienna", "--json")
    assert json.loads(result.output)[0]["path"].endswith("travel.html")
    assert not (tmp_path / "index").exists(), "the default index was not touched"


def test_a_wrong_password_says_what_to_check_without_showing_it(docs, fake_model, postgres_url):
    wrong = postgres_url.replace(PASSWORD, "not-the-pw-9913")
    result = run("--index", wrong, "index", str(docs), "--model", "fake")
    assert result.exit_code == 1
    assert "Cannot reach the index database postgresql://postgres@127.0.0.1:" in result.output
    assert "password" in result.output and "not-the-pw-9913" not in result.output and PASSWORD not in result.output


def test_a_server_that_is_not_there_is_a_clear_error(fake_model):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("--index", f"postgresql://someone:hush-3311@127.0.0.1:{port}/db", "status")
    assert result.exit_code == 1
    assert f"postgresql://someone@127.0.0.1:{port}/db" in result.output
    assert "Check that the server is running" in result.output and "hush-3311" not in result.output


def test_pgpassword_and_libpq_parameters_pass_through(docs, fake_model, postgres_url, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    bare = postgres_url.replace(f":{PASSWORD}@", "@") + "?sslmode=disable&application_name=team"
    result = run("--index", bare, "index", str(docs), "--model", "fake")
    assert result.exit_code == 0, result.output
    assert "sslmode=disable" in run("--index", bare, "status").output


def test_a_read_only_role_searches_and_may_not_index(docs, fake_model, postgres_url):
    assert run("--index", postgres_url, "index", str(docs), "--model", "fake").exit_code == 0
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DO $$ BEGIN CREATE ROLE reader LOGIN PASSWORD 'read-pw-5150'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        connection.execute(f"GRANT CONNECT ON DATABASE {database} TO reader")
        connection.execute("GRANT USAGE ON SCHEMA public TO reader")
        connection.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    reader = postgres_url.replace(f"postgres:{PASSWORD}@", "reader:read-pw-5150@")
    result = run("--index", reader, "search", "what do kittens eat", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["path"].endswith("cats.md")
    result = run("--index", reader, "index", str(docs))
    assert result.exit_code == 1 and "may only read" in result.output and "read-pw-5150" not in result.output
