"""What gets read: ignore files with git's semantics, include/exclude, default skips, size caps,
symlinks, and what the index remembers about skipped files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.errors import SemsearchError
from semsearch.readers.walk import FileEntry, Ignored, Skipped, format_size, parse_size, walk


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def outcome(roots, **options) -> tuple[set[str], dict[str, str], dict[str, str]]:
    """(indexable files, skipped file -> reason, ignored path -> reason), relative to the first root."""
    base = roots[0]
    files, skipped, ignored = set(), {}, {}
    for item in walk(roots, **options):
        if isinstance(item, FileEntry):
            files.add(os.path.relpath(item.path, base))
        elif isinstance(item, Skipped):
            skipped[os.path.relpath(item.path, base)] = item.reason
        else:
            assert isinstance(item, Ignored)
            ignored[os.path.relpath(item.path, base)] = item.reason
    return files, skipped, ignored


def test_nested_gitignore_files_with_negation(tmp_path):
    root = tree(tmp_path / "repo", {
        ".gitignore": "*.log\n/secret.md\nbuildout/\n!keep.log\n",
        "a.md": "a", "debug.log": "x", "keep.log": "k", "secret.md": "s",
        "sub/secret.md": "not anchored here", "sub/trace.log": "t",
        "sub/.gitignore": "!trace.log\ndraft-*.md\n", "sub/draft-1.md": "d",
        "buildout/out.md": "o", "sub/buildout/out.md": "o",
        "other/draft-2.md": "only sub/ ignores drafts",
    })
    files, skipped, ignored = outcome([root])
    assert files == {"a.md", "keep.log", "sub/secret.md", "sub/trace.log", "other/draft-2.md"}
    assert ignored["debug.log"] == ignored["secret.md"] == "ignored by .gitignore"
    assert ignored["buildout"] == ignored["sub/buildout"] == "ignored by .gitignore"
    assert ignored["sub/draft-1.md"] == "ignored by .gitignore"
    assert ignored[".gitignore"] == "hidden"
    assert skipped == {}


def test_semsearchignore_and_the_enclosing_repository(tmp_path):
    repo = tree(tmp_path / "repo", {
        ".git/info/exclude": "*.tmp\n",
        ".gitignore": "docs/generated/\n*.bak.md\n",
        "docs/.semsearchignore": "private/\n!important.bak.md\n",
        "docs/guide.md": "g", "docs/generated/api.md": "gen", "docs/old.bak.md": "b", "docs/important.bak.md": "i",
        "docs/private/diary.md": "p", "docs/scratch.tmp": "t",
    })
    # Indexing a folder inside a repository: the repository's rules still apply.
    files, skipped, ignored = outcome([repo / "docs"])
    assert files == {"guide.md", "important.bak.md"}  # .semsearchignore re-includes what .gitignore left out
    assert ignored == {
        ".semsearchignore": "hidden",
        "generated": "ignored by .gitignore",
        "old.bak.md": "ignored by .gitignore",
        "private": "ignored by .semsearchignore",
        "scratch.tmp": "ignored by .git/info/exclude",
    }
    assert skipped == {}
    # At the top of the repository too.
    files, _, ignored = outcome([repo])
    assert ignored["docs/scratch.tmp"] == "ignored by .git/info/exclude" and "docs/guide.md" in files
    # Without the ignore files (a library option), everything but hidden files is read.
    files, _, _ = outcome([repo / "docs"], ignore_files=False)
    assert files == {"guide.md", "important.bak.md", "old.bak.md", "generated/api.md", "private/diary.md"}


def test_include_and_exclude_patterns(tmp_path):
    root = tree(tmp_path / "notes", {
        "a.md": "a", "b.txt": "b", "drafts/c.md": "c", "deep/er/d.md": "d", "deep/er/e.rst": "e",
    })
    files, _, ignored = outcome([root], include=["*.md"], exclude=["drafts/"])
    assert files == {"a.md", "deep/er/d.md"}
    assert ignored["b.txt"] == ignored["deep/er/e.rst"] == "not matched by --include"
    assert ignored["drafts"] == "excluded by --exclude"
    files, _, _ = outcome([root], include=["deep/**/*.rst"])
    assert files == {"deep/er/e.rst"}


def test_hidden_vcs_dependency_and_virtualenv_folders(tmp_path):
    root = tree(tmp_path / "project", {
        "README.md": "r", ".git/config": "c", ".cache/x.md": "x", "node_modules/pkg/readme.md": "n",
        "build/html/index.html": "b", "env2/pyvenv.cfg": "home = /usr", "env2/lib/x.py": "x",
        "src/app.py": "print()",
    })
    files, _, ignored = outcome([root])
    assert files == {"README.md", "src/app.py"}
    assert ignored == {
        ".git": "hidden", ".cache": "hidden", "node_modules": "dependency or build folder",
        "build": "dependency or build folder", "env2": "virtualenv",
    }


def test_size_cap_empty_and_unsupported(tmp_path):
    root = tree(tmp_path / "files", {"small.txt": "hello", "empty.txt": "", "photo.jpg": b"\xff\xd8\xff"})
    with (root / "huge.txt").open("wb") as handle:
        handle.truncate(200 * 2**20)  # sparse: costs no disk and no time
    files, skipped, _ = outcome([root], max_file_size=20 * 2**20)
    assert files == {"small.txt"}
    assert skipped == {
        "huge.txt": "too large (200 MB, limit 20 MB)", "empty.txt": "empty file", "photo.jpg": "unsupported file type",
    }
    files, _, _ = outcome([root], max_file_size=None)
    assert "huge.txt" in files


def test_symlinks_inside_outside_broken_and_loops(tmp_path):
    outside = tree(tmp_path / "outside", {"elsewhere.md": "e"})
    root = tree(tmp_path / "root", {"real/doc.md": "d", "real/deeper/more.md": "m"})
    (root / "alias").symlink_to(root / "real")               # a second way to the same folder
    (root / "doc-link.md").symlink_to(root / "real" / "doc.md")
    (root / "out").symlink_to(outside)
    (root / "gone.md").symlink_to(root / "missing.md")
    (root / "self").symlink_to(root / "self")
    (root / "real" / "deeper" / "up").symlink_to(root)       # a folder cycle
    files, skipped, ignored = outcome([root])
    # Files are indexed once, under their real path, however many links lead to them.
    assert files == {"real/doc.md", "real/deeper/more.md"}
    assert ignored["alias"] == ignored["doc-link.md"] == "duplicate path"
    assert skipped == {
        "out": "symlink to outside the indexed folders",
        "gone.md": "broken symlink",
        "self": "symlink loop",
        "real/deeper/up": "symlink loop",
    }


def test_a_link_into_the_root_is_followed_when_the_target_is_not_walked(tmp_path):
    root = tree(tmp_path / "root", {".archive/2020/notes.md": "n"})
    (root / "archive").symlink_to(root / ".archive")
    files, _, _ = outcome([root])
    assert files == {"archive/2020/notes.md"}


def test_fifo_is_not_read(tmp_path):
    root = tree(tmp_path / "root", {"a.md": "a"})
    os.mkfifo(root / "pipe.txt")
    _, skipped, _ = outcome([root])
    assert skipped == {"pipe.txt": "not a regular file"}


def test_sizes():
    assert parse_size("20MB") == parse_size("20 mb") == parse_size("20") == 20 * 2**20
    assert parse_size("512KB") == 512 * 1024 and parse_size("1.5G") == int(1.5 * 2**30) and parse_size("100b") == 100
    assert parse_size("0") == 0
    with pytest.raises(SemsearchError, match="not a size"):
        parse_size("big")
    assert format_size(200 * 2**20) == "200 MB" and format_size(int(1.5 * 2**30)) == "1.5 GB"
    assert format_size(300 * 1024) == "300 KB" and format_size(12) == "12 bytes"


# -- through the index -----------------------------------------------------------------------


def test_skipped_files_are_remembered_and_not_read_again(tmp_path, fake, monkeypatch):
    root = tree(tmp_path / "docs", {"good.md": "# Good\n\nFine text.", "junk.txt": b"\x00\x01binary"})
    import semsearch.indexing.reading as indexing

    reads: list[str] = []
    original = indexing.read_document
    monkeypatch.setattr(indexing, "read_document", lambda path, data=None: reads.append(path.name) or original(path, data))
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        first = index.add([root])
        assert [(Path(s.path).name, s.reason) for s in first.skipped] == [("junk.txt", "binary file")]
        assert index.status().skipped_by_reason == {"binary file": 1}
        reads.clear()
        second = index.add([root])
        assert reads == [] and second.skipped_by_reason == {"binary file": 1}
        # Changed: read again.
        (root / "junk.txt").write_text("Now it is text about otters.")
        third = index.add([root])
        assert reads == ["junk.txt"] and third.skipped == [] and third.new == 1
        assert index.status().skipped == []


def test_a_file_that_stops_being_text_leaves_the_index(tmp_path, fake):
    root = tree(tmp_path / "docs", {"notes.txt": "Otters hold hands while sleeping."})
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([root])
        (root / "notes.txt").write_bytes(b"\x00\x00\x01 now binary")
        stats = index.add([root])
        assert stats.removed == 1 and stats.skipped_by_reason == {"binary file": 1}
        assert index.search("otters hands") == []


def test_include_exclude_and_size_through_the_index(tmp_path, fake):
    root = tree(tmp_path / "docs", {"a.md": "alpha", "b.txt": "bravo", "c.md": "x" * 5000})
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        stats = index.add([root], include=["*.md"], max_file_size=4000)
        assert stats.new == 1 and stats.skipped_by_reason == {"too large": 1}
        assert [item.reason for item in stats.skipped] == ["too large (4.9 KB, limit 3.9 KB)"]
        assert stats.ignored_by_reason == {"not matched by --include": 1}
        stats = index.add([root], exclude=["a.md"], max_file_size=None)
        assert (stats.new, stats.removed) == (2, 1)
        summary = stats.to_dict()
        assert summary["ignored"] == 1 and summary["ignored_by_reason"] == {"excluded by --exclude": 1}


def test_a_file_entry_reads_the_whole_file_even_when_it_grew(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"first line\n")
    entry = FileEntry(path, path.stat().st_size, path.stat().st_mtime_ns)
    assert entry.read_bytes() == b"first line\n"
    grown = b"first line\n" + b"more text " * 300_000
    path.write_bytes(grown)
    assert entry.read_bytes() == grown
    path.write_bytes(b"")
    assert entry.read_bytes() == b""


def test_a_name_that_is_not_utf8_is_skipped_and_the_rest_indexed(tmp_path, fake):
    root = tree(tmp_path / "docs", {"ok.md": "Herons wade in shallow water."})
    try:
        (root / os.fsdecode(b"caf\xe9.md")).write_text("armadillo")
        (root / os.fsdecode(b"d\xe9")).mkdir()
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system only takes UTF-8 names")
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        stats = index.add([root])
        assert stats.new == 1
        assert {(item.path, item.reason) for item in stats.skipped} == {
            (str(root / "caf\\xe9.md"), "name is not valid UTF-8: rename it"),
            (str(root / "d\\xe9"), "name is not valid UTF-8: rename it"),
        }
        assert index.add([root]).unchanged == 1 and index.check().ok


@pytest.mark.parametrize("inside", [True, False], ids=["index in a subfolder", "index in the folder itself"])
def test_an_index_kept_in_the_folder_it_indexes_leaves_itself_out(tmp_path, fake, inside):
    root = tree(tmp_path / "docs", {"faq.md": "Herons wade in shallow water."})
    where = root / "ix" if inside else root
    with Index.open(where, embedder=fake) as index:
        for _ in range(2):
            stats = index.add([root])
            assert stats.new + stats.unchanged == 1 and stats.changed == 0 and not stats.skipped
        assert [hit.path for hit in index.search("generation layout nlist index", limit=5)] == [str(root / "faq.md")]


def test_a_tree_deeper_than_the_stack_is_walked_and_its_depths_skipped_with_a_reason(tmp_path, fake):
    from semsearch.readers.walk import MAX_DEPTH

    root = tmp_path / "deep"
    deepest = root.joinpath(*["d"] * 600)  # several times Python's recursion limit in frames
    deepest.mkdir(parents=True)
    (deepest / "bottom.txt").write_text("A lantern at the very bottom.")
    (root / "top.txt").write_text("Otters hold hands while they sleep.")
    (root / "d" / "d" / "middle.txt").write_text("Badgers dig long tunnels.")
    found = list(walk([root]))
    assert sorted(Path(entry.path).name for entry in found if isinstance(entry, FileEntry)) == ["middle.txt", "top.txt"]
    [skipped] = [entry for entry in found if isinstance(entry, Skipped)]
    assert skipped.reason.startswith(f"too deep: more than {MAX_DEPTH} folders below")
    assert len(Path(skipped.path).relative_to(root).parts) == MAX_DEPTH + 1
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        stats = index.add([root])
        assert stats.new == 2 and [item.reason.split(":")[0] for item in stats.skipped] == ["too deep"]
        assert index.search("otters sleeping", limit=1)[0].path.endswith("top.txt")
