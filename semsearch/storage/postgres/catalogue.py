"""The catalogue of a PostgreSQL index: its folders and their remembered settings, the files
skipped under them, the documents, and the counts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..base import DocumentState, SkippedState
from .database import PostgresDatabase, like_prefix

if TYPE_CHECKING:
    import numpy as np

_STATE = "SELECT id, path, size, mtime_ns, content_hash, reader FROM documents"
_UNDER = "(path = %s OR path LIKE %s)"


class CatalogueQueries(PostgresDatabase):
    """Roots, skipped files and documents; mixed into `PostgresStore`."""

    def add_roots(self, roots: Iterable[str]) -> None:
        self.executemany("INSERT INTO roots (path) VALUES (%s) ON CONFLICT DO NOTHING", [(root,) for root in roots])

    def remove_roots(self, paths: Sequence[str]) -> None:
        for path in paths:
            self.execute(f"DELETE FROM roots WHERE {_UNDER}", [path, like_prefix(path)])
            self.execute(f"DELETE FROM skipped_files WHERE {_UNDER}", [path, like_prefix(path)])

    def roots(self) -> list[str]:
        return [row[0] for row in self.rows("SELECT path FROM roots ORDER BY path COLLATE \"C\"")]

    def set_root_patterns(self, root: str, include: Sequence[str], exclude: Sequence[str]) -> None:
        self._change_root_settings(root, include=list(include), exclude=list(exclude))

    def set_root_size_limit(self, root: str, limit: int | None) -> None:
        self._change_root_settings(root, max_file_size=limit)

    def root_patterns(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        found = {}
        for path, settings in self._root_settings().items():
            if settings.get("include") or settings.get("exclude"):
                found[path] = (tuple(settings.get("include", ())), tuple(settings.get("exclude", ())))
        return found

    def root_size_limits(self) -> dict[str, int | None]:
        return {path: settings["max_file_size"] for path, settings in self._root_settings().items() if "max_file_size" in settings}

    def _root_settings(self) -> dict[str, dict[str, Any]]:
        return {path: json.loads(value) for path, value in self.rows("SELECT path, settings FROM roots WHERE settings IS NOT NULL")}

    def _change_root_settings(self, root: str, **changes: Any) -> None:
        value = self.scalar("SELECT settings FROM roots WHERE path = %s FOR UPDATE", [root])
        settings = {**(json.loads(value) if value else {}), **changes}
        kept = {key: item for key, item in settings.items() if key == "max_file_size" or item}
        self.execute("UPDATE roots SET settings = %s WHERE path = %s", [json.dumps(kept) if kept else None, root])

    # -- skipped files ----------------------------------------------------------------------

    def skipped_states(self, roots: Sequence[str]) -> dict[str, SkippedState]:
        found = {}
        for root in roots:
            for path, *state in self.rows(
                f"SELECT path, reason, size, mtime_ns, reader FROM skipped_files WHERE {_UNDER}", [root, like_prefix(root)]
            ):
                found[path] = SkippedState(*state)
        return found

    def replace_skipped(self, roots: Sequence[str], skipped: Iterable[Any], reader: int) -> None:
        for root in roots:
            self.execute(f"DELETE FROM skipped_files WHERE {_UNDER}", [root, like_prefix(root)])
        self.executemany(
            "INSERT INTO skipped_files (path, reason, size, mtime_ns, reader) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (path) DO UPDATE SET reason = EXCLUDED.reason, size = EXCLUDED.size,"
            " mtime_ns = EXCLUDED.mtime_ns, reader = EXCLUDED.reader, seen_at = now()",
            [(item.path, item.reason, item.size, item.mtime_ns, reader if item.size is not None else None) for item in skipped],
        )

    def skipped_files(self) -> list[tuple[str, str]]:
        return [(row[0], row[1]) for row in self.rows('SELECT path, reason FROM skipped_files ORDER BY reason COLLATE "C", path COLLATE "C"')]

    # -- documents --------------------------------------------------------------------------

    def document_states(self, roots: Sequence[str]) -> dict[str, DocumentState]:
        states: dict[str, DocumentState] = {}
        for root in roots:
            for row in self.rows(f"{_STATE} WHERE kind = 'file' AND {_UNDER}", [root, like_prefix(root)]):
                states[row[1]] = DocumentState(*row)
        return states

    def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]:
        return {row[1]: DocumentState(*row) for row in self.rows(f"{_STATE} WHERE path = ANY(%s)", [list(paths)])}

    def documents_matching(self, paths: Sequence[str]) -> list[DocumentState]:
        found: dict[int, DocumentState] = {}
        for path in paths:
            for row in self.rows(f"{_STATE} WHERE {_UNDER}", [path, like_prefix(path)]):
                found[row[0]] = DocumentState(*row)
        return list(found.values())

    def document_facts(self) -> Iterator[tuple[int, str, str, int | None]]:
        yield from self.rows("SELECT id, path, kind, mtime_ns FROM documents")

    def chunk_ids_of_documents(self, document_ids: Sequence[int]) -> np.ndarray:
        import numpy as np

        rows = self.rows("SELECT id FROM chunks WHERE document_id = ANY(%s) ORDER BY id", [[int(i) for i in document_ids]])
        return np.array([row[0] for row in rows], dtype=np.int64)

    def record_count(self) -> int:
        return self.scalar("SELECT count(*) FROM documents WHERE kind = 'text'")

    def has_documents(self) -> bool:
        return bool(self.scalar("SELECT EXISTS (SELECT 1 FROM documents)"))

    def has_chunks(self) -> bool:
        return bool(self.scalar("SELECT EXISTS (SELECT 1 FROM chunks)"))

    def counts(self) -> dict[str, int]:
        counts = {table: self.scalar(f"SELECT count(*) FROM {table}") for table in ("documents", "chunks", "vectors", "backlog")}
        # A waiting text's row holds no vector yet.
        counts["vectors"] -= counts.pop("backlog")
        return counts
