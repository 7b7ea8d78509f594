"""The keyword half of the store: BM25 searches over the FTS5 index and its upkeep.

`Store` inherits these; they share its connection and are the only code that writes SQL
for the keyword index. Kept apart because keyword search at scale (which words to search,
whose counts to remember) is a subject of its own.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .database import Database, storage_error

if TYPE_CHECKING:
    import numpy as np

# The keyword index's tokenizer (migration m006): English stemming (which leaves other
# scripts alone), accents folded, and combining marks kept inside words (unicode61 would cut
# a Hindi or Tamil word at each vowel sign). Queries are analysed with the same one.
KEYWORD_TOKENIZER = "porter unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
# Chunks above which common terms are left out of keyword searches.
PRUNE_ABOVE = 50_000
# On such an index, a keyword search reads the posting lists of its rarest words up to
# this many chunks in all (about 1 µs each; see benchmarks/scale.py).
POSTING_BUDGET = 5_000
# Words in more chunks than this have their counts recorded (`refresh_term_statistics`).
COMMON_TERM_CHUNKS = 2_000
# The most words one keyword search looks for: the rarest of a longer query (a pasted page),
# as BM25 over thousands of OR-ed words reads nearly every posting list for little gain.
MAX_SEARCHED_WORDS = 64
# Query words whose analysis and counts a connection keeps, at most.
_REMEMBERED_WORDS = 10_000


def _idf(rows: int, containing: int) -> float:
    """BM25's inverse document frequency, as FTS5 computes it (never below 1e-6)."""
    # The two counts are read one after the other, so a writer's commit in between can
    # leave a word in more chunks than the count of chunks read before it.
    containing = min(containing, rows)
    return max(math.log((rows - containing + 0.5) / (containing + 0.5)), 1e-6)


def common_terms(db: Any, chunks: int) -> str:
    """The `common_terms` meta value: the document counts of the keyword index's words in
    more than COMMON_TERM_CHUNKS chunks, read from its vocabulary (all of it: seconds at a
    million chunks), and the chunk count they were taken at."""
    rows = db.execute("SELECT term, doc FROM chunks_fts_terms WHERE doc > ?", [COMMON_TERM_CHUNKS]).fetchall()
    return json.dumps({"chunks": chunks, "terms": dict(rows)}, ensure_ascii=False)


def keyword_body(context: str | None, text: str) -> str:
    """What the keyword index holds for a chunk: its context header and text, CJK runs as pairs."""
    # Imported on first use (chunking brings in the readers), then bound here: this runs
    # for every chunk written or deleted, and an import statement costs more than the call.
    global _with_context, _keyword_text
    if _keyword_text is None:
        from ...text.chunking import with_context as _with_context
        from ...text.keywords import keyword_text as _keyword_text
    return _keyword_text(_with_context(context, text))


_with_context: Any = None
_keyword_text: Any = None


