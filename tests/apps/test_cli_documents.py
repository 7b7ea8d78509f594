"""The command line for real documents: walk options, skipped files in status, result display,
snippets with highlights, --files."""

from __future__ import annotations

import json

from click.testing import CliRunner

from semsearch.apps.cli import cli
from tests.makedocs import write_pdf


def run(*args: str, color: bool = False):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, color=color)


def filler(topic: str, lines: int = 14) -> list[str]:
    return [f"Line {n} of the notes on {topic} goes on for a while, as printed text does." for n in range(lines)]


def library(tmp_path):
    root = tmp_path / "library"
    (root / "drafts").mkdir(parents=True)
    (root / "guide.md").write_text(
        "# Guide\n\n## Backups\n\nBackups run every night at two. Restoring a deleted file takes one click "
        "in the history panel. Nothing else is needed.\n"
    )
    (root / "drafts" / "idea.md").write_text("# Idea\n\nBackups to the moon.\n")
    (root / "notes.txt").write_text("Restoring backups from tape is slow.\n")
    (root / "big.txt").write_text("backup " * 3000)
    (root / ".gitignore").write_text("*.log\n")
    (root / "debug.log").write_text("backup failed")
    write_pdf(root / "manual.pdf", [["Cover", *filler("the cover")], ["Restore", "Restoring a backup needs the admin key."]],
              outline=[("Restore", 1)])
    return root


def test_index_options_and_summary(tmp_path, fake_model):
    root = library(tmp_path)
    result = run("index", str(root), "--model", "fake", "--exclude", "drafts/", "--max-file-size", "10KB")
    assert result.exit_code == 0, result.output
    assert "Indexed 3 files" in result.output
    assert "Skipped: 1 too large." in result.output
    assert "Ignored: 1 excluded by --exclude, 1 hidden, 1 ignored by .gitignore." in result.output
    result = run("index", str(root), "--include", "*.md", "-v")
    # drafts/ is back in; notes.txt and manual.pdf are now left out.
    assert "1 new, 0 changed, 1 unchanged, 2 removed" in result.output
    assert f"  {root / 'notes.txt'}: not matched by --include" in result.output
    bad = run("index", str(root), "--max-file-size", "huge")
    assert bad.exit_code == 1 and "'huge' is not a size" in bad.output


def test_status_lists_skipped_files_by_reason(tmp_path, fake_model):
    root = library(tmp_path)
    (root / "junk.txt").write_bytes(b"\x00\x01\x02")
    run("index", str(root), "--model", "fake", "--max-file-size", "10KB")
    result = run("status")
    assert "Skipped:    2 files: 1 binary file, 1 too large (-v lists them)" in result.output
    verbose = run("status", "-v").output
    assert f"  {root / 'junk.txt'}: binary file\n" in verbose
    assert "too large (21 KB, limit 10 KB)" in verbose
    info = json.loads(run("status", "--json").output)
    assert info["skipped_by_reason"] == {"binary file": 1, "too large": 1}
    assert {"path": str(root / "junk.txt"), "reason": "binary file"} in info["skipped"]


def test_results_show_lines_page_section_and_a_highlighted_snippet(tmp_path, fake_model):
    root = library(tmp_path)
    run("index", str(root), "--model", "fake", "--max-file-size", "10KB")
    output = run("search", "restoring a deleted file", "--limit", "1", "--mode", "keyword").output
    lines = output.splitlines()
    assert lines[0].startswith(f"1. {root / 'guide.md'}:1-5 › Guide › Backups  BM25 "), "keyword scores say their scale"
    assert lines[1] == "   … Restoring a deleted file takes one click in the history panel. Nothing else is needed."
    styled = run("search", "restoring a deleted file", "--limit", "1", "--mode", "keyword", color=True).output
    assert "\x1b[" in styled and "\x1b[33m\x1b[1mRestoring\x1b[0m" in styled
    output = run("search", "admin key", "--limit", "1", "--mode", "keyword").output
    assert output.splitlines()[0].startswith(f"1. {root / 'manual.pdf'} (page 2) › Restore  BM25"), output


def test_search_json_has_snippet_offsets_page_and_section(tmp_path, fake_model):
    root = library(tmp_path)
    run("index", str(root), "--model", "fake", "--max-file-size", "10KB")
    hits = json.loads(run("search", "admin key restoring", "--json", "--mode", "keyword").output)
    pdf = next(hit for hit in hits if hit["path"].endswith("manual.pdf"))
    assert pdf["page"] == 2 and pdf["section"] == "Restore" and pdf["format"] == "pdf"
    assert pdf["snippet"] == "Restoring a backup needs the admin key." and "\x1b" not in pdf["snippet"]
    assert [pdf["text"][a:b] for a, b in pdf["highlights"]] == ["Restore", "Restoring", "admin", "key"]


def test_files_prints_each_matching_file_once_best_first(tmp_path, fake_model):
    root = library(tmp_path)
    run("index", str(root), "--model", "fake", "--max-file-size", "10KB")
    output = run("search", "restoring backups", "--files", "--mode", "keyword").output
    files = output.splitlines()
    assert sorted(files) == sorted(str(root / name) for name in ("guide.md", "notes.txt", "manual.pdf", "drafts/idea.md"))
    hits = json.loads(run("search", "restoring backups", "--json", "--mode", "keyword", "--per-file", "1").output)
    assert files == [hit["path"] for hit in hits]
    assert json.loads(run("search", "restoring backups", "--files", "--json", "--mode", "keyword", "--limit", "2").output) == files[:2]


def test_index_json_verbose_lists_the_files_and_groups_reasons_by_kind(tmp_path, fake_model):
    root = tmp_path / "sizes"
    (root / "node_modules").mkdir(parents=True)
    (root / "node_modules" / "dep.js").write_text("x")
    (root / "small.txt").write_text("Kittens chase string.")
    (root / "big.txt").write_text("word " * 3000)
    (root / "bigger.txt").write_text("word " * 6000)
    result = run("index", str(root), "--model", "fake", "--max-file-size", "10KB", "--json", "-v")
    summary = json.loads(result.output)
    assert summary["skipped_by_reason"] == {"too large": 2}, "one group, whatever the sizes"
    assert sorted(item["reason"] for item in summary["skipped_files"]) == [
        "too large (15 KB, limit 10 KB)", "too large (29 KB, limit 10 KB)"
    ]
    assert summary["ignored_files"] == [{"path": str(root / "node_modules"), "reason": "dependency or build folder"}]
    plain = json.loads(run("index", str(root), "--json").output)
    assert "skipped_files" not in plain and plain["skipped"] == 2
