"""Re-indexing: only what changed is read and embedded; what is gone disappears."""

from __future__ import annotations

import os
import pathlib

import pytest

from semsearch import Index
from semsearch.errors import AuthenticationError, ModelMismatchError
from semsearch.readers.walk import FileEntry
from semsearch.settings import ChunkSettings
from tests.conftest import FakeEmbedder


def _sections(n: int, changed: int | None = None) -> str:
    parts = []
    for i in range(n):
        body = f"Section {i} explains topic number {i} in some detail. " * 25
        if i == changed:
            body = body.replace("explains", "describes")
        parts.append(f"## Part {i}\n\n{body}\n")
    return "# Manual\n\n" + "\n".join(parts)


@pytest.fixture
def manual(tmp_path):
    folder = tmp_path / "manual"
    folder.mkdir()
    (folder / "manual.md").write_text(_sections(6))
    (folder / "notes.txt").write_text("Short notes about the coffee machine.")
    (folder / "faq.md").write_text("# FAQ\n\nQ: Where is the printer? A: On the second floor.\n")
    return folder


def test_unchanged_files_are_not_read_again(tmp_path, location, manual, fake, monkeypatch):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        reads = []
        original = pathlib.Path.read_bytes
        monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: reads.append(self) or original(self))
        read_entry = FileEntry.read_bytes
        monkeypatch.setattr(FileEntry, "read_bytes", lambda self: reads.append(self.path) or read_entry(self))
        calls = len(fake.calls)
        stats = index.add([manual])
    assert stats.unchanged == 3 and stats.new == stats.changed == stats.removed == 0
    assert reads == [] and len(fake.calls) == calls


