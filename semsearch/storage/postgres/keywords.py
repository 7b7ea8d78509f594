"""Keyword search in PostgreSQL: BM25 computed in SQL over a tsvector of each chunk.

The text is cut into words in Python as the local index cuts it (CJK runs as bigrams, marks
kept inside words, Arabic's optional vowel marks dropped), its accents folded as FTS5's
`remove_diacritics 2` folds them (the combining diacritics are dropped; ß stays ß), and
handed to the `semsearch` text search configuration, which stems English (Snowball, no stop
list). A query's words go through the same configuration, each as plain text
(`plainto_tsquery`), so no user text is read as query syntax.

Scores are BM25 with FTS5's constants and IDF (k1 = 1.2, b = 0.75, IDF floored at 1e-6),
from the term frequencies the tsvector records (up to 256 positions a word). As in a large
local index (above PRUNE_ABOVE chunks), an unfiltered search looks for its rarest words only,
as many as appear in POSTING_BUDGET chunks together (5,000 locally); and the chunk count of
a common word (among the thousand commonest, in more than about 0.5% of the chunks) is
estimated from the shares the last ANALYZE recorded (or, before any, from a sample of a few
thousand rows) rather than counted, so its IDF, which is small, is approximate.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .database import PostgresDatabase

if TYPE_CHECKING:
    import numpy as np

K1, B = 1.2, 0.75
MAX_SEARCHED_WORDS = 64
# On an index of more chunks than PRUNE_ABOVE (as locally), a keyword search reads the chunks
# of its rarest words up to POSTING_BUDGET in all (see `keyword_search`).
PRUNE_ABOVE = 50_000
POSTING_BUDGET = 2_000
# A word found this often in the sample of `_frequencies` has its count estimated from it.
RARE_IN_SAMPLE = 20
# Rows a sample for such an estimate reads, about.
SAMPLE_ROWS = 4_000
_WORD: re.Pattern[str] | None = None


def keyword_words(context: str | None, text: str) -> list[str]:
    """The words the keyword index holds for a chunk: its context header and text."""
    global _WORD
    from ...text.chunking import with_context
    from ...text.keywords import keyword_text

    if _WORD is None:
        from ...text.scripts import MARKS

        _WORD = re.compile(rf"[\w{MARKS}]+")
    # An underscore joins words for the query's tokenizer too, and PostgreSQL's parser splits there.
    return [word for token in _WORD.findall(fold(keyword_text(with_context(context, text)).lower())) for word in token.split("_") if word]


def fold(text: str) -> str:
    """Accents folded: é is e, ö is o; marks of other scripts (a Hindi vowel sign) stay."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", _DIACRITICS.sub("", unicodedata.normalize("NFD", text)))


_DIACRITICS = re.compile("[\u0300-\u036f]")


def _idf(rows: int, containing: int) -> float:
    containing = min(containing, rows)
    return max(math.log((rows - containing + 0.5) / (containing + 0.5)), 1e-6)


