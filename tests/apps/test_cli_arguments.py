"""Arguments a hostile or careless user gives: one clear line and exit status 1 (or click's
usage error, 2), never a traceback, and nothing left behind."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from semsearch.apps.cli import cli

# What a shell passes for "$(printf 'pass\xff\xfeword')": bytes that are not UTF-8, which
# Python keeps as lone surrogates.
NOT_UTF8 = os.fsdecode(b"pass\xff\xfeword")


def run(*arguments: str):
    return CliRunner().invoke(cli, list(arguments))


@pytest.fixture
def indexed(docs, fake_model, tmp_path):
    result = run("index", str(docs), "--model", "fake")
    assert result.exit_code == 0, result.output
    return tmp_path / "index"


@pytest.mark.parametrize(
    "arguments",
    [
        ["search", NOT_UTF8],
        ["search", "cats", "--path", NOT_UTF8],
        ["remove", NOT_UTF8],
        ["embed", NOT_UTF8, "--model", "fake"],
        ["similarity", NOT_UTF8, "cats", "--model", "fake"],
    ],
    ids=["search", "search --path", "remove", "embed", "similarity"],
)
def test_bytes_that_are_not_utf8_in_an_argument_are_one_clear_error(indexed, arguments):
    result = run(*arguments)
    assert result.exit_code == 1
    assert "not valid UTF-8" in result.output and "\\xff" in result.output
    assert "Traceback" not in result.output


def test_a_folder_whose_name_is_not_utf8_is_refused_before_any_index_is_made(tmp_path, fake_model):
    folder = os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xffdir")
    os.mkdir(folder)
    result = run("index", folder, "--model", "fake")
    assert result.exit_code == 1 and "not valid UTF-8" in result.output and "bad\\xffdir" in result.output
    assert not (tmp_path / "index").exists(), "no index was created"


def test_an_index_location_that_is_not_utf8_is_refused_and_nothing_is_made(tmp_path, docs, fake_model):
    location = os.fsdecode(os.fsencode(str(tmp_path)) + b"/idx\xff")
    result = run("--index", location, "index", str(docs), "--model", "fake")
    assert result.exit_code == 1 and "not valid UTF-8" in result.output
    assert not os.path.exists(location)


def test_a_limit_beyond_any_ranking_is_a_usage_error(indexed):
    result = run("search", "cats", "--limit", "9223372036854775807")
    assert result.exit_code == 2 and "--limit" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("option", ["--after", "--before"])
@pytest.mark.parametrize("date", ["0001-01-01", "9999-12-31"])
def test_dates_at_the_ends_of_the_calendar_are_accepted(indexed, option, date):
    result = run("search", "cats", option, date, "--json")
    assert result.exit_code == 0, result.output
    assert (result.output.strip() == "[]") == ((option, date) in {("--after", "9999-12-31"), ("--before", "0001-01-01")})


def test_the_index_may_be_named_after_the_command_too(tmp_path, docs, fake_model):
    elsewhere = tmp_path / "elsewhere"
    assert run("index", "--index", str(elsewhere), str(docs), "--model", "fake").exit_code == 0
    assert not (tmp_path / "index").exists() and elsewhere.is_dir()
    result = run("search", "--index", str(elsewhere), "kittens", "--files")
    assert result.exit_code == 0 and result.output.splitlines()[0].endswith("cats.md")
    # After the command it wins over one before it.
    result = run("--index", str(tmp_path / "nowhere"), "status", "--index", str(elsewhere), "--json")
    assert result.exit_code == 0 and '"documents": 4' in result.output


def test_no_color_turns_the_highlighting_off_on_a_terminal(indexed, monkeypatch):
    styled = CliRunner().invoke(cli, ["search", "kittens", "--limit", "1"], color=True).output
    assert "\x1b[" in styled
    monkeypatch.setenv("NO_COLOR", "1")
    plain = CliRunner().invoke(cli, ["search", "kittens", "--limit", "1"], color=True).output
    assert "\x1b[" not in plain and "kittens" in plain.lower()


def test_files_escape_a_newline_for_people_and_keep_it_for_programs(tmp_path, fake_model):
    import json

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "two\nlines.txt").write_text("Hedgehogs hibernate through the winter.")
    (folder / "plain.txt").write_text("Tortoises also hibernate, in boxes.")
    assert run("index", str(folder), "--model", "fake").exit_code == 0
    shown = run("search", "hibernate", "--files").output.splitlines()
    assert len(shown) == 2 and any(line.endswith("two\\nlines.txt") for line in shown)
    listed = json.loads(run("search", "hibernate", "--files", "--json").output)
    assert str(folder / "two\nlines.txt") in listed
    raw = CliRunner().invoke(cli, ["search", "hibernate", "-0"]).stdout_bytes
    assert sorted(raw.split(b"\0")) == sorted([b"", os.fsencode(str(folder / "plain.txt")), os.fsencode(str(folder / "two\nlines.txt"))])