def test_touched_but_identical_file_is_read_not_embedded(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        embedded = len(fake.embedded)
        path = manual / "notes.txt"
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
        stats = index.add([manual])
        assert stats.unchanged == 3 and stats.changed == 0
        assert len(fake.embedded) == embedded
        # The new mtime was recorded: a third run does not even read it.
        assert index.add([manual]).unchanged == 3


def test_only_changed_chunks_are_embedded(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        first = index.add([manual])
        assert first.chunks_added >= 6
        before = len(fake.embedded)
        (manual / "manual.md").write_text(_sections(6, changed=3))
        stats = index.add([manual])
        new_texts = fake.embedded[before:]
        assert stats.changed == 1 and stats.unchanged == 2
        assert new_texts and all("describes" in text for text in new_texts)
        assert stats.chunks_embedded == len(new_texts) < stats.chunks_added
        assert stats.chunks_reused == stats.chunks_added - stats.chunks_embedded
        hits = index.search("Section 3 describes topic number 3", limit=1)
        assert "describes" in hits[0].text
        assert not any("Section 3 explains" in h.text for h in index.search("Section 3 explains topic", limit=20, per_file=0))


def test_deleted_files_disappear(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        (manual / "faq.md").unlink()
        stats = index.add([manual])
        assert stats.removed == 1 and stats.chunks_removed >= 1
        assert all(not hit.path.endswith("faq.md") for hit in index.search("printer second floor", limit=10, per_file=0))
        assert index.status().documents == 2
        assert index.check().problems == []


def test_moved_file_is_not_embedded_again(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        embedded = len(fake.embedded)
        (manual / "archive").mkdir()
        (manual / "faq.md").rename(manual / "archive" / "faq.md")
        stats = index.add([manual])
        assert stats.new == 1 and stats.removed == 1
        assert stats.chunks_embedded == 0 and len(fake.embedded) == embedded
        assert index.search("printer floor", limit=1)[0].path == str(manual / "archive" / "faq.md")
        assert index.check().problems == []


def test_file_moved_out_of_the_folder_disappears(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        (manual / "notes.txt").rename(tmp_path / "notes.txt")
        assert index.add([manual]).removed == 1
        assert all(not h.path.endswith("notes.txt") for h in index.search("coffee machine", limit=5, per_file=0))


def test_indexing_a_subfolder_does_not_remove_its_siblings(tmp_path, location, manual, fake):
    (manual / "sub").mkdir()
    (manual / "sub" / "a.txt").write_text("alpha text")
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        stats = index.add([manual / "sub"])
        assert stats.unchanged == 1 and stats.removed == 0
        assert index.status().documents == 4


def test_force_embeds_everything_again(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        first = index.add([manual])
        before = len(fake.embedded)
        stats = index.add([manual], force=True)
        assert stats.changed == 3
        assert len(fake.embedded) - before == len(set(fake.embedded[:before])) == stats.chunks_embedded
        assert index.status().chunks == first.chunks_added
        assert index.check().problems == []


def test_update_all_known_folders_without_paths(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        (manual / "new.txt").write_text("A fresh note about bicycles.")
        stats = index.add()
        assert stats.new == 1 and stats.unchanged == 3


def test_duplicate_texts_share_one_vector(tmp_path, location, fake):
    folder = tmp_path / "dupes"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text("The same licence header text.")
    with Index.open(location, embedder=fake) as index:
        stats = index.add([folder])
        status = index.status()
    assert stats.chunks_embedded == 1 and status.chunks == 3 and status.vectors == 1


def test_other_chunk_settings_are_refused(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
    with pytest.raises(ModelMismatchError, match="chunk settings"):
        Index.open(location, embedder=fake, chunking=ChunkSettings(target_tokens=100))


def test_rebuild_switches_model(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
    other = FakeEmbedder("other-model", dimensions=32)
    with Index.open(location, embedder=other, rebuild=True) as index:
        assert index.model == "other-model" and index.dimensions == 32
        assert index.status().documents == 0
        stats = index.add()
        assert stats.new == 3
        assert index.search("coffee machine", limit=1)[0].path.endswith("notes.txt")
        assert index.check().problems == []


def test_rebuild_with_a_failing_model_deletes_nothing(tmp_path, location, manual, fake):
    class Refused(FakeEmbedder):
        def embed_documents(self, texts):
            raise AuthenticationError("The API token was rejected.")

    with Index.open(location, embedder=fake) as index:
        index.add([manual])
    with pytest.raises(AuthenticationError):
        Index.open(location, embedder=Refused("remote-model"), rebuild=True)
    with Index.open(location, embedder=fake) as index:
        assert index.status().documents == 3
        assert index.search("coffee", limit=1)[0].path.endswith("notes.txt")


def test_remove_is_immediate_and_forgets_the_folder(tmp_path, location, manual, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        assert index.remove([manual]) == 3
        status = index.status()
        assert status.documents == 0 and status.roots == [] and status.vectors == 0
        assert index.search("coffee") == []


def test_documents_from_an_older_reader_are_read_again_without_embedding(tmp_path, location, manual, fake, monkeypatch):
    from semsearch.indexing import plan as indexing

    with Index.open(location, embedder=fake) as index:
        index.add([manual])
        embedded = len(fake.embedded)
        monkeypatch.setattr(indexing, "READER_VERSION", indexing.READER_VERSION + 1)
        stats = index.add([manual])
        assert stats.changed == 3 and stats.chunks_embedded == 0 and len(fake.embedded) == embedded
        assert index.add([manual]).unchanged == 3


def test_include_and_exclude_are_remembered_per_folder(tmp_path, location, manual, fake):
    (manual / "drafts").mkdir()
    (manual / "drafts" / "wip.md").write_text("# Draft\n\nUnfinished thoughts about coffee.\n")
    with Index.open(location, embedder=fake) as index:
        first = index.add([manual], exclude=["drafts/"])
        assert first.new == 3
        assert index.add().unchanged == 3, "an update without patterns keeps the folder's exclude"
        assert index.add([manual]).new == 0
        replaced = index.add([manual], include=["*.md"])
        assert (replaced.new, replaced.removed) == (1, 1), "new patterns replace the old ones: wip.md in, notes.txt out"
        paths = sorted({os.path.basename(h.path) for h in index.search("coffee", limit=20, per_file=0)})
        assert paths == ["faq.md", "manual.md", "wip.md"]


def test_removing_a_folder_of_skipped_files_forgets_them(tmp_path, location, fake):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"\x00\x01 binary")
    with Index.open(location, embedder=fake) as index:
        index.add([folder])
        assert index.status().skipped
        assert index.remove([folder]) == 0
        assert index.status().skipped == [] and index.status().roots == []


def test_nested_folders_with_their_own_patterns_settle(tmp_path, location, fake):
    root = tmp_path / "nest"
    (root / "manual").mkdir(parents=True)
    (root / "faq.md").write_text("Questions people ask about herons.")
    (root / "manual" / "guide.md").write_text("Guide to wading birds.")
    (root / "manual" / "extra.rst").write_text("Extra notes on egrets\\n=====================\\n\\nThey nest in colonies.")
    with Index.open(location, embedder=fake) as index:
        index.add([root])
        index.add([root / "manual"], include=["*.md"])
        for _ in range(2):
            stats = index.add()
            assert (stats.new, stats.changed, stats.removed, stats.chunks_embedded) == (0, 0, 0, 0)
        assert index.status().documents == 3, "the parent folder, without patterns, keeps extra.rst"
        assert index.check().ok


def test_a_folder_that_cannot_be_read_this_time_keeps_its_documents(tmp_path, location, fake, monkeypatch):
    import os as os_module

    from semsearch.readers import walk

    root = tmp_path / "docs"
    (root / "closed").mkdir(parents=True)
    (root / "open.md").write_text("Herons wade in shallow water.")
    (root / "closed" / "inside.md").write_text("Egrets nest in colonies.")
    with Index.open(location, embedder=fake) as index:
        assert index.add([root]).new == 2
        real = os_module.scandir

        def scandir(path):
            if str(path) == str(root / "closed"):
                raise PermissionError(13, "Permission denied")
            return real(path)

        monkeypatch.setattr(walk.os, "scandir", scandir)
        stats = index.add([root])
        assert stats.removed == 0 and [item.reason for item in stats.skipped] == ["unreadable folder: Permission denied"]
        assert index.status().documents == 2
        monkeypatch.setattr(walk.os, "scandir", real)
        stats = index.add([root])
        assert (stats.unchanged, stats.chunks_embedded) == (2, 0)


def test_a_rebuild_given_one_folder_rebuilds_every_folder_of_the_index(tmp_path, location, fake):
    docs3, docs3x = tmp_path / "docs3", tmp_path / "docs3x"
    for folder, text in ((docs3, "Walruses bask on the ice."), (docs3x, "Puffins nest on cliffs.")):
        folder.mkdir()
        (folder / "note.txt").write_text(text)
    with Index.open(location, embedder=fake) as index:
        index.add([docs3, docs3x], include=["*.txt"])
    other = FakeEmbedder("other-model", dimensions=32)
    with Index.open(location, embedder=other, rebuild=True) as index:
        stats = index.add([docs3], exclude=["drafts/"])
        assert stats.new == 2 and stats.also == [str(docs3x)] and stats.rebuilt
        assert index.status().documents == 2, "no folder is left listed but empty"
        assert index.search("puffins", limit=1)[0].path == str(docs3x / "note.txt")
        # The patterns given were for docs3 alone; docs3x keeps its own.
        assert index._backend.root_patterns() == {str(docs3): ((), ("drafts/",)), str(docs3x): (("*.txt",), ())}
        assert index.add([docs3]).also == [], "only the first run after a rebuild"
