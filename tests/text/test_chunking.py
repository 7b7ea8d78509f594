"""Chunking: exact offsets and lines, structure followed, model limits respected."""

from __future__ import annotations

import re

from semsearch.readers.base import Document, Section
from semsearch.settings import ChunkSettings
from semsearch.text.chunking import chunk_document, estimate_tokens

SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in plain words." for i in range(200)]


def _paragraphs(n: int, per: int = 5) -> str:
    return "\n\n".join(" ".join(SENTENCES[i * per : (i + 1) * per]) for i in range(n))


def test_chunks_are_exact_spans_with_lines():
    text = _paragraphs(20)
    document = Document(text)
    chunks = chunk_document(document, ChunkSettings(target_tokens=80, overlap_tokens=0))
    assert len(chunks) > 5
    lines = text.splitlines()
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert lines[chunk.start_line - 1] in chunk.text or chunk.text.startswith(lines[chunk.start_line - 1].strip()[:20])
        assert text.count("\n", 0, chunk.start) + 1 == chunk.start_line
        assert text.count("\n", 0, chunk.end - 1) + 1 == chunk.end_line


def test_every_sentence_is_in_some_chunk():
    text = _paragraphs(30)
    chunks = chunk_document(Document(text), ChunkSettings(target_tokens=64))
    covered = " ".join(chunk.text for chunk in chunks)
    for sentence in SENTENCES[:150]:
        assert sentence in covered


def test_chunks_end_at_paragraph_boundaries_when_they_can():
    text = _paragraphs(12, per=3)
    chunks = chunk_document(Document(text), ChunkSettings(target_tokens=100, overlap_tokens=0))
    paragraph_ends = {m.start() for m in re.finditer(r"\n\n", text)} | {len(text)}
    assert all(chunk.end in paragraph_ends for chunk in chunks)


def test_overlap_inside_a_long_paragraph():
    text = " ".join(SENTENCES[:60])  # one paragraph
    chunks = chunk_document(Document(text), ChunkSettings(target_tokens=80, overlap_tokens=20))
    assert len(chunks) > 3
    for first, second in zip(chunks, chunks[1:]):
        assert second.start < first.end, "consecutive chunks of one paragraph share a sentence"
    no_overlap = chunk_document(Document(text), ChunkSettings(target_tokens=80, overlap_tokens=0))
    for first, second in zip(no_overlap, no_overlap[1:]):
        assert second.start >= first.end


def test_sections_start_new_chunks_and_label_them():
    intro = "# Guide\n\n" + _paragraphs(2) + "\n\n"
    install = "## Install\n\n" + _paragraphs(2) + "\n\n"
    text = intro + install + "## Use\n\n" + _paragraphs(2)
    document = Document(
        text,
        title="Guide",
        sections=[Section(0, 1, "Guide"), Section(len(intro), 2, "Install"), Section(len(intro) + len(install), 2, "Use")],
    )
    chunks = chunk_document(document, ChunkSettings(target_tokens=200))
    assert [c.section for c in chunks] == ["Guide", "Guide › Install", "Guide › Use"]
    assert chunks[1].text.startswith("## Install")
    # The embedded text carries the path the chunk does not show itself.
    assert chunks[1].embed_text.startswith("Guide\n\n## Install")
    assert chunks[0].embed_text == chunks[0].text


def test_tiny_sections_join_the_next_one():
    text = "# A\n\nshort.\n\n# B\n\n" + _paragraphs(3)
    document = Document(text, sections=[Section(0, 1, "A"), Section(text.index("# B"), 1, "B")])
    chunks = chunk_document(document, ChunkSettings(target_tokens=200))
    assert chunks[0].text.startswith("# A") and "# B" in chunks[0].text


def test_hard_limit_in_model_tokens():
    calls = []

    def count(text: str) -> int:  # a model whose tokens are single characters
        calls.append(text)
        return len(text) + 2

    text = _paragraphs(10)
    chunks = chunk_document(Document(text), ChunkSettings(target_tokens=300), max_tokens=200, count_tokens=count)
    assert all(count(c.embed_text) <= 200 for c in chunks)
    assert calls, "the exact counter was used"
    assert " ".join(SENTENCES[:5]) in " ".join(c.text for c in chunks).replace("\n\n", " ")


