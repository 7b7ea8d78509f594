"""The catalogue of a local index: its folders, their remembered settings, the documents and
the files skipped under them, and the counts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..base import DocumentState, SkippedState
from .database import Database, batches, now

if TYPE_CHECKING:
    import numpy as np


class CatalogueQueries(Database):
    """Roots, skipped files and documents as the indexing run compares them; mixed into `Store`."""

    def add_roots(self, roots: Iterable[str]) -> None:
        for root in roots:
            self.db.execute("INSERT OR IGNORE INTO roots (path, added_at) VALUES (?, ?)", [root, now()])

    def remove_roots(self, paths: Sequence[str]) -> None:
        """Forget folders at or under `paths`, and the files skipped there."""
        for path in paths:
            prefix = path.rstrip("/") + "/"
            self.db.execute("DELETE FROM roots WHERE path = ? OR substr(path, 1, ?) = ?", [path, len(prefix), prefix])
            self.db.execute("DELETE FROM skipped_files WHERE path = ? OR substr(path, 1, ?) = ?", [path, len(prefix), prefix])

    def roots(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT path FROM roots ORDER BY path")]

    def set_root_patterns(self, root: str, include: Sequence[str], exclude: Sequence[str]) -> None:
        """Remember the include/exclude patterns for a folder (added with `add_roots`)."""
        self._change_root_settings(root, include=list(include), exclude=list(exclude))

    def set_root_size_limit(self, root: str, limit: int | None) -> None:
        """Remember the file size limit a folder was indexed with (None: no limit)."""
        self._change_root_settings(root, max_file_size=limit)

    def root_patterns(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """The remembered (include, exclude) patterns of each folder that has any."""
        found = {}
        for path, settings in self._root_settings().items():
            if settings.get("include") or settings.get("exclude"):
                found[path] = (tuple(settings.get("include", ())), tuple(settings.get("exclude", ())))
        return found

    def root_size_limits(self) -> dict[str, int | None]:
        """The remembered file size limit of each folder indexed with one given."""
        return {path: settings["max_file_size"] for path, settings in self._root_settings().items() if "max_file_size" in settings}

    def _root_settings(self) -> dict[str, dict[str, Any]]:
        # Kept as JSON in the `patterns` column (migration m004), which began with the patterns.
        return {path: json.loads(value) for path, value in self.db.execute("SELECT path, patterns FROM roots WHERE patterns IS NOT NULL")}

    def _change_root_settings(self, root: str, **changes: Any) -> None:
        row = self.db.execute("SELECT patterns FROM roots WHERE path = ?", [root]).fetchone()
        settings = {**(json.loads(row[0]) if row and row[0] else {}), **changes}
        kept = {key: value for key, value in settings.items() if key == "max_file_size" or value}
        self.db.execute("UPDATE roots SET patterns = ? WHERE path = ?", [json.dumps(kept) if kept else None, root])

    # -- skipped files ----------------------------------------------------------------------

    def skipped_states(self, roots: Sequence[str]) -> dict[str, SkippedState]:
        """Files skipped at or under `roots` by the last run, by path."""
        found = {}
        for root in roots:
            prefix = root.rstrip("/") + "/"
            for path, *state in self.db.execute(
                "SELECT path, reason, size, mtime_ns, reader FROM skipped_files WHERE path = ? OR substr(path, 1, ?) = ?",
                [root, len(prefix), prefix],
            ):
                found[path] = SkippedState(*state)
        return found

    def replace_skipped(self, roots: Sequence[str], skipped: Iterable[Any], reader: int) -> None:
        """Record this run's skipped files (objects with path, reason, size, mtime_ns) in place
        of those the last run recorded at or under `roots`. Call inside `transaction()`."""
        for root in roots:
            prefix = root.rstrip("/") + "/"
            self.db.execute("DELETE FROM skipped_files WHERE path = ? OR substr(path, 1, ?) = ?", [root, len(prefix), prefix])
        seen_at = now()
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO skipped_files (path, reason, size, mtime_ns, reader, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (item.path, item.reason, item.size, item.mtime_ns, reader if item.size is not None else None, seen_at)
                for item in skipped
            ],
        )

    def skipped_files(self) -> list[tuple[str, str]]:
        """Every recorded skipped file as (path, reason), by reason then path."""
        return [(row[0], row[1]) for row in self.db.execute("SELECT path, reason FROM skipped_files ORDER BY reason, path")]

    # -- documents --------------------------------------------------------------------------

    def document_states(self, roots: Sequence[str]) -> dict[str, DocumentState]:
        """Indexed files at or under each of `roots` (absolute paths), by path."""
        states: dict[str, DocumentState] = {}
        for root in roots:
            prefix = root.rstrip("/") + "/"
            rows = self.db.execute(
                "SELECT id, path, size, mtime_ns, content_hash, reader FROM documents"
                " WHERE kind = 'file' AND (path = ? OR substr(path, 1, ?) = ?)",
                [root, len(prefix), prefix],
            )
            for row in rows:
                states[row[1]] = DocumentState(*row)
        return states

    def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]:
        """The indexed documents at exactly these paths (or record ids), by path."""
        states: dict[str, DocumentState] = {}
        for batch in batches(list(paths)):
            marks = ",".join("?" * len(batch))
            for row in self.db.execute(
                f"SELECT id, path, size, mtime_ns, content_hash, reader FROM documents WHERE path IN ({marks})", batch
            ):
                states[row[1]] = DocumentState(*row)
        return states

    def documents_matching(self, paths: Sequence[str]) -> list[DocumentState]:
        """Documents whose path is one of `paths` or lies under one of them."""
        found: dict[int, DocumentState] = {}
        for path in paths:
            prefix = path.rstrip("/") + "/"
            for row in self.db.execute(
                "SELECT id, path, size, mtime_ns, content_hash, reader FROM documents"
                " WHERE path = ? OR substr(path, 1, ?) = ?",
                [path, len(prefix), prefix],
            ):
                found[row[0]] = DocumentState(*row)
        return list(found.values())

    def document_facts(self) -> Iterator[tuple[int, str, str, int | None]]:
        """(id, path, kind, mtime_ns) of every document, for filtering."""
        yield from self.db.execute("SELECT id, path, kind, mtime_ns FROM documents")

    def chunk_ids_of_documents(self, document_ids: Sequence[int]) -> np.ndarray:
        import numpy as np

        ids: list[int] = []
        for batch in batches(list(document_ids)):
            marks = ",".join("?" * len(batch))
            ids.extend(row[0] for row in self.db.execute(f"SELECT id FROM chunks WHERE document_id IN ({marks})", batch))
        return np.array(sorted(ids), dtype=np.int64)

    def record_count(self) -> int:
        """How many documents are records from `add_texts` rather than files."""
        return self.db.execute("SELECT count(*) FROM documents WHERE kind = 'text'").fetchone()[0]

    def has_documents(self) -> bool:
        """Whether the index holds any document (one row read)."""
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM documents)").fetchone()[0] == 1

    def has_chunks(self) -> bool:
        """Whether the index holds any chunk (one row read, where counting them is a scan)."""
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM chunks)").fetchone()[0] == 1

    _chunk_count: tuple[int, int] | None = None  # (generation, count)

    def chunk_count(self) -> int:
        """How many chunks the index holds; counted once per generation, as counting is a scan."""
        generation = self.generation()
        if self._chunk_count is None or self._chunk_count[0] != generation:
            self._chunk_count = (generation, self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])
        return self._chunk_count[1]

    def counts(self) -> dict[str, int]:
        """How many documents, chunks and distinct vectors the index holds."""
        counts = {
            table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("documents", "chunks", "vectors", "backlog")
        }
        # A waiting text's row holds no vector yet.
        counts["vectors"] -= counts.pop("backlog")
        return counts
