"""Searchable at once: documents are written as soon as they are read, and their vectors
follow. A chunk waiting for its vector is found by keywords, ranked fairly in hybrid search,
counted in status, and embedded by the next run, the newest documents first."""

from __future__ import annotations

import os
import threading
import time

import pytest

import semsearch
from semsearch import Index
from tests.conftest import FakeEmbedder


class Failing(FakeEmbedder):
    """A service that is down: every call fails (after a moment, in which every file is read)."""

    def embed_documents(self, texts):
        time.sleep(0.3)
        raise semsearch.EmbeddingError("The service is down.")


class Gated(FakeEmbedder):
    """An embedder that answers only once `gate` is set: a slow model."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def embed_documents(self, texts):
        assert self.gate.wait(30), "the test never let the embedder answer"
        return super().embed_documents(texts)


def _notes(tmp_path, count: int = 12):
    folder = tmp_path / "notes"
    folder.mkdir()
    topics = ["glaciers", "orchids", "lighthouses", "comets", "violins", "deserts"]
    for i in range(count):
        text = "\n\n".join(f"Note {i} part {p} is about {topics[i % len(topics)]} and the code word zq{i}x{p}." for p in range(3))
        (folder / f"note{i:02d}.md").write_text(text)
    return folder


def _backlogged(location, folder) -> None:
    """Index `folder` while the service is down: written, nothing embedded."""
    with Index.open(location, embedder=Failing()) as index, pytest.raises(semsearch.EmbeddingError, match="down"):
        index.add([folder])


def test_a_chunk_not_embedded_yet_is_found_by_its_rare_word_during_the_run(tmp_path, location):
    folder = _notes(tmp_path)
    slow = Gated()
    with Index.open(location, embedder=slow) as writer:
        run = threading.Thread(target=writer.add, args=([folder],))
        run.start()
        try:
            with Index.open(location, embedder=FakeEmbedder()) as reader:
                for _ in range(300):
                    if reader.status().documents == 12:
                        break
                    threading.Event().wait(0.05)
                status = reader.status()
                assert status.documents == 12 and status.vectors == 0 and status.waiting_chunks == status.chunks > 0
                for mode in ("keyword", "hybrid"):
                    found = reader.search("zq7x1", mode=mode, limit=3, explain=True)
                    assert found and found[0].path.endswith("note07.md") and "zq7x1" in found[0].text
                    assert found.waiting == status.waiting_chunks
                assert reader.search("zq7x1", mode="keyword", explain=True)[0].explain["waiting"] is True
                hybrid = reader.search("zq7x1", limit=3, explain=True)
                assert hybrid[0].explain["waiting"] is True and "stand-in cosine" in hybrid[0].explain["fusion"]
                assert any("waiting for their vectors" in note for note in hybrid.notes)
                dense = reader.search("glaciers", mode="dense")
                assert list(dense) == [] and "dense search cannot find them yet" in dense.notes[0]
        finally:
            slow.gate.set()
            run.join(60)
        status = writer.status()
        assert status.waiting_chunks == 0 and status.vectors > 0
        assert writer.search("zq7x1", mode="dense", limit=1)[0].path.endswith("note07.md")


def test_the_next_run_embeds_the_backlog_without_reading_the_files_again(tmp_path, location):
    folder = _notes(tmp_path)
    _backlogged(location, folder)
    embedder = FakeEmbedder()
    with Index.open(location, embedder=embedder) as index:
        before = index.status()
        assert before.documents == 12 and before.waiting_chunks == before.chunks
        report = index.check()
        assert report.ok and report.problems == [] and any("wait for their vectors" in note for note in report.notes)
        repaired = index.check(repair=True)
        assert repaired.problems == [] and index.status().waiting_chunks == before.chunks, "a repair keeps waiting chunks"
        stats = index.add()
        assert (stats.unchanged, stats.new, stats.changed) == (12, 0, 0)
        assert stats.chunks_embedded == before.waiting_texts == len(embedder.embedded)
        after = index.status()
        assert (after.waiting_chunks, after.chunks) == (0, before.chunks)
        assert index.check().notes == [] or not any("wait" in note for note in index.check().notes)
        assert index.add().chunks_embedded == 0


def test_hybrid_results_after_the_backlog_drains_equal_those_of_one_step_indexing(tmp_path, location, other_location, docs):
    queries = ["kittens purr", "how do I water tomatoes", "sharing a flat with cats", "zebras", "garden soil in spring"]

    def answers(index):
        return [[(hit.path, hit.start_line, round(hit.score, 6)) for hit in index.search(query, limit=5)] for query in queries]

    with Index.open(other_location, embedder=FakeEmbedder()) as direct:
        direct.add([docs])
        expected = answers(direct)
    _backlogged(location, docs)
    with Index.open(location, embedder=FakeEmbedder()) as index:
        index.add()
        assert index.status().waiting_chunks == 0
        assert answers(index) == expected


def test_the_backlog_is_embedded_newest_documents_first(tmp_path, location):
    folder = _notes(tmp_path, 6)
    # note00 oldest ... note05 newest, then note02 touched last of all.
    for i, path in enumerate(sorted(folder.iterdir())):
        os.utime(path, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    os.utime(folder / "note02.md", ns=(2 * 10**18, 2 * 10**18))
    expected = ["note02", "note05", "note04", "note03", "note01", "note00"]

    def order(texts):
        seen: list[str] = []
        for text in texts:
            name = f"note{text.split('Note ')[1].split(' ')[0].zfill(2)}"
            if name not in seen:
                seen.append(name)
        return seen

    # In a run that reads them...
    embedder = FakeEmbedder()
    with Index.open(tmp_path / "direct", embedder=embedder) as index:
        index.add([folder])
    assert order(embedder.embedded) == expected
    # ... and in a run that finds them waiting.
    _backlogged(location, folder)
    embedder = FakeEmbedder()
    with Index.open(location, embedder=embedder) as index:
        index.add()
    assert order(embedder.embedded) == expected


def test_a_document_changed_while_waiting_drops_the_old_texts_from_the_backlog(tmp_path, location):
    folder = _notes(tmp_path, 3)
    _backlogged(location, folder)
    (folder / "note01.md").write_text("Entirely new words: marmalade recipes.")
    embedder = FakeEmbedder()
    with Index.open(location, embedder=embedder) as index:
        stats = index.add()
        assert stats.changed == 1
        assert not any(text.startswith("Note 1 ") for text in embedder.embedded), "the old version's texts are not embedded"
        assert index.status().waiting_chunks == 0 and index.check().problems == []
        assert index.search("marmalade", mode="dense", limit=1)[0].path.endswith("note01.md")


def test_a_document_deleted_while_waiting_is_not_embedded(tmp_path, location):
    folder = _notes(tmp_path, 3)
    _backlogged(location, folder)
    (folder / "note01.md").unlink()
    embedder = FakeEmbedder()
    with Index.open(location, embedder=embedder) as index:
        assert index.add().removed == 1
        assert embedder.embedded and not any(text.startswith("Note 1 ") for text in embedder.embedded)
        assert index.status().waiting_chunks == 0 and index.check().problems == []


def test_a_copy_waits_for_the_backlog(tmp_path, location):
    from semsearch.api import copy_index

    folder = _notes(tmp_path, 2)
    _backlogged(location, folder)
    with pytest.raises(semsearch.SemsearchError, match="waiting for their vectors.*semsearch index"):
        copy_index(location, tmp_path / "copy")


def test_a_document_changed_while_waiting_keeps_the_waiting_texts_it_still_holds(tmp_path, location):
    folder = _notes(tmp_path, 3)
    note = folder / "note01.md"
    # Long paragraphs: a chunk each, so the edit below leaves the first ones as they were.
    note.write_text("\n\n".join(f"Paragraph {p} of note 1, zq1x{p}. " + f"Filler words for paragraph {p} here. " * 60 for p in range(3)))
    _backlogged(location, folder)
    with Index.open(location, embedder=FakeEmbedder()) as index:
        before = index.status().chunks
    note.write_text(note.read_text() + "\n\nA paragraph added later about marmalade.")
    embedder = FakeEmbedder()
    with Index.open(location, embedder=embedder) as index:
        assert index.add().changed == 1
        assert len(embedder.embedded) == len(set(embedder.embedded)), "each text embedded once"
        status = index.status()
        assert status.chunks >= before >= 5, "note01 is several chunks"
        assert status.waiting_chunks == 0 and status.vectors > 0 and index.check().problems == []
        assert index.search("zq1x0", mode="keyword")[0].path.endswith("note01.md")
