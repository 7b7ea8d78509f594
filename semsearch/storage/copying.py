"""Copying an index to another place or backend (a folder to PostgreSQL and back) with its
vectors, so that moving costs no embedding: the documents, chunks and vectors as stored, the
folders with their remembered settings, and the model and chunking settings."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SemsearchError
from .base import Commit, DocumentRecord, DocumentWrite

if TYPE_CHECKING:
    import numpy as np

    from ..text.chunking import Chunk
    from .base import Backend

# Settings that belong to one copy of an index, not to what it holds.
_OWN_SETTINGS = {"generation", "common_terms"}
# Documents per transaction of the copy.
BATCH = 200


def exported(
    fields: Sequence[Any], chunk_rows: Sequence[tuple], part_rows: Sequence[tuple], dimensions: int
) -> tuple[DocumentRecord, list[Chunk], list[bytes], dict[bytes, np.ndarray]]:
    """A document as `Backend.export_documents` gives it, from stored rows: `fields` are
    (path, kind, content_hash, reader, size, mtime_ns, format, title, metadata JSON), a chunk
    row (id, text, start, end, start_line, end_line, section, page, tokens, context, hash,
    vector), a part row (chunk id, start, end, section, hash, vector)."""
    from ..text.chunking import Chunk, Part, with_context

    path, kind, content_hash, reader, size, mtime_ns, format_, title, metadata = fields
    record = DocumentRecord(
        path=path, kind=kind, content_hash=content_hash, reader=reader, size=size, mtime_ns=mtime_ns, format=format_,
        title=title, metadata=json.loads(metadata) if metadata else None,
    )
    vectors: dict[bytes, np.ndarray] = {}
    parts: dict[int, list[Part]] = {}
    for chunk_id, start, end, section, digest, vector in part_rows:
        if len(vector) == dimensions:
            parts.setdefault(chunk_id, []).append(_StoredPart(start, end, section, "", digest))
            vectors[digest] = vector
    chunks, hashes = [], []
    for chunk_id, text, start, end, start_line, end_line, section, page, tokens, context, digest, vector in chunk_rows:
        chunks.append(Chunk(
            text=text, embed_text=with_context(context, text), start=start, end=end, start_line=start_line,
            end_line=end_line, section=section, page=page, tokens=tokens, context=context, parts=parts.get(chunk_id, []),
        ))
        hashes.append(digest)
        vectors[digest] = vector
    return record, chunks, hashes, vectors


def _stored_part_class() -> type:
    from ..text.chunking import Part

    class StoredPart(Part):
        """A part as stored: its text hash kept, its embedded text not."""

        def __init__(self, start: int, end: int, section: str | None, embed_text: str, digest: bytes) -> None:
            super().__init__(start, end, section, embed_text)
            self.digest = digest

        @property
        def hash(self) -> bytes:  # type: ignore[override]
            return self.digest

    return StoredPart


def _StoredPart(*args: Any) -> Any:  # noqa: N802 - made on first use: chunking is not imported for searching
    global _stored_part
    if _stored_part is None:
        _stored_part = _stored_part_class()
    return _stored_part(*args)


_stored_part: Any = None


def copy_index(source: Backend, destination: Backend, *, timeout: float = 10.0, progress: Callable[[int], None] | None = None) -> int:
    """Copy everything `source` holds into `destination`, which must hold no documents;
    returns how many documents were copied. Nothing is embedded.

    Raises SemsearchError when the destination already holds documents or another model.
    """
    settings = {key: value for key, value in source.settings().items() if key not in _OWN_SETTINGS}
    if not settings.get("model"):
        raise SemsearchError(f"The index at {source.location} is not set up yet: there is nothing to copy.", code="nothing_to_copy")
    if destination.has_documents():
        raise SemsearchError(
            f"The index at {destination.location} already holds documents: copy into a new (or emptied) index.",
            code="destination_not_empty", index=destination.location,
        )
    theirs = destination.settings().get("model")
    if theirs and theirs != settings["model"]:
        raise SemsearchError(
            f"The index at {destination.location} is set up for model {theirs}, not {settings['model']}.",
            code="other_model", index=destination.location,
        )
    copied = 0
    with destination.writer(timeout, everything=True) as writer:
        with writer.transaction():
            writer.set_settings(settings)
            roots = source.roots()
            writer.add_roots(roots)
            for root, (include, exclude) in source.root_patterns().items():
                writer.set_root_patterns(root, include, exclude)
            for root, limit in source.root_size_limits().items():
                writer.set_root_size_limit(root, limit)
        batch: list[tuple[DocumentRecord, list[Chunk], list[bytes], dict[bytes, np.ndarray]]] = []

        def flush() -> None:
            vectors = {digest: vector for *_, found in batch for digest, vector in found.items()}
            writer.commit(Commit(
                vectors=list(vectors.items()),
                documents=[DocumentWrite(record, chunks, hashes) for record, chunks, hashes, _ in batch],
            ))
            batch.clear()

        for document in source.export_documents():
            batch.append(document)
            copied += 1
            if len(batch) >= BATCH:
                flush()
                if progress:
                    progress(copied)
        if batch:
            flush()
    return copied
