"""Checking a PostgreSQL index: its rows consistent (foreign keys keep most of that), the
keyword entries and totals right, the vector index present; and repairing what can be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...results import CheckReport
from ..base import backlog_notes
from .chunks import BUILD_AFTER_BELOW
from .migrations import HNSW_EF_CONSTRUCTION, HNSW_M

if TYPE_CHECKING:
    from .store import PostgresStore


@dataclass
class Damage:
    """What a repair has to do."""

    wrong_size: bool = False
    incomplete: bool = False
    totals: bool = False
    vector_index: bool = False
    # Built with other options than today's (HNSW_OPTIONS): not damage, but repair rebuilds it.
    old_vector_index: bool = False


def inspect(store: PostgresStore, location: str) -> tuple[CheckReport, Damage | None]:
    report = CheckReport()
    dimensions = store.dimensions()
    with store.snapshot():
        wrong_size = store.scalar("SELECT count(*) FROM vectors WHERE vector_dims(embedding) <> %s", [dimensions]) if dimensions else 0
        incomplete = store.scalar(
            "SELECT count(*) FROM documents d WHERE d.chunk_count <> (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
        )
        unused = store.scalar(
            "SELECT count(*) FROM vectors v WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vector_id = v.id)"
            " AND NOT EXISTS (SELECT 1 FROM chunk_parts p WHERE p.vector_id = v.id)"
        )
        empty_keywords = store.keyword_problems()
        totals = store.totals_problem()
        missing_index = bool(dimensions) and not store.has_vector_index()
        built_with = store.vector_index_options()
        waiting_chunks, waiting_texts = store.backlog_counts()
        # Below BUILD_AFTER_BELOW vectors a run loads without the index and builds it when it
        # ends (one killed before that leaves it unbuilt): exact search is quick at that size.
        small = store.scalar("SELECT count(*) FROM (SELECT 1 FROM vectors LIMIT %s) AS v", [BUILD_AFTER_BELOW]) < BUILD_AFTER_BELOW
    if wrong_size:
        report.problems.append(f"{wrong_size} vectors do not have {dimensions} dimensions")
    if incomplete:
        report.problems.append(f"{incomplete} documents do not have the chunks they were written with")
    if empty_keywords:
        report.problems.append(f"keyword index: {empty_keywords} chunks have no entry")
    if totals:
        report.problems.append(f"keyword index: {totals}")
    if missing_index and small:
        report.notes.append("the vectors' HNSW index is not built yet (searches score every vector exactly); the next indexing run builds it")
    elif missing_index:
        report.problems.append(
            "the vectors' HNSW index is missing (a run that began on a small index builds it when it ends; one stopped before that does not)"
        )
    wanted = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
    old_index = built_with is not None and {key: built_with.get(key) for key in wanted} != wanted
    if old_index and built_with is not None:
        report.notes.append(
            f"the vectors' HNSW index was built with m {built_with['m']}, ef_construction {built_with['ef_construction']};"
            f" `check --repair` builds it again with m {HNSW_M}, ef_construction {HNSW_EF_CONSTRUCTION}, for higher recall"
            " on a large index (searches go on meanwhile; about half an hour a million vectors on 2 cores)"
        )
    report.notes += backlog_notes(waiting_chunks, waiting_texts, unused)
    if not report.problems and not old_index:
        return report, None
    return report, Damage(
        bool(wrong_size), bool(incomplete or wrong_size or empty_keywords), bool(totals), missing_index and not small, old_index
    )


def mend(store: PostgresStore, report: CheckReport, damage: Damage) -> None:
    """Repair what `inspect` found (RUN_LOCK held alone): damaged chunks are dropped and their
    documents read again by the next indexing run."""
    dimensions = store.dimensions()
    with store.transaction():
        if damage.wrong_size and dimensions:
            bad = [row[0] for row in store.rows("SELECT id FROM vectors WHERE vector_dims(embedding) <> %s", [dimensions])]
            store.execute("DELETE FROM chunk_parts WHERE vector_id = ANY(%s)", [bad])
            chunk_ids = [row[0] for row in store.rows("SELECT id FROM chunks WHERE vector_id = ANY(%s)", [bad])]
            store.delete_chunks(chunk_ids)
            store.execute("DELETE FROM vectors WHERE id = ANY(%s)", [bad])
        if damage.incomplete:
            broken = [row[0] for row in store.rows("SELECT id FROM chunks WHERE keyword_length > 0 AND keywords = ''::tsvector")]
            store.delete_chunks(broken)
            lost = [
                row[0] for row in store.rows(
                    "SELECT d.id FROM documents d WHERE d.chunk_count <> (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
                )
            ]
            store.forget_content(lost)
        store.fix_totals()
        if damage.vector_index and dimensions:
            store.ensure_vector_index(dimensions)
    report.repaired = list(report.problems)
    if damage.old_vector_index and dimensions:
        store.rebuild_vector_index(dimensions)
        report.repaired.append(f"the vectors' HNSW index was built again with m {HNSW_M}, ef_construction {HNSW_EF_CONSTRUCTION}")
    if damage.incomplete:
        report.repaired.append("documents that lost chunks will be read again by the next indexing run")
