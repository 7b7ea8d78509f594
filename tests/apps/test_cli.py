"""The command line: exit codes, output people read, JSON scripts read."""

from __future__ import annotations

import json

from click.testing import CliRunner

from semsearch.apps.cli import cli


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_index_then_search(docs, fake_model):
    result = run("index", str(docs), "--model", "fake")
    assert result.exit_code == 0, result.output
    assert "using model fake (--model)" in result.output
    assert "Indexed 4 files" in result.output and "4 new" in result.output
    assert "Skipped: 1 binary file, 1 unsupported file type." in result.output
    result = run("search", "what do kittens eat", "--limit", "2")
    assert result.exit_code == 0
    first = result.output.splitlines()[0]
    assert first.startswith("1. ") and "cats.md:" in first and "score" in first
    assert "kittens" in result.output


def test_search_json(docs, fake_model):
    run("index", str(docs), "--model", "fake")
    result = run("search", "night trains vienna", "--json", "--limit", "3")
    assert result.exit_code == 0
    hits = json.loads(result.output)
    assert len(hits) == 3
    assert {"path", "score", "text", "start_line", "end_line", "chunk_id"} <= set(hits[0])
    assert hits[0]["path"].endswith("travel.html")
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_index_json_summary_and_verbose_skips(docs, fake_model):
    result = run("index", str(docs), "--model", "fake", "--json")
    summary = json.loads(result.output)
    assert summary["new"] == 4 and summary["skipped_by_reason"] == {"binary file": 1, "unsupported file type": 1}
    result = run("index", str(docs), "--verbose")
    assert "4 unchanged" in result.output
    assert "junk.txt: binary file" in result.output


def test_status(docs, fake_model, tmp_path):
    run("index", str(docs), "--model", "fake")
    result = run("status")
    assert result.exit_code == 0
    assert "Model:      fake (64 dimensions)" in result.output
    assert "Documents:  4" in result.output
    assert str(docs) in result.output
    info = json.loads(run("status", "--json").output)
    assert info["documents"] == 4 and info["model"] == "fake" and info["disk_bytes"] > 0
    assert info["path"] == str(tmp_path / "index")


def test_index_option_on_the_group(docs, fake_model, tmp_path):
    result = run("--index", str(tmp_path / "elsewhere"), "index", str(docs), "--model", "fake")
    assert result.exit_code == 0
    assert (tmp_path / "elsewhere" / "index.db").exists()
    assert not (tmp_path / "index").exists()


def test_remove(docs, fake_model):
    run("index", str(docs), "--model", "fake")
    result = run("remove", str(docs / "pets" / "cats.md"))
    assert result.output.startswith("Removed 1 document.\n") and "adds it back" in result.output
    hits = json.loads(run("search", "cats kittens", "--json").output)
    assert all(not hit["path"].endswith("cats.md") for hit in hits)


def test_search_without_an_index(tmp_path):
    result = run("search", "anything")
    assert result.exit_code == 1
    assert "No index at" in result.output and "semsearch index FOLDER" in result.output


def test_model_mismatch_is_an_error(docs, fake_model):
    run("index", str(docs), "--model", "fake")
    result = run("index", str(docs), "--model", "local")
    assert result.exit_code == 1
    assert "built with model fake, not local" in result.output


def test_missing_folder(fake_model):
    result = run("index", "no-such-folder", "--model", "fake")
    assert result.exit_code == 1
    assert "no-such-folder: no such file or folder" in result.output


def test_models_without_token_lists_local():
    result = run("models")
    assert result.exit_code == 0
    assert result.output.startswith("local")
    assert "384 dims" in result.output


def test_search_refuses_limits_that_could_show_nothing(docs, fake_model):
    run("index", str(docs), "--model", "fake")
    for option, value in (("--limit", "0"), ("--per-file", "-1")):
        result = CliRunner().invoke(cli, ["search", "kittens", option, value])
        assert result.exit_code == 2 and f"Invalid value for '{option}" in result.output, result.output


def test_index_summary_counts_one_file_in_the_singular(docs, fake_model):
    result = run("index", str(docs / "pets" / "cats.md"), "--model", "fake")
    assert result.output.splitlines()[-2].startswith("Indexed 1 file in "), result.output


def test_index_without_folders_creates_no_index(tmp_path, fake_model):
    result = CliRunner().invoke(cli, ["--index", str(tmp_path / "ix"), "index"])
    assert result.exit_code == 1 and "No index at" in result.output and "semsearch index FOLDER" in result.output
    assert not (tmp_path / "ix").exists()


def test_search_of_an_empty_index_says_how_to_fill_it(tmp_path, docs, fake_model):
    where = str(tmp_path / "ix")
    run("--index", where, "index", str(docs), "--model", "fake")
    run("--index", where, "remove", str(docs))
    result = CliRunner().invoke(cli, ["--index", where, "search", "kittens"])
    assert result.exit_code == 0 and "No results." in result.output
    assert "holds no documents yet: add some with `semsearch index FOLDER`" in result.output
    run("--index", where, "index", str(docs))
    result = CliRunner().invoke(cli, ["--index", where, "search", "zzzqqq", "--mode", "keyword"])
    assert result.output == "No results.\n", "a full index with nothing matching needs no advice"


def test_status_of_an_index_never_given_a_document(tmp_path, fake_model):
    (tmp_path / "empty").mkdir()
    where = str(tmp_path / "ix")
    run("--index", where, "index", str(tmp_path / "empty"), "--model", "fake")
    assert "Vectors:    none yet" in run("--index", where, "status").output.splitlines()