def _lexeme_query(lexeme: str) -> str:
    """A tsquery of one lexeme, quoted so nothing in it is syntax."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


class KeywordQueries(PostgresDatabase):
    """BM25 keyword search; mixed into `PostgresStore`."""

    _frequency_cache: tuple[int, dict[str, int]] = (-1, {})
    _shares_cache: tuple[int, dict[str, float]] = (-1, {})

    def keyword_search(self, words: Sequence[str], k: int, allowed: np.ndarray | None = None) -> tuple[list[tuple[int, float]], float]:
        """The `k` best chunks by BM25 for any of `words` as (chunk id, score) best first, and
        the score of a chunk holding every word: the sum of their IDFs."""
        if not words:
            return [], 0.0
        lexemes: dict[str, None] = {}
        for (found,) in self.rows(
            "SELECT tsvector_to_array(to_tsvector('semsearch', w)) FROM unnest(%s::text[]) AS w", [[fold(word) for word in words]]
        ):
            lexemes.update(dict.fromkeys(found or ()))
        if not lexemes:
            return [], 0.0
        chunks, tokens = self.rows("SELECT chunks, tokens FROM keyword_totals")[0]
        frequency = self._frequencies(list(lexemes), chunks)
        ceiling = sum(_idf(chunks, frequency[lexeme]) for lexeme in lexemes)
        searched = [lexeme for lexeme in lexemes if frequency[lexeme]]
        if not searched:
            return [], ceiling
        informative = [lexeme for lexeme in searched if frequency[lexeme] * 2 < chunks]
        if informative and allowed is None:
            searched = informative
        searched = sorted(searched, key=lambda lexeme: frequency[lexeme])[:MAX_SEARCHED_WORDS]
        if allowed is None and chunks > PRUNE_ABOVE:
            # The rarest words, as many as appear in POSTING_BUDGET chunks together (at least
            # the rarest one): the query's cost follows the chunks its words are in.
            kept: list[str] = []
            postings = 0
            for lexeme in searched:
                postings += frequency[lexeme]
                if kept and postings > POSTING_BUDGET:
                    break
                kept.append(lexeme)
            searched = kept
        parameters: dict[str, Any] = {
            "lexemes": searched,
            "idfs": [_idf(chunks, frequency[lexeme]) for lexeme in searched],
            "match": " | ".join(_lexeme_query(lexeme) for lexeme in searched),
            "average": max(tokens / max(chunks, 1), 1e-9),
            "k": k,
        }
        where = ""
        if allowed is not None:
            if not len(allowed):
                return [], ceiling
            parameters["allowed"] = [int(i) for i in allowed]
            where = "AND c.id = ANY(%(allowed)s)"
        rows = self.rows(
            "WITH q AS (SELECT * FROM unnest(%(lexemes)s::text[], %(idfs)s::float8[]) AS q(lexeme, idf)),"
            # Only the searched words' entries of each chunk's tsvector, marked (setweight) and
            # kept (ts_filter), are unnested: three times faster than unnesting all its words.
            " m AS (SELECT c.id, ts_filter(setweight(c.keywords, 'A', %(lexemes)s::text[]), '{a}') AS found, c.keyword_length"
            f" FROM chunks c WHERE c.keywords @@ %(match)s::tsquery {where})"
            " SELECT m.id, sum(q.idf * cardinality(u.positions) * (%(k1)s + 1)"
            "   / (cardinality(u.positions) + %(k1)s * (1 - %(b)s + %(b)s * m.keyword_length / %(average)s))) AS score"
            " FROM m CROSS JOIN LATERAL unnest(m.found) AS u JOIN q ON q.lexeme = u.lexeme"
            " GROUP BY m.id ORDER BY score DESC, m.id LIMIT %(k)s",
            {**parameters, "k1": K1, "b": B},
        )
        return [(row[0], float(row[1])) for row in rows], ceiling

    def _frequencies(self, lexemes: list[str], chunks: int) -> dict[str, int]:
        """How many chunks hold each lexeme. In a table of more than SAMPLE_ROWS chunks a
        common lexeme's count is estimated: from the share of chunks holding it that the
        last ANALYZE recorded (`_common_shares`), or else from a sample of the table (about
        SAMPLE_ROWS rows), where one found fewer than RARE_IN_SAMPLE times is counted
        exactly; reading a common word's posting list costs more than the whole search. The
        others, rare ones, are counted exactly through the GIN index, all in one statement.
        Remembered until a commit changes the chunk count."""
        if self._frequency_cache[0] != chunks:
            self._frequency_cache = (chunks, {})
        known = self._frequency_cache[1]
        missing = [lexeme for lexeme in lexemes if lexeme not in known]
        if not missing:
            return {lexeme: known[lexeme] for lexeme in lexemes}
        if len(known) > 10_000:
            known.clear()
        exact: list[str] = []
        shares = self._common_shares(chunks) if chunks > SAMPLE_ROWS else {}
        if chunks <= SAMPLE_ROWS:
            exact = missing
        elif shares:
            for lexeme in missing:
                if lexeme in shares:
                    known[lexeme] = int(shares[lexeme] * chunks)
                else:
                    exact.append(lexeme)
        else:
            percent = 100.0 * SAMPLE_ROWS / chunks
            counts = ", ".join("count(*) FILTER (WHERE keywords @@ %s::tsquery)" for _ in missing)
            row = self.rows(
                f"SELECT {counts} FROM chunks TABLESAMPLE SYSTEM ({percent:.4f}) REPEATABLE (7)", [_lexeme_query(lexeme) for lexeme in missing]
            )[0]
            for lexeme, found in zip(missing, row):
                if found >= RARE_IN_SAMPLE:
                    known[lexeme] = int(found * 100.0 / percent)
                else:
                    exact.append(lexeme)
        if exact:
            queries = [_lexeme_query(lexeme) for lexeme in exact]
            counts = ", ".join("count(*) FILTER (WHERE keywords @@ %s::tsquery)" for _ in exact)
            row = self.rows(f"SELECT {counts} FROM chunks WHERE keywords @@ %s::tsquery", [*queries, " | ".join(queries)])[0]
            known.update(zip(exact, row))
        return {lexeme: known[lexeme] for lexeme in lexemes}

    def _common_shares(self, chunks: int) -> dict[str, float]:
        """The lexemes the last ANALYZE of the chunks found commonest (up to ten times the
        statistics target, 1,000 by default), with the share of chunks holding each; empty
        before any ANALYZE. Read again when the chunk count changes."""
        if self._shares_cache[0] != chunks:
            row = self.rows(
                "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs FROM pg_stats s"
                " JOIN pg_class c ON c.relname = s.tablename JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname"
                " WHERE c.oid = 'chunks'::regclass AND s.attname = 'keywords'"
            )
            shares: dict[str, float] = {}
            if row and row[0][0] and row[0][1]:
                # The shares are followed by their minimum and maximum.
                shares = dict(zip(row[0][0], row[0][1][: len(row[0][0])]))
            self._shares_cache = (chunks, shares)
        return self._shares_cache[1]

    def keyword_problems(self) -> int:
        """Chunks whose keyword entry is empty though their text holds words."""
        return self.scalar("SELECT count(*) FROM chunks WHERE keyword_length > 0 AND keywords = ''::tsvector")

    def totals_problem(self) -> str | None:
        chunks, tokens = self.rows("SELECT chunks, tokens FROM keyword_totals")[0]
        counted, summed = self.rows("SELECT count(*), coalesce(sum(keyword_length), 0) FROM chunks")[0]
        if (chunks, tokens) != (counted, summed):
            return f"its totals say {chunks} chunks of {tokens} words, but there are {counted} of {summed}"
        return None

    def fix_totals(self) -> None:
        self.execute(
            "UPDATE keyword_totals SET chunks = (SELECT count(*) FROM chunks), tokens = (SELECT coalesce(sum(keyword_length), 0) FROM chunks)"
        )
