"""Reading one document for the pipeline: bytes to a record and its chunks, or a reason to skip.

Runs in the reader thread, ahead of the thread that embeds and writes: hashing, parsing and
chunking happen here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..embedding.base import BaseEmbedder
from ..errors import DocumentError
from ..readers import Document, Section, read_document
from ..readers.walk import FileEntry, Skipped
from ..settings import ChunkSettings
from ..storage.base import DocumentRecord, DocumentState
from ..text.chunking import Chunk, chunk_document
from . import plan
from .plan import current


@dataclass
class Item:
    """What the reader thread hands over for one document."""

    state: DocumentState | None
    record: DocumentRecord | None = None
    chunks: list[Chunk] = field(default_factory=list)
    skipped: Skipped | None = None
    unchanged: bool = False
    touch: tuple[int, int] | None = None  # new size and mtime_ns of an unchanged file
    hashes: list[bytes] = field(init=False)  # of the chunks' embedded texts
    # (hash, text) of all that is embedded: the chunks and their parts.
    texts: list[tuple[bytes, str]] = field(init=False)

    def __post_init__(self) -> None:
        # Here, in the reader thread, which runs ahead of the writer.
        self.hashes = [chunk.hash for chunk in self.chunks]
        self.texts = [pair for chunk in self.chunks for pair in chunk.embedded()] if any(
            chunk.parts for chunk in self.chunks
        ) else [(digest, chunk.embed_text) for digest, chunk in zip(self.hashes, self.chunks)]


class Reader:
    """Turns files and records into items for one run: chunks of at most `max_tokens` as
    `count_tokens` counts them (when both are given)."""

    def __init__(
        self,
        settings: ChunkSettings,
        *,
        max_tokens: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        force: bool = False,
    ) -> None:
        self.settings = settings
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        self.force = force

    @classmethod
    def for_embedder(cls, embedder: BaseEmbedder, settings: ChunkSettings, *, force: bool = False) -> Reader:
        return cls(settings, max_tokens=embedder.max_tokens, count_tokens=embedder.count_tokens, force=force)

    def file(self, entry: FileEntry, state: DocumentState | None) -> Item:
        try:
            data = entry.read_bytes()
        except OSError as exc:
            return Item(state, skipped=Skipped(str(entry.path), f"unreadable: {exc.strerror or exc}"))
        content_hash = hashlib.blake2b(data, digest_size=16).hexdigest()
        if state is not None and current(state) and not self.force and state.content_hash == content_hash:
            return Item(state, unchanged=True, touch=(entry.size, entry.mtime_ns))
        try:
            document = read_document(entry.path, data)
        except DocumentError as exc:
            return Item(state, skipped=Skipped(str(entry.path), str(exc), entry.size, entry.mtime_ns))
        del data  # the text is read: a large file's bytes need not stay in memory while it is cut
        record = DocumentRecord(
            path=str(entry.path), kind="file", content_hash=content_hash, reader=plan.READER_VERSION,
            size=entry.size, mtime_ns=entry.mtime_ns, format=document.format, title=document.title,
        )
        return Item(state, record, self.chunk(document))

    def text(self, key: str, text: str, metadata: dict[str, Any] | None, state: DocumentState | None) -> Item:
        title = (metadata or {}).get("title")
        # The metadata counts too: a record whose metadata alone changed is written again
        # (its chunks keep their vectors), so searches show the new metadata.
        described = json.dumps(metadata, sort_keys=True, ensure_ascii=False) if metadata else ""
        content_hash = hashlib.blake2b(f"{title}\0{text}\0{described}".encode(), digest_size=16).hexdigest()
        if state is not None and current(state) and not self.force and state.content_hash == content_hash:
            return Item(state, unchanged=True)
        body = f"{title}\n\n{text}" if title else text
        sections = [Section(0, 1, title)] if title else []
        document = Document(body, format="text", title=title, sections=sections)
        if not body.strip():
            return Item(state, skipped=Skipped(key, "no text"))
        record = DocumentRecord(
            path=key, kind="text", content_hash=content_hash, reader=plan.READER_VERSION, format="text",
            title=title, metadata=metadata,
        )
        return Item(state, record, self.chunk(document))

    def chunk(self, document: Document) -> list[Chunk]:
        return chunk_document(document, self.settings, max_tokens=self.max_tokens, count_tokens=self.count_tokens)