def test_an_interrupted_rebuild_says_to_continue_without_rebuild(docs, fake_model, monkeypatch):
    from semsearch.index import Index

    run("index", str(docs), "--model", "fake")

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Index, "add", interrupted)
    result = CliRunner().invoke(cli, ["index", "--rebuild"])
    assert result.exit_code == 130
    assert "run `semsearch index` (without --rebuild) to continue" in result.output
    result = CliRunner().invoke(cli, ["index"])
    assert result.exit_code == 130 and "run the command again to continue" in result.output


def test_a_mistyped_folder_creates_no_index(tmp_path, fake_model):
    result = CliRunner().invoke(cli, ["--index", str(tmp_path / "ix"), "index", str(tmp_path / "sampel_docs")])
    assert result.exit_code == 1 and "no such file or folder" in result.output
    assert not (tmp_path / "ix").exists()


def test_remove_says_when_nothing_matched_and_when_a_folder_comes_back(docs, fake_model):
    run("index", str(docs), "--model", "fake")
    result = CliRunner().invoke(cli, ["remove", str(docs / "typo")])
    assert "Removed 0 documents." in result.output and "Nothing in the index is at or under" in result.output
    result = CliRunner().invoke(cli, ["remove", str(docs / "pets")])
    assert "Removed 2 documents." in result.output
    assert f"the next `semsearch index` adds it back. To leave it out, run `semsearch index {docs} --exclude 'pets'`" in result.output
    run("index", str(docs), "--exclude", "pets")
    assert "Removed 0 documents." in run("remove", str(docs / "pets")).output


def test_a_rebuild_says_how_many_records_it_dropped(docs, fake_model, tmp_path):
    from semsearch import Index

    run("index", str(docs), "--model", "fake")
    with Index.open(None, embedder=fake_model) as index:
        index.add_texts(["rec1", "rec2"], ["First record.", "Second record."])
    result = CliRunner().invoke(cli, ["index", "--rebuild"])
    assert "The rebuild dropped 2 records added with add_texts: add them again." in result.output
    assert "dropped" not in CliRunner().invoke(cli, ["index", "--rebuild"]).output


def test_control_characters_from_documents_are_shown_escaped(tmp_path, fake_model):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "esc.txt").write_text("wombat burrow\n\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED wombat burrow\n")
    (docs / "\x1b[31mred.txt").write_text("wombat burrow in red\n")
    index = tmp_path / "ix"
    assert run("--index", str(index), "index", str(docs), "--model", "fake").exit_code == 0
    for extra in ([], ["--files"]):
        result = run("--index", str(index), "search", "wombat burrow", *extra)
        assert result.exit_code == 0
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "\\x1b" in result.output


def test_an_update_of_every_folder_keeps_a_missing_one_and_updates_the_rest(tmp_path, fake_model):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "x.txt").write_text("the axolotl regrows its limbs")
    (second / "y.txt").write_text("the bonobo shares its food")
    index = tmp_path / "ix"
    assert run("--index", str(index), "index", str(first), str(second), "--model", "fake").exit_code == 0
    (first / "x.txt").unlink()
    first.rmdir()
    (second / "z.txt").write_text("the cassowary guards its eggs")
    result = run("--index", str(index), "index")
    assert result.exit_code == 0, result.output
    assert f"Not found: {first}" in result.output and "semsearch remove" in result.output
    found = run("--index", str(index), "search", "cassowary eggs", "--files", "--limit", "3").output.split()
    assert str(second / "z.txt") in found
    kept = run("--index", str(index), "search", "axolotl limbs", "--files", "--limit", "1").output.split()
    assert kept == [str(first / "x.txt")], "an unmounted drive's documents are not dropped"


def test_max_file_size_is_remembered_per_folder(tmp_path, fake_model):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.txt").write_text("a long report about river otters " * 100)  # 3.3 KB
    (docs / "small.txt").write_text("a note about herons")
    index = tmp_path / "ix"
    result = run("--index", str(index), "index", str(docs), "--model", "fake", "--max-file-size", "1KB")
    assert "1 new" in result.output and "too large" in result.output
    result = run("--index", str(index), "index")
    assert "0 new" in result.output and "too large" in result.output, "the 1KB limit still holds"
    result = run("--index", str(index), "index", str(docs), "--max-file-size", "10KB")
    assert "1 new" in result.output
    for again in ([], [str(docs)]):
        result = run("--index", str(index), "index", *again)
        assert result.exit_code == 0 and "0 removed" in result.output and "2 unchanged" in result.output, result.output
    result = run("--index", str(index), "index", "--max-file-size", "1KB")
    assert "1 removed" in result.output


def test_a_rebuild_names_the_folders_it_brings_back(tmp_path, fake_model, monkeypatch):
    from semsearch import embedding
    from tests.conftest import FakeEmbedder

    first, second = tmp_path / "docs3", tmp_path / "docs3x"
    for folder in (first, second):
        folder.mkdir()
        (folder / "a.txt").write_text(f"Notes kept in {folder.name}.")
    run("index", str(first), str(second), "--model", "fake")
    other = FakeEmbedder("fake-2", dimensions=16)
    make = embedding.make_embedder
    monkeypatch.setattr(embedding, "make_embedder", lambda model_id, **options: other if model_id == "fake-2" else make(model_id, **options))
    result = run("index", str(first), "--rebuild", "--model", "fake-2")
    assert result.exit_code == 0, result.output
    assert f"Also indexed, as the rebuild emptied every folder: {second}." in result.output
    assert "Indexed 2 files" in result.output
