"""Splitting a Document into chunks that fit the model and follow the text's structure.

Chunks are contiguous spans of the document text, so their character offsets and line
numbers are exact. The text is cut into pieces (sentences, lines) that know how strong
the boundary before them is (section > paragraph > line > sentence); pieces are packed
greedily up to a target size and each chunk ends at the strongest boundary available.

Sizes are estimated from characters while packing, because exact token counting costs
about as much as reading the text again; a chunk that might exceed the model's hard limit
is then counted exactly and split further if needed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..readers.base import Document
from ..settings import ChunkSettings
from .scripts import WIDE, sentence_end

SECTION, PARAGRAPH, LINE, SENTENCE = 3, 2, 1, 0

# The end of a sentence (see `scripts.sentence_end`); ASCII lines, the usual case, are
# scanned with the smaller pattern they can match.
_SENTENCE_END = re.compile(sentence_end())
_ASCII_SENTENCE_END = re.compile(sentence_end(ascii_only=True))
_WIDE = re.compile(f"[{WIDE}]")
_DEFINITION = re.compile(
    r"^(?:export\s+)?(?:async\s+)?(?:def|class|function|func|fn|impl|struct|enum|trait|interface|"
    r"module|sub|public|private|protected|static|type)\b"
)


@dataclass
class Part:
    """A section of a chunk that holds several (small sections are packed into one chunk):
    embedded on its own too, so that a search can tell which of them answers."""

    start: int
    end: int
    section: str | None
    embed_text: str

    @property
    def hash(self) -> bytes:
        return hashlib.blake2b(self.embed_text.encode("utf-8"), digest_size=16).digest()


@dataclass
class Chunk:
    """A span of a document: what is shown, what is embedded, and where it came from."""

    text: str
    embed_text: str  # `context` and `text`: what the model and the keyword index see
    start: int
    end: int
    start_line: int
    end_line: int
    section: str | None = None
    page: int | None = None
    tokens: int = 0
    context: str | None = None  # the title and section path, when not already in `text`
    # The sections of a chunk that holds more than one; empty otherwise.
    parts: list[Part] = field(default_factory=list)

    @property
    def hash(self) -> bytes:
        """Identity of the embedded text: equal hashes share one stored vector."""
        return hashlib.blake2b(self.embed_text.encode("utf-8"), digest_size=16).digest()

    def embedded(self) -> list[tuple[bytes, str]]:
        """(hash, text) of everything of this chunk that is embedded: itself and its parts."""
        return [(self.hash, self.embed_text), *((part.hash, part.embed_text) for part in self.parts)]


def estimate_tokens(text: str) -> int:
    """A cheap estimate of subword tokens: ~4 characters each, one per CJK character."""
    wide = len(_WIDE.findall(text)) if not text.isascii() else 0
    return (len(text) - wide) // 4 + wide + 1


@dataclass(slots=True)
class _Piece:
    start: int
    end: int
    strength: int
    tokens: int
    # The first piece of a page (PDF): always starts a chunk, so a hit's page is its page.
    page_start: bool = False


def chunk_document(
    document: Document,
    settings: ChunkSettings = ChunkSettings(),
    *,
    max_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> list[Chunk]:
    """Cut `document` into chunks of about `settings.target_tokens`.

    `max_tokens` is the model's hard input limit and `count_tokens` its exact counter;
    when both are given no chunk's embedded text exceeds the limit.
    """
    target = settings.target_tokens
    if max_tokens:
        # Leave room for the context header and special tokens.
        target = max(16, min(target, int(max_tokens * 0.8) - 8))
    # Pieces and spans stream: a long document's sentences are not all held at once.
    pieces = _pieces(document, max(target // 2, 8))
    spans = _pack(pieces, target, settings.overlap_tokens)
    chunks = []
    for start, end, tokens, content in spans:
        chunks.extend(_fit(document, start, end, tokens, settings, max_tokens, count_tokens, content))
    return chunks


def _pieces(document: Document, longest: int) -> Iterator[_Piece]:
    text = document.text
    section_starts = sorted(s.start for s in document.sections)
    page_starts = sorted(document.pages or [])
    next_section = next_page = 0
    blank_before = True
    position = 0
    length = len(text)
    while position < length:
        newline = text.find("\n", position)
        line_end = length if newline == -1 else newline
        start, following = position, line_end + 1
        position = following
        line = text[start:line_end]
        if not line.strip():
            blank_before = True
            continue
        strength = PARAGRAPH if blank_before else LINE
        page_start = False
        while next_page < len(page_starts) and page_starts[next_page] < following:
            strength, page_start = SECTION, True
            next_page += 1
        while next_section < len(section_starts) and section_starts[next_section] < following:
            strength = SECTION
            next_section += 1
        if document.code and _DEFINITION.match(line) and blank_before:
            strength = SECTION
        blank_before = False
        if document.code:
            yield from _split_long(text, start, line_end, strength, longest)
            continue
        piece_start = start + (len(line) - len(line.lstrip()))
        pieces: list[_Piece] = []
        for match in (_ASCII_SENTENCE_END if line.isascii() else _SENTENCE_END).finditer(line):
            cut = start + match.end()
            if cut >= line_end:
                break
            pieces.extend(_split_long(text, piece_start, cut, strength, longest))
            piece_start, strength = cut, SENTENCE
        pieces.extend(_split_long(text, piece_start, line_end, strength, longest))
        if page_start and pieces:
            pieces[0].page_start = True
        yield from pieces


def _split_long(text: str, start: int, end: int, strength: int, longest: int) -> list[_Piece]:
    """One piece, or several cut at spaces (or anywhere, for unspaced text) when too long."""
    tokens = estimate_tokens(text[start:end])
    if tokens <= longest:
        return [_Piece(start, end, strength, tokens)]
    parts = []
    chars = max(int((end - start) * longest / tokens), 1)
    position = start
    while position < end:
        cut = min(position + chars, end)
        if cut < end:
            space = text.rfind(" ", position + chars // 2, cut)
            cut = space + 1 if space != -1 else cut
        parts.append(_Piece(position, cut, strength if position == start else SENTENCE, estimate_tokens(text[position:cut])))
        position = cut
    return parts


def _pack(pieces: Iterable[_Piece], target: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """Group pieces into spans (see `_span`)."""
    current: list[_Piece] = []
    size = 0
    for piece in pieces:
        if current and piece.strength == SECTION and (size >= target // 4 or piece.page_start) and not _headings_only(current):
            # A new section starts a new chunk, unless the current one is too small to
            # stand alone (a heading, or a two-line section), which joins the next. A new
            # page always does (a slide of a few lines too), so that a hit's page is right.
            yield _span(current)
            current, size = [], 0
        elif current and size + piece.tokens > target:
            cut, strength = _best_cut(current, piece.strength, target)
            emitted, current = current[:cut], current[cut:]
            yield _span(emitted)
            if overlap and strength <= LINE:
                # Cut inside a paragraph: repeat its last sentences so neither side loses context.
                carried_size = 0
                for previous in reversed(emitted[1:]):
                    if carried_size + previous.tokens > overlap or previous.strength >= PARAGRAPH:
                        break
                    current.insert(0, previous)
                    carried_size += previous.tokens
            size = sum(p.tokens for p in current)
        current.append(piece)
        size += piece.tokens
    if current:
        yield _span(current)


def _best_cut(current: list[_Piece], incoming: int, target: int) -> tuple[int, int]:
    """Where to end the chunk, and that boundary's strength: the strongest boundary that
    leaves at least half the target behind it, the latest of equals."""
    best, best_strength = len(current), incoming
    size = sum(p.tokens for p in current)
    for i in range(len(current) - 1, 0, -1):
        size -= current[i].tokens
        if size < target // 2:
            break
        if current[i].strength > best_strength:
            best, best_strength = i, current[i].strength
    return best, best_strength


def _headings_only(pieces: list[_Piece]) -> bool:
    return all(p.strength == SECTION for p in pieces)


def _span(pieces: list[_Piece]) -> tuple[int, int, int, int]:
    """(start, end, estimated tokens, start of the first piece that is not a heading)."""
    content = next((p.start for p in pieces if p.strength != SECTION), pieces[0].start)
    return pieces[0].start, pieces[-1].end, sum(p.tokens for p in pieces), content


def _fit(
    document: Document,
    start: int,
    end: int,
    tokens: int,
    settings: ChunkSettings,
    max_tokens: int | None,
    count_tokens: Callable[[str], int] | None,
    content: int | None = None,
) -> list[Chunk]:
    text = document.text[start:end].rstrip()
    end = start + len(text)
    # Label a chunk by the section of its first real text, not of a heading it opens with.
    section = document.section_at(start if content is None or content >= end else content)
    context = context_header(text, document.title, section) if settings.context else None
    if max_tokens and count_tokens:
        # A long title and heading path must not crowd out the text (mpnet takes 128 tokens).
        context = _shortened(context, max_tokens // 4, count_tokens)
    embed_text = with_context(context, text)
    if max_tokens and count_tokens and len(embed_text) + 8 > max_tokens:
        # A token covers at least one character, so only spans longer than the limit
        # in characters can exceed it in tokens.
        tokens = count_tokens(embed_text)
        if tokens > max_tokens and end - start > 1:
            middle = _middle(document.text, start, end)
            return _fit(document, start, middle, 0, settings, max_tokens, count_tokens) + _fit(
                document, middle, end, 0, settings, max_tokens, count_tokens
            )
    return [
        Chunk(
            text=text,
            embed_text=embed_text,
            start=start,
            end=end,
            start_line=document.line_at(start),
            end_line=document.line_at(max(end - 1, start)),
            section=section,
            page=document.page_at(start),
            tokens=tokens or estimate_tokens(embed_text),
            context=context,
            parts=_parts(document, start, end, settings, max_tokens, count_tokens) if settings.section_parts else [],
        )
    ]


def _parts(
    document: Document, start: int, end: int, settings: ChunkSettings,
    max_tokens: int | None, count_tokens: Callable[[str], int] | None,
) -> list[Part]:
    """The sections of the span start:end, when it holds more than one (each with some text
    of its own, not a heading alone)."""
    inside = sorted({section.start for section in document.sections if start < section.start < end})
    if not inside:
        return []
    parts = []
    for a, b in zip([start, *inside], [*inside, end]):
        text = document.text[a:b].rstrip()
        if len(text.strip()) < 24 or "\n" not in text.strip() and b != end:
            continue  # a heading of its own, or next to nothing
        section = document.section_at(a)
        context = context_header(text, document.title, section) if settings.context else None
        if max_tokens and count_tokens:
            context = _shortened(context, max_tokens // 4, count_tokens)
        parts.append(Part(a, a + len(text), section, with_context(context, text)))
    return parts if len(parts) > 1 else []


def _shortened(context: str | None, limit: int, count_tokens: Callable[[str], int]) -> str | None:
    """`context` cut to at most `limit` tokens: the outer parts of the path (the title first)
    go before the nearer ones, and a single part still too long keeps its beginning."""
    # A token covers at least one character; the counter adds two special tokens.
    if context is None or len(context) + 2 <= limit:
        return context
    parts = context.split(" › ")
    while len(parts) > 1 and count_tokens(" › ".join(parts)) > limit:
        parts.pop(0)
    header = " › ".join(parts)
    if count_tokens(header) <= limit:
        return header
    low, high = 0, len(header)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(header[:middle] + "…") <= limit:
            low = middle
        else:
            high = middle - 1
    return header[:low].rstrip() + "…" if header[:low].strip() else None


def _middle(text: str, start: int, end: int) -> int:
    """A cut near the middle of text[start:end], at a newline or space when there is one."""
    middle = (start + end) // 2
    for separator in ("\n", " "):
        cut = text.rfind(separator, start + (end - start) // 4, middle + 1)
        if cut > start:
            return cut + 1
    return middle


def context_header(text: str, title: str | None, section: str | None) -> str | None:
    """The title and section path of a chunk, minus what the chunk itself starts with."""
    parts = section.split(" › ") if section else []
    if title and (not parts or parts[0] != title):
        parts.insert(0, title)
    if parts and text.lstrip("#=*-~ \t").startswith(parts[-1]):
        parts.pop()
    return " › ".join(parts) if parts else None


def with_context(context: str | None, text: str) -> str:
    """The text a model embeds for a chunk: its context header, a blank line, its text."""
    return f"{context}\n\n{text}" if context else text


def fit_to_tokens(text: str, max_tokens: int, count_tokens: Callable[[str], int] | None = None) -> str:
    """`text` cut at a word boundary to fit `max_tokens` (counted by `count_tokens`, else
    estimated); unchanged if it fits. A token covers at least one character, so text no
    longer than the limit in characters always fits."""
    count = count_tokens or estimate_tokens
    if len(text) <= max_tokens:
        return text
    # Where the limit falls, from the tokens per character of the text's beginning; then a
    # tenth shorter until it fits. A few counts of short texts, where halving the whole
    # (maybe very long) text would count it many times.
    sample = text[: max_tokens * 8]
    tokens = count(sample)
    if len(sample) == len(text) and tokens <= max_tokens:
        return text
    end = max(1, int(len(sample) * max_tokens / max(tokens, 1)))
    while end > 1:
        cut = text.rfind(" ", 0, end)
        piece = text[: cut if cut > end // 2 else end].rstrip()
        if count(piece) <= max_tokens:
            return piece
        end = int(end * 0.9)
    return text[:1]
