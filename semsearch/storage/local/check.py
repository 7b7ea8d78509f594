"""Checking a local index: the database sound, its rows consistent, the keyword index and the
FAISS cache matching it; and repairing what can be repaired."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...results import CheckReport
from ..base import backlog_notes

if TYPE_CHECKING:
    from ..faiss.cache import VectorCache
    from ..sqlite.store import Store
    from .writer import LocalWriter


@dataclass
class Damage:
    """What a repair has to do."""

    wrong_size: list[int] = field(default_factory=list)  # vector ids
    broken_chunks: list[int] = field(default_factory=list)  # without a vector or a document
    keywords: bool = False  # the keyword index must be rebuilt
    parts: bool = False  # chunk parts that lost their chunk or vector
    backlog: bool = False  # backlog rows whose vector row is gone or filled
    cache_state: str | None = None
    documents_lost_chunks: bool = False


def inspect(store: Store, cache: VectorCache, location: str) -> tuple[CheckReport, Damage | None]:
    """Verify the index: SQLite sound, every chunk with a vector and a document, the FAISS
    cache matching SQLite. Returns the report and what a repair would do (None: nothing it
    can do).
    """
    import numpy as np

    report = CheckReport()
    damage = store.integrity_problems()
    if damage:
        # Nothing else can be trusted (or even read) in a damaged file, and deleting rows
        # cannot mend it: the way out is a new index of the same folders.
        report.problems += [f"SQLite: {problem}" for problem in damage]
        _advise_new_index(store, location, report)
        return report, None
    # FTS5's integrity check writes (a command row), so it runs before the read snapshot
    # below, and not at all on a read-only index.
    keyword_problems = [] if store.readonly else store.keyword_problems()
    if store.readonly:
        report.notes.append("the keyword index's own integrity check needs a writable index; its entries were compared only")
    dimensions = store.dimensions()
    # One snapshot: a run committing meanwhile must not look like a mismatch.
    with store.transaction():
        without_vectors = store.chunks_without_vectors()
        without_documents = store.chunks_without_documents()
        wrong_size = store.vectors_of_wrong_size(dimensions) if dimensions else []
        incomplete = store.documents_with_missing_chunks()
        unused = store.unused_vector_count()
        broken_parts = store.broken_parts()
        keyword_ids, chunk_ids = store.keyword_ids(), store.chunk_ids()
        waiting_chunks, waiting_texts = store.backlog_counts()
        backlog_problems = store.backlog_problems()
        # The FAISS file is a cache: behind the database (a writer at work, a killed run)
        # or missing, it is brought up to date by the next search, so that is no problem.
        cache_state = cache.state(len(chunk_ids) - waiting_chunks)
        cache_damage = None if cache_state else cache.damage()
    if without_vectors:
        report.problems.append(f"{len(without_vectors)} chunks have no vector")
    if without_documents:
        report.problems.append(f"{len(without_documents)} chunks belong to no document")
    if wrong_size:
        report.problems.append(f"{len(wrong_size)} vectors do not have {dimensions} dimensions")
    if broken_parts:
        report.problems.append(f"{broken_parts} chunk parts have lost their chunk or vector")
    if backlog_problems:
        report.problems.append(f"{backlog_problems} texts in the backlog have lost their vector row, or have their vector already")
    report.notes += backlog_notes(waiting_chunks, waiting_texts, unused)
    if not keyword_problems and not np.array_equal(keyword_ids, chunk_ids):
        keyword_problems.append(f"it holds {len(keyword_ids)} entries for {len(chunk_ids)} chunks")
    report.problems += [f"keyword index: {problem}" for problem in keyword_problems]
    if cache_state:
        report.notes.append(f"{cache_state}: the next search brings it up to date (or a repair now)")
    if cache_damage:
        report.problems.append(f"FAISS cache: {cache_damage}")
    if not (report.problems or cache_state):
        return report, None
    return report, Damage(
        wrong_size=wrong_size, broken_chunks=without_vectors + without_documents, keywords=bool(keyword_problems),
        parts=bool(broken_parts), backlog=bool(backlog_problems),
        cache_state=cache_state, documents_lost_chunks=bool(incomplete or without_vectors or wrong_size),
    )


def mend(store: Store, cache: VectorCache, writer: LocalWriter, report: CheckReport, damage: Damage) -> None:
    """Repair what `inspect` found (with the write lock held): damaged chunks are dropped and
    their documents re-read on the next indexing run; the cache is rebuilt."""
    with writer.transaction():
        store.delete_vectors(damage.wrong_size)
        store.delete_chunks(damage.broken_chunks)
        store.forget_content(store.documents_with_missing_chunks())
        if damage.parts:
            store.delete_broken_parts()
        if damage.backlog:
            store.delete_backlog_problems()
        if damage.keywords:
            store.rebuild_keywords()
    cache.rebuild()
    report.repaired = list(report.problems) + ([f"{damage.cache_state}: rebuilt"] if damage.cache_state else [])
    if damage.documents_lost_chunks:
        report.repaired.append("documents that lost chunks will be read again by the next indexing run")


def _advise_new_index(store: Store, location: str, report: CheckReport) -> None:
    roots, model = store.roots_and_model()
    folders = [root for root in roots if os.path.lexists(root)]
    named = ", ".join(folders) if folders else "its folders"
    report.advice = (
        f"The index database is damaged, which a repair cannot mend. Index {named} again into a new index "
        f"(with model {model or 'the same model'}), then replace {location} with it."
    )
    report.advice_code = "damaged_database"
    report.advice_details = {"index": location, "folders": folders, "model": model}
