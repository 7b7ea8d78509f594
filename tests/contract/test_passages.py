"""A hit in its context, a document's lines by range, and nothing outside the index."""

from __future__ import annotations

import os

import pytest

from semsearch import Index
from semsearch.errors import NotInIndexError, SemsearchError


@pytest.fixture
def notes(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    lines = [f"Line {n} about nothing in particular." for n in range(1, 41)]
    lines[19] = "The kestrel hovers over the motorway verge."
    (root / "birds.txt").write_text("\n".join(lines) + "\n")
    (root / "fish.md").write_text("# Fish\n\nTrout like cold water.\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("a secret that is not in the index\n")
    return root


def test_passage_gives_the_chunk_in_its_lines(location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        hit = index.search("trout cold water")[0]
        passage = index.passage(hit.chunk_id, context=1)
    assert passage.path == hit.path and passage.chunk_id == hit.chunk_id
    assert (passage.start_line, passage.end_line) == (hit.start_line, hit.end_line) == (1, 3)
    assert [(line.number, line.text, line.hit) for line in passage.lines] == [
        (1, "# Fish", True), (2, "", True), (3, "Trout like cold water.", True), (4, "", False)
    ]
    assert passage.section == "Fish" and passage.total_lines == 4 and passage.notes == []


def test_passage_context_is_cut_at_the_document_ends(location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        hit = next(h for h in index.search("kestrel motorway") if h.path.endswith("birds.txt"))
        passage = index.passage(hit.chunk_id, context=5)
    marked = [line.number for line in passage.lines if line.hit]
    assert marked == list(range(hit.start_line, hit.end_line + 1))
    assert passage.lines[0].number == max(1, hit.start_line - 5)
    assert passage.lines[-1].number == min(41, hit.end_line + 5)
    assert any("kestrel" in line.text for line in passage.lines if line.hit)


def test_passage_of_a_chunk_not_in_the_index(location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        for wrong in (10**9, -1, "3", None, True):
            with pytest.raises(NotInIndexError) as caught:
                index.passage(wrong)
            assert caught.value.code == "chunk_not_found"
        with pytest.raises(SemsearchError, match="context must be 0 to 200"):
            index.passage(index.search("trout")[0].chunk_id, context=201)


def test_passage_of_a_file_gone_since_shows_the_indexed_text(location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        hit = index.search("trout cold water")[0]
        (notes / "fish.md").unlink()
        passage = index.passage(hit.chunk_id)
    assert "Trout like cold water." in [line.text for line in passage.lines if line.hit]
    assert passage.total_lines is None and "cannot be read" in passage.notes[0]


def test_document_lines_by_range(location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        path = str((notes / "birds.txt").resolve())
        found = index.document(path, start=19, end=21)
        relative = index.document("birds.txt", start=20, end=20)
        tail = index.document(path, start=40)
        beyond = index.document(path, start=100, end=120)
    assert [(line.number, line.text) for line in found.lines] == [
        (19, "Line 19 about nothing in particular."), (20, "The kestrel hovers over the motorway verge."),
        (21, "Line 21 about nothing in particular."),
    ]
    assert found.total_lines == 41 and found.path == path and found.format == "text"
    assert relative.path == path and relative.lines[0].text.startswith("The kestrel")
    assert [line.number for line in tail.lines] == [40, 41]
    assert beyond.lines == [] and beyond.total_lines == 41


def test_document_range_is_checked(location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        for start, end in ((0, 3), (5, 4), (-2, None)):
            with pytest.raises(SemsearchError) as caught:
                index.document("birds.txt", start=start, end=end)
            assert caught.value.code == "invalid_range"


def test_document_lines_of_a_record(location, fake):
    with Index.open(location, embedder=fake) as index:
        index.add_texts(["memo-1"], ["First line of the memo.\nSecond line about budgets.\n"])
        found = index.document("memo-1")
    assert [line.text for line in found.lines][:2] == ["First line of the memo.", "Second line about budgets."]


def test_only_indexed_documents_are_read(tmp_path, location, notes, fake):
    (notes / "unindexed.bin").write_bytes(b"\x00\x01 not a format semsearch reads")
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        root = str(notes.resolve())
        attempts = [
            "../outside.txt", str(tmp_path / "outside.txt"), f"{root}/../outside.txt", "/etc/passwd",
            "%2e%2e%2foutside.txt", "..%2Foutside.txt", "unindexed.bin", f"{root}/unindexed.bin", root, "",
            "birds.txt\x00", "/", "fish.md/..", f"{root}//../outside.txt",
        ]
        for attempt in attempts:
            with pytest.raises(NotInIndexError) as caught:
                index.document(attempt)
            assert caught.value.code == "document_not_found", attempt
            assert caught.value.message == f"No document {attempt!r} in the index.", attempt


def test_a_symlink_put_in_a_documents_place_is_not_followed(tmp_path, location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([notes])
        hit = index.search("trout cold water")[0]
        fish = notes / "fish.md"
        fish.unlink()
        os.symlink(tmp_path / "outside.txt", fish)
        with pytest.raises(NotInIndexError) as caught:
            index.document("fish.md")
        assert caught.value.code == "document_not_found"
        passage = index.passage(hit.chunk_id)
    assert all("secret" not in line.text for line in passage.lines)


def test_status_says_when_the_index_was_last_indexed(location, notes, fake):
    with Index.open(location, embedder=fake) as index:
        assert index.status().last_indexed is None
        index.add([notes])
        stamp = index.status().last_indexed
    assert stamp is not None and stamp.endswith("Z") and stamp[:4].isdigit()