class KeywordQueries(Database):
    """Keyword search and the keyword index's checks; mixed into `Store`."""

    def __init__(self, directory: Any) -> None:
        super().__init__(directory)
        self._common_terms: tuple[int, dict[str, int], int] | None = None  # (generation, term -> doc count, at chunks)
        self._scratch_ready = False
        # Each query word as the keyword index stores it (the tokenizer never changes), and
        # the chunk counts of the terms searched for this generation: repeated query words
        # are not analysed or counted again.
        self._index_forms: dict[str, str | None] = {}
        self._term_counts: tuple[int, dict[str, int]] = (-1, {})

    if TYPE_CHECKING:

        def chunk_count(self) -> int: ...  # CatalogueQueries

    def keyword_problems(self) -> list[str]:
        """What FTS5's own integrity check reports for the keyword index."""
        try:
            self.db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return []

    def keyword_ids(self) -> np.ndarray:
        """The chunk ids the keyword index holds, sorted."""
        import numpy as np

        return np.fromiter((row[0] for row in self.db.execute("SELECT rowid FROM chunks_fts ORDER BY rowid")), dtype=np.int64)

    def rebuild_keywords(self) -> None:
        """Index every chunk's text for keyword search again. Call inside `transaction()`."""
        self.db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")
        rows = self.db.execute("SELECT id, context, text FROM chunks").fetchall()
        self.db.conn.executemany(
            "INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)",
            [(chunk_id, keyword_body(context, text)) for chunk_id, context, text in rows],
        )
        # One segment instead of the many a bulk fill leaves (see migrations._keyword_index).
        self.db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")

    def keyword_search(
        self, words: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[list[tuple[int, float]], float]:
        """The `k` best chunks by BM25 for any of `words`, as (chunk id, score) best first,
        and the score of a chunk that holds every word: the sum of their IDFs.

        The ceiling uses BM25's own IDF over all the words, those found nowhere included,
        so a chunk matching only the query's common words scores a small part of it.
        On a large index, only the rarest words are searched for, as many as together
        appear in at most POSTING_BUDGET chunks (always at least the rarest one): a query
        costs time in proportion to the chunks its words appear in, while BM25 gives common
        words little weight. The document counts of common words come from statistics kept
        with the index (`refresh_term_statistics`), as counting them means reading their
        long posting lists. Whatever the index, at most MAX_SEARCHED_WORDS of the rarest
        words are searched for (a query that is a pasted page).
        """
        from ...text.keywords import match_expression

        # word -> its indexed (stemmed) form, for the words the tokenizer keeps
        terms = {word: term for word, term in zip(words, self._index_terms(words)) if term}
        if not terms:
            return [], 0.0
        chunks = self.chunk_count()
        distinct = sorted(set(terms.values()))
        known, scale = self._common_term_counts() if chunks > PRUNE_ABOVE else ({}, 1.0)
        frequency = {term: max(int(known[term] * scale), 1) for term in distinct if term in known}
        frequency.update(self._chunks_holding([term for term in distinct if term not in known]))
        # A chunk of average length holding each term once scores about the sum of the IDFs.
        ceiling = sum(_idf(chunks, frequency.get(term, 0)) for term in distinct)
        searched = [word for word, term in terms.items() if frequency.get(term, 0)]
        if not searched:
            return [], ceiling
        # A word in half the chunks or more has an IDF of nothing (FTS5 floors it at 1e-6):
        # searching for it changes no score worth the name but makes BM25 score nearly every
        # chunk. Such words are left out when the query holds others, and kept under a
        # filter, where they may be what tells the allowed chunks apart.
        informative = [word for word in searched if frequency[terms[word]] * 2 < chunks]
        if informative and allowed is None:
            searched = informative
        if len(searched) > MAX_SEARCHED_WORDS:
            searched = sorted(searched, key=lambda word: frequency[terms[word]])[:MAX_SEARCHED_WORDS]
        if chunks > PRUNE_ABOVE and allowed is None:
            searched.sort(key=lambda word: frequency[terms[word]])
            kept: list[str] = []
            postings = 0
            for word in searched:
                postings += frequency[terms[word]]
                if kept and postings > POSTING_BUDGET:
                    break
                kept.append(word)
            searched = kept
        sql = "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
        parameters: list[Any] = [match_expression(searched)]
        if allowed is not None:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS allowed_chunks (id INTEGER PRIMARY KEY)")
            self._fill_scratch("allowed_chunks", "INSERT INTO temp.allowed_chunks (id) VALUES (?)", ((int(i),) for i in allowed))
            sql += " AND rowid IN (SELECT id FROM temp.allowed_chunks)"
        sql += " ORDER BY bm25(chunks_fts) LIMIT ?"
        parameters.append(k)
        try:
            return [(row[0], row[1]) for row in self.db.execute(sql, parameters)], ceiling
        except sqlite3.OperationalError as exc:
            raise storage_error(exc, self.path) from None

    def _fill_scratch(self, table: str, insert: str, rows: Iterable[tuple]) -> None:
        """Replace the rows of a temporary table. Committed at once: an open transaction
        would pin this connection to an old snapshot and hide what writers commit later."""
        opened = not self.db.conn.in_transaction
        self.db.conn.execute(f"DELETE FROM temp.{table}")
        self.db.conn.executemany(insert, rows)
        if opened:
            self.db.conn.commit()

    def _chunks_holding(self, terms: list[str]) -> dict[str, int]:
        """How many chunks hold each of `terms` (indexed forms), counted once per generation."""
        generation = self.generation()
        if self._term_counts[0] != generation:
            self._term_counts = (generation, {})
        counted = self._term_counts[1]
        missing = [term for term in terms if term not in counted]
        if missing:
            marks = ",".join("?" * len(missing))
            found = dict(self.db.execute(f"SELECT term, doc FROM chunks_fts_terms WHERE term IN ({marks})", missing).fetchall())
            if len(counted) > _REMEMBERED_WORDS:
                counted.clear()
            counted.update({term: found.get(term, 0) for term in missing})
        return {term: counted[term] for term in terms}

    def _index_terms(self, words: Sequence[str]) -> list[str | None]:
        """Each word as the keyword index stores it (folded, stemmed), by running it through
        the index's own tokenizer in a scratch table: no second stemmer to disagree with it."""
        missing = [word for word in dict.fromkeys(words) if word not in self._index_forms]
        if missing:
            if not self._scratch_ready:
                self.db.execute(f'CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5(body, tokenize="{KEYWORD_TOKENIZER}")')
                self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_word_terms USING fts5vocab(temp, query_words, instance)")
                self._scratch_ready = True
            self._fill_scratch("query_words", "INSERT INTO temp.query_words (rowid, body) VALUES (?, ?)", enumerate(missing))
            found = dict((row[1], row[0]) for row in self.db.execute("SELECT term, doc FROM temp.query_word_terms"))
            if len(self._index_forms) > _REMEMBERED_WORDS:
                self._index_forms.clear()
            self._index_forms.update((word, found.get(i)) for i, word in enumerate(missing))
        return [self._index_forms[word] for word in words]

    def term_statistics_due(self) -> bool:
        """Whether `refresh_term_statistics` would count (see there)."""
        chunks = self.chunk_count()
        recorded = json.loads(self.meta().get("common_terms") or "null")
        if chunks <= PRUNE_ABOVE and recorded is None:
            return False
        return recorded is None or not recorded["chunks"] / 2 <= chunks <= recorded["chunks"] * 2

    def refresh_term_statistics(self, *, force: bool = False) -> bool:
        """Record the document counts of the keyword index's common words (those in more
        than COMMON_TERM_CHUNKS chunks), which keyword searches on a large index use instead
        of counting them (a read of their whole posting lists) every time. Done when the
        index has grown or shrunk twofold since the last count, or with `force`; returns
        whether it counted. Reads every posting list once: seconds at a million chunks.
        """
        if not force and not self.term_statistics_due():
            return False
        value = common_terms(self.db, self.chunk_count())
        with self.transaction():
            self.set_meta({"common_terms": value})
        self._common_terms = None
        return True

    def _common_term_counts(self) -> tuple[dict[str, int], float]:
        """Recorded document counts of common words, and the factor that scales them to the
        index's current size."""
        generation = self.generation()
        if self._common_terms is None or self._common_terms[0] != generation:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'common_terms'").fetchone()
            recorded: dict[str, Any] = json.loads(row[0]) if row else {"chunks": 1, "terms": {}}
            self._common_terms = (generation, dict(recorded["terms"]), int(recorded["chunks"]))
        _, counts, at = self._common_terms
        return counts, self.chunk_count() / max(at, 1)
