"""Keyword search text: what goes into the FTS5 index and how user text becomes a safe query.

FTS5's unicode61 tokenizer splits on spaces and punctuation and, with remove_diacritics,
folds accents, which serves European languages. Chinese and Japanese are written without
spaces, so unicode61 would see a whole sentence as one token; CJK runs are therefore
indexed as overlapping character bigrams (the usual approach for CJK full-text search),
in the index and in the query alike. Arabic's short-vowel marks and tatweel, which writers
mostly leave out, are dropped, as the tokenizer's accent folding does only for Latin
letters.
"""

from __future__ import annotations

import re

from .scripts import CJK, MARKS

_CJK = re.compile(f"[{CJK}]+")
# Arabic harakat, the superscript alef and tatweel (the elongation stroke).
_ARABIC_OPTIONAL = re.compile(r"[\u0640\u064b-\u065f\u0670]")
# Letters, digits and combining marks: the characters the keyword index's tokenizer keeps
# together (KEYWORD_TOKENIZER's categories), so a Hindi word is not cut at its vowel signs.
_WORD = re.compile(rf"[\w{MARKS}]+")


def _bigrams(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i : i + 2] for i in range(len(run) - 1))


def keyword_text(text: str) -> str:
    """The text as the keyword index should see it: CJK runs become spaced bigrams, Arabic
    loses its optional vowel marks."""
    if text.isascii():
        return text
    text = _ARABIC_OPTIONAL.sub("", text)
    return _CJK.sub(lambda match: f" {_bigrams(match.group())} ", text)


def query_terms(query: str) -> list[str]:
    """The distinct terms of a user's query, in order: words, and bigrams of CJK runs.

    Any text is acceptable: quotes, operators, brackets and emoji are simply not terms.
    """
    terms: dict[str, None] = {}
    for word in _WORD.findall(keyword_text(query)):
        word = word.lower().strip("_")
        if word:
            terms[word] = None
    return list(terms)


def match_expression(terms: list[str]) -> str:
    """An FTS5 MATCH string that ORs `terms`, each quoted so no term is read as syntax."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
