"""The sentence or two of a passage that best show why it matched, and where the query's words are.

A hit is a chunk of ~300 tokens; a person scanning results wants the line that answers. The
snippet is the sentence (or two consecutive sentences) holding the most, and the longest,
of the query's words, compared by a light stem so "files" finds "file". When no word is
shared, which is common for a semantic match, the snippet is the chunk's opening sentences.
A snippet is always an exact span of the chunk text, and highlights are offsets into it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from functools import lru_cache

from .scripts import CJK, MARKS, OTHER_SENTENCE_MARKS, sentence_end

__all__ = ["best_snippet", "query_terms", "segments"]

MAX_CHARS = 320
_CJK = re.compile(f"[{CJK}]")
# Where a sentence ends (see `scripts.sentence_end`); text without any of the other
# scripts' marks is scanned with the faster ASCII pattern.
_SENTENCE_END = re.compile(sentence_end())
_OTHER_MARKS = OTHER_SENTENCE_MARKS
_LATIN_SENTENCE_END = re.compile(sentence_end(ascii_only=True))
_ADORNMENT = re.compile(r"""^\s*([=\-~^*#+`'".:_])\1{2,}\s*$""")
_ABBREVIATION = re.compile(r"(?:^|\s)(?:e\.g|i\.e|etc|vs|cf|dr|mr|mrs|ms|no|z\.b|bzw|ca|usw|d\.h)\.$", re.IGNORECASE)
# The longest text `_ABBREVIATION` can match (a space, three letters, the full stop): only
# that much of a sentence's end needs searching.
_ABBREVIATION_CHARS = 5
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s")
_SUFFIXES = ("ingly", "edly", "ings", "ing", "ies", "ied", "ed", "es", "s", "ly", "er", "en", "e", "y")
# Words without the underscore, and camelCase cut into its parts, so "parse_config" and
# "parseConfig" both hold "parse" and "config".
# Letters, digits and combining marks (a Devanagari vowel sign belongs to its word).
_TOKEN = re.compile(rf"(?:[^\W_]|[{MARKS}])+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_STOP = set(
    """a an and are as at be by can could did do does for from had has have how i if in into is it its
    me my no not of on or our so than that the their them then there these they this to was we were what
    when where which who why will with would you your der die das den dem des ein eine einen und oder ist
    sind wie was wer wo wann warum ich du er sie es wir ihr mein meine mir mich zu von mit auf für im in
    le la les un une des et ou est de du en pour que qui el los las y o es por con""".split()
)


def _fold(word: str) -> str:
    """Lower case without accents, so "Köln" and "koln" compare equal."""
    if word.isascii():
        return word.lower()  # what casefolding and decomposing come to for ASCII
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            # "resetting" -> "resett" -> "reset"
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]
            return word
    return word


@lru_cache(maxsize=1 << 16)
def _key(word: str) -> str:
    """What a word is compared by: folded and stemmed. Cached, as the words of a language
    repeat from one passage to the next."""
    return _stem(_fold(word))


def _tokens(text: str):
    """(start, end, word) of each word of `text`, identifiers cut into their parts."""
    for match in _TOKEN.finditer(text):
        yield from _parts(match.group(), match.start())


def _parts(word: str, start: int) -> list[tuple[int, int, str]]:
    """(start, end, part) of a word at `start`: a camelCase identifier's parts, or the word."""
    if word.isascii() and not word.islower() and not word.isupper():
        parts = []
        for part in _CAMEL.split(word):
            parts.append((start, start + len(part), part))
            start += len(part)
        return parts
    return [(start, start + len(word), word)]


def query_terms(query: str) -> list[str]:
    """The query's words worth finding, folded; CJK runs become their character pairs."""
    words: list[str] = []
    for _, _, raw in _tokens(query):
        word = _fold(raw)
        if _CJK.search(word):
            words += [word[i : i + 2] for i in range(max(len(word) - 1, 1))]
        else:
            words.append(word)
    kept = [w for w in words if w not in _STOP and (len(w) > 1 or _CJK.search(w))]
    return list(dict.fromkeys(kept or words))


class _Query:
    """A query analysed once for all the passages it is matched against."""

    def __init__(self, query: str) -> None:
        self.terms = query_terms(query)
        self.weights = {term: 0.5 + min(len(term), 8) / 8 for term in self.terms}
        self.cjk = [term for term in self.terms if _CJK.search(term)]
        self.stems = {_stem(term): term for term in self.terms if term not in self.cjk}
        # A stem is what is left of a word after cutting a suffix, so an ASCII word can only
        # match a term if the term's stem occurs, in lower case, at the word's start:
        # finding the stems in the lower-cased text finds every candidate ASCII word.
        self.ascii_stems = [stem for stem in self.stems if stem.isascii() and stem.isalnum()]

    def matches(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, term) of every occurrence of a query term in `text`, in order."""
        lowered = text.lower()
        if len(lowered) != len(text):  # a letter lower-cased into two ("İ"): offsets would drift
            return self._word_matches(text)
        found = self._candidate_matches(text, lowered)
        return sorted(found + self._cjk_matches(text)) if self.cjk else found

    def _word_matches(self, text: str) -> list[tuple[int, int, str]]:
        """What `matches` finds, by comparing every word of the text."""
        found = []
        for start, end, word in _tokens(text):
            term = self.stems.get(_key(word))
            if term is not None:
                found.append((start, end, term))
        return sorted(found + self._cjk_matches(text)) if self.cjk else found

    def _candidate_matches(self, text: str, lowered: str) -> list[tuple[int, int, str]]:
        # The same comparison as for every word, made only on the ASCII words a stem starts
        # and on the words holding other letters (which can fold to what lower() does not show).
        candidates = []
        for stem in self.ascii_stems:
            at = lowered.find(stem)
            while at != -1:
                # A word (or a camelCase part) starts here: what `_tokens` cuts at.
                if not at or not _in_word(text[at - 1]) or (text[at].isupper() and not text[at - 1].isupper()):
                    candidates.append(at)
                at = lowered.find(stem, at + 1)  # "abab" in "xabAbab": overlaps can start a part
        if not text.isascii():
            candidates += [match.start() for match in _NON_ASCII.finditer(text) if _in_word(match.group())]
        found: list[tuple[int, int, str]] = []
        done = 0
        for at in sorted(candidates):
            if at < done:
                continue  # in a word already compared
            start = at
            while start and _in_word(text[start - 1]):
                start -= 1
            done = _WORD_END.match(text, at).end()  # type: ignore[union-attr]  # matches the empty string too
            for a, b, part in _parts(text[start:done], start):
                term = self.stems.get(_key(part))
                if term is not None:
                    found.append((a, b, term))
        return found

    def _cjk_matches(self, text: str) -> list[tuple[int, int, str]]:
        found = []
        folded = text.casefold()
        for term in self.cjk:
            start = folded.find(term)
            while start != -1:
                found.append((start, start + len(term), term))
                start = folded.find(term, start + len(term))
        return found


_NON_ASCII = re.compile(r"[^\x00-\x7f]")

# The end of the word (a run of letters, digits and marks) a position lies in.
_WORD_END = re.compile(rf"(?:[^\W_]|[{MARKS}])*")
_MARK = re.compile(f"[{MARKS}]")


def _in_word(char: str) -> bool:
    return char.isalnum() or _MARK.match(char) is not None


@lru_cache(maxsize=64)
def _query(query: str) -> _Query:
    return _Query(query)


def _units(text: str) -> list[tuple[int, int, bool]]:
    """Sentences (and lines that stand alone: list items, code, headings) as (start, end,
    is_heading), in order. Adornment lines and blank lines belong to none."""
    lines = []
    offset = 0
    for line in text.splitlines(keepends=True):
        lines.append((offset, offset + len(line.rstrip("\r\n")), line.strip()))
        offset += len(line)
    units: list[tuple[int, int, bool]] = []
    ends = _SENTENCE_END if not text.isascii() and any(mark in text for mark in _OTHER_MARKS) else _LATIN_SENTENCE_END
    start = None
    for i, (line_start, line_end, stripped) in enumerate(lines):
        following = lines[i + 1][2] if i + 1 < len(lines) else ""
        if not stripped or _ADORNMENT.match(stripped):
            continue
        heading = stripped.startswith("#") or bool(following and _ADORNMENT.match(following))
        if start is None:
            start = line_start + (len(text[line_start:line_end]) - len(text[line_start:line_end].lstrip()))
        # A hard-wrapped prose line continues on the next; anything else ends here.
        continues = (
            not heading and len(stripped) >= 40 and not stripped.endswith((".", "!", "?", ":", ";"))
            and following[:1].isalpha() and not _LIST_ITEM.match(following) and not _ADORNMENT.match(following)
            and lines[i + 1][1] > lines[i + 1][0] and not text[lines[i + 1][0]].isspace()
        )
        if continues:
            continue
        units += _sentences(text, start, line_end, heading, ends)
        start = None
    return units


def _sentences(text: str, start: int, end: int, heading: bool, ends: re.Pattern) -> list[tuple[int, int, bool]]:
    if heading:
        return [(start, end, True)]
    units = []
    for match in ends.finditer(text, start, end):
        stop, after = match.start() + 1, match.end()  # just past the mark; past the space
        if after >= end:
            break
        before = text[start:stop]
        if len(before.strip()) < 4 or _ABBREVIATION.search(before[-_ABBREVIATION_CHARS:]):
            continue  # "2. Type the address", "e.g. this": not a sentence end
        units.append((start, stop if stop > start else after, False))
        start = after
    units.append((start, end, False))
    return [(a, b, h) for a, b, h in units if text[a:b].strip()]


def best_snippet(
    text: str, query: str, *, max_chars: int = MAX_CHARS, within: tuple[int, int] | None = None
) -> tuple[str, list[list[int]]]:
    """The best sentence or two of `text` for `query`, and where the query's words occur.

    Returns the snippet (an exact substring of `text`, at most about `max_chars` long) and
    the highlights: [start, end] character offsets into `text` of every occurrence of a
    query word, in order. `within` restricts the snippet to that span of `text` (the
    section of a chunk that answers best), when it holds a sentence.
    """
    analysed = _query(query)
    every_match = analysed.matches(text) if analysed.terms else []
    highlights = [[start, end] for start, end, _ in every_match]
    units = _units(text)
    matches = every_match
    if within is not None:
        inside = [unit for unit in units if within[0] <= unit[0] and unit[1] <= within[1]]
        if any(not heading for _, _, heading in inside):
            units = inside
            matches = [match for match in every_match if within[0] <= match[0] and match[1] <= within[1]]
    if not units:
        return text.strip()[:max_chars], highlights

    def found(start: int, end: int) -> set[str]:
        return {term for a, b, term in matches if start <= a and b <= end}

    if matches:
        best = _best_unit(units, matches, analysed.weights)
        # A heading that holds the query's words is shown as the section already; what
        # answers is the text under it.
        if units[best][2]:
            best = next((i for i in range(best + 1, len(units)) if not units[i][2]), best)
    else:
        # Nothing shared: the passage's opening, past any heading (shown as the section).
        best = next((i for i, unit in enumerate(units) if not unit[2]), 0)
    first = last = best
    start, end = units[best][0], units[best][1]
    have = found(start, end)
    # A second sentence when it brings another query word, or when the first is short (a
    # short opening, "Yes.", leads into what follows: shown as far as the snippet's room).
    for neighbour in (best + 1, best - 1):
        if not 0 <= neighbour < len(units) or units[neighbour][2]:
            continue
        n_start, n_end, _ = units[neighbour]
        span = (min(start, n_start), max(end, n_end))
        short = end - start < 100 and neighbour == best + 1
        if span[1] - span[0] > max_chars and not short:
            continue
        if found(n_start, n_end) - have or short:
            first, last = min(first, neighbour), max(last, neighbour)
            start, end = span
            break
    if end - start > max_chars:
        start, end = _window(text, start, end, highlights, max_chars)
    return text[start:end].strip(), highlights


def _best_unit(units: list[tuple[int, int, bool]], matches: list[tuple[int, int, str]], weights: dict[str, float]) -> int:
    """The unit holding the most, and the longest, of the query's words (headings count
    half); the first of equals."""
    starts = [start for start, _, _ in units]
    terms: dict[int, set[str]] = {}
    counts: dict[int, int] = {}
    for a, b, term in matches:
        index = bisect_right(starts, a) - 1
        if index >= 0 and b <= units[index][1]:
            terms.setdefault(index, set()).add(term)
            counts[index] = counts.get(index, 0) + 1
    best, best_value = 0, 0.0  # a unit without a query word scores 0
    for index in sorted(terms):
        value = sum(weights[t] for t in terms[index]) + 0.1 * math.log1p(counts[index])
        value *= 0.5 if units[index][2] else 1.0
        if value > best_value:
            best, best_value = index, value
    return best


def _window(text: str, start: int, end: int, highlights: list[list[int]], max_chars: int) -> tuple[int, int]:
    """A `max_chars` span of text[start:end] at word boundaries, around its first highlight."""
    first = next((a for a, b in highlights if start <= a < end), start)
    left = max(start, min(first - max_chars // 4, end - max_chars))
    right = min(end, left + max_chars)
    if left > start:
        space = text.find(" ", left, first if first > left else right)
        left = space + 1 if space != -1 else left
    if right < end:
        space = text.rfind(" ", left, right)
        right = space if space > left else right
    return left, right


def segments(text: str, snippet: str, highlights: list[list[int]]) -> list[tuple[str, bool]]:
    """The snippet cut into (piece, highlighted) pieces, for display."""
    start = text.find(snippet)
    if start == -1 or not snippet:
        return [(snippet, False)]
    end = start + len(snippet)
    pieces: list[tuple[str, bool]] = []
    position = start
    for a, b in highlights:
        if b <= position or a >= end:
            continue
        a, b = max(a, position), min(b, end)
        if a > position:
            pieces.append((text[position:a], False))
        pieces.append((text[a:b], True))
        position = b
    if position < end:
        pieces.append((text[position:end], False))
    return pieces