def test_a_long_title_and_heading_path_do_not_crowd_out_the_text():
    def count(text: str) -> int:  # words and specials
        return len(text.split()) + 2

    title = " ".join(f"Title{i}" for i in range(130))  # longer than the limit on its own
    heading = " ".join(f"Heading{i}" for i in range(20))
    intro = f"# {title}\n\n"
    body = f"## {heading}\n\n" + _paragraphs(6)
    text = intro + body
    document = Document(text, title=title, sections=[Section(0, 1, title), Section(len(intro), 2, heading)])
    chunks = chunk_document(document, ChunkSettings(), max_tokens=128, count_tokens=count)
    assert 3 < len(chunks) < 40, "the text is cut into chunks, not into characters"
    assert all(count(c.embed_text) <= 128 for c in chunks)
    later = [c for c in chunks if c.start > len(intro) + 100]
    # The nearest heading is kept and the title dropped: at most a quarter of the limit.
    assert later and all(c.context.startswith("Heading0 Heading1") and "Title0" not in c.context for c in later)
    assert all(count(c.context) <= 32 for c in later)


def test_counter_not_called_for_chunks_short_in_characters():
    calls = []
    chunks = chunk_document(Document("A short note."), max_tokens=512, count_tokens=lambda t: calls.append(t) or 5)
    assert len(chunks) == 1 and calls == []


def test_unspaced_text_is_cut_too():
    text = "这是一个很长的中文句子" * 200
    chunks = chunk_document(Document(text), ChunkSettings(target_tokens=100))
    assert len(chunks) > 5
    assert "".join(c.text for c in chunks) == text


def test_estimate_counts_cjk_characters():
    assert estimate_tokens("这是中文") >= 4
    assert 20 <= estimate_tokens("word " * 20) <= 30


def test_code_chunks_start_at_definitions():
    functions = "\n\n".join(f"def function_{i}(x):\n" + "\n".join(f"    y = x + {j}" for j in range(12)) + "\n    return y" for i in range(6))
    chunks = chunk_document(Document(functions, code=True), ChunkSettings(target_tokens=60, overlap_tokens=0))
    assert all(chunk.text.startswith("def function_") for chunk in chunks)
    assert chunks[2].start_line == functions[: chunks[2].start].count("\n") + 1


def test_pages_are_reported():
    text = "Page one text.\n\nPage two text."
    document = Document(text, pages=[0, text.index("Page two")])
    chunks = chunk_document(document, ChunkSettings(target_tokens=4, overlap_tokens=0))
    assert [c.page for c in chunks] == [1, 2]


def test_hash_depends_on_embedded_text_only():
    a = chunk_document(Document("Same words here."))[0]
    b = chunk_document(Document("Same words here."))[0]
    c = chunk_document(Document("Other words here."))[0]
    assert a.hash == b.hash != c.hash


def test_sentences_end_where_the_plain_definition_says():
    # The definition: after . ! ? ; (or their CJK forms), any closing quotes or brackets and
    # the spaces that follow; a CJK full stop needs no space. The chunker's own patterns
    # are written for speed, so they are checked against this one.
    from semsearch.text.chunking import _pieces

    reference = re.compile(r"(?<=[.!?;。！？；])[\"'”’»)\]]*\s+|(?<=[。！？])")
    lines = [
        "One. Two! Three? Four; five.", "He said \"no.\" Then (twice.) [ok.] left.", "a.. b?! c", "end.",
        "a;b c.d e", "Tabs.\tand\u3000wide space. x", "«Oui.» Non. “Yes.” No’s. Done",
        "「はい。」そう言った。次！終わり？ええ", "中文。 带空格。没有", "x！！？y z", "Ünïcödé. Façade! Naïve",
    ]
    for line in lines:
        expected = [0] + [m.end() for m in reference.finditer(line) if m.end() < len(line)]
        assert [piece.start for piece in _pieces(Document(line), 1000)] == expected, line
