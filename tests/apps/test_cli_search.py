"""`semsearch search` options end to end through the CLI."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from semsearch.apps.cli import cli


def test_cli_search_options(docs, fake_model):
    runner = CliRunner()
    runner.invoke(cli, ["index", str(docs), "--model", "fake"], catch_exceptions=False)
    result = runner.invoke(cli, ["search", "kittens", "--mode", "keyword", "--json", "--explain"])
    hits = json.loads(result.output)
    assert hits[0]["path"].endswith("cats.md") and hits[0]["explain"]["keyword_rank"] == 1
    result = runner.invoke(cli, ["search", "cats", "--ext", "rst,html", "--json"])
    assert all(h["path"].endswith((".rst", ".html")) for h in json.loads(result.output))
    result = runner.invoke(cli, ["search", "cats", "--path", "pets/*", "--path", "garden.rst", "--json"])
    assert {os.path.basename(h["path"]) for h in json.loads(result.output)} == {"cats.md", "dogs.txt", "garden.rst"}
    result = runner.invoke(cli, ["search", "cats", "--explain", "--limit", "1"])
    assert "dense rank" in result.output and "keyword rank" in result.output
    result = runner.invoke(cli, ["search", "cats", "--after", "soon"])
    assert result.exit_code == 1 and "YYYY-MM-DD" in result.output
