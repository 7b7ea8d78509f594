"""The storage seam: what the rest of semsearch asks of an index's storage, split by role.

- `Catalogue`: the folders and documents an index holds, which indexing compares the files
  against, and their counts.
- `Writer`: every change, one writer at a time (a backend's `writer()` takes the write
  lock); each call is atomic, and `transaction()` groups several into one.
- `Retrieval`: dense and keyword rankings, the chunk ids filters admit, rows by id. Reads
  never write, and see the last committed state while a writer works.
- `Maintenance`: status, check and repair.

A `Backend` plays every role for one open index; `storage.open_backend` picks the backend
for a location. The contract tests (tests/contract) run the Index-level suite against every
backend, so a backend is proven by passing them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ..readers.walk import Skipped
    from ..results import CheckReport
    from ..search.filters import Filters
    from ..text.chunking import Chunk


@dataclass(frozen=True)
class DocumentState:
    """What the index remembers about a document, to tell whether it changed."""

    id: int
    path: str
    size: int | None
    mtime_ns: int | None
    content_hash: str | None
    reader: int = 0


@dataclass(frozen=True)
class SkippedState:
    """A file the last run skipped: why, and (when the reason came from reading it) the
    size, modification time and reader version it was refused at."""

    reason: str
    size: int | None = None
    mtime_ns: int | None = None
    reader: int | None = None


@dataclass
class DocumentRecord:
    """A document about to be written."""

    path: str
    kind: str  # "file" or "text"
    content_hash: str
    reader: int = 0
    size: int | None = None
    mtime_ns: int | None = None
    format: str | None = None
    title: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class DocumentWrite:
    """A document to write in place of any earlier version of its path, with its chunks and
    the hash of each chunk's embedded text. A text whose vector is neither stored nor in
    the same commit waits for it in the backlog: the chunk is written all the same, and found
    by keywords until its vector comes."""

    record: DocumentRecord
    chunks: Sequence[Chunk]
    hashes: Sequence[bytes]


@dataclass
class Commit:
    """One atomic change from an indexing run: new vectors (of new texts, or of texts that
    wait for them), documents, and the new size and modification time of documents whose
    content did not change."""

    vectors: list[tuple[bytes, np.ndarray]] = field(default_factory=list)
    documents: list[DocumentWrite] = field(default_factory=list)
    touches: list[tuple[int, int, int]] = field(default_factory=list)  # (document id, size, mtime_ns)
    # Overwrite the vectors of hashes already stored (a forced re-embedding).
    replace_vectors: bool = False


@dataclass(frozen=True)
class Committed:
    """What a commit changed."""

    chunks_added: int
    chunks_removed: int


@dataclass
class StorageStatus:
    """What the storage holds and what it costs."""

    documents: int
    chunks: int
    vectors: int
    roots: list[str]
    disk_bytes: int
    skipped: list[tuple[str, str]]
    # The vector index: its type ("flat", "ivf (...)", "none" before the first save), how
    # many vectors it holds, its layout parameters, memory when loaded, bytes on disk.
    index_type: str = "none"
    index_vectors: int = 0
    index_layout: dict[str, Any] = field(default_factory=dict)
    index_memory_bytes: int = 0
    index_disk_bytes: int = 0
    # Chunks written but waiting for their vectors, and the distinct texts they wait for.
    waiting_chunks: int = 0
    waiting_texts: int = 0


class Catalogue(ABC):
    """The folders and documents an index holds."""

    @abstractmethod
    def roots(self) -> list[str]:
        """The indexed folders (and files), sorted."""

    @abstractmethod
    def root_patterns(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """The remembered (include, exclude) patterns of each folder that has any."""

    @abstractmethod
    def root_size_limits(self) -> dict[str, int | None]:
        """The remembered file size limit of each folder indexed with one given."""

    @abstractmethod
    def document_states(self, roots: Sequence[str]) -> dict[str, DocumentState]:
        """Indexed files at or under each of `roots` (absolute paths), by path."""

    @abstractmethod
    def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]:
        """The indexed documents at exactly these paths (or record ids), by path."""

    @abstractmethod
    def documents_matching(self, paths: Sequence[str]) -> list[DocumentState]:
        """Documents whose path is one of `paths` or lies under one of them."""

    @abstractmethod
    def skipped_states(self, roots: Sequence[str]) -> dict[str, SkippedState]:
        """Files skipped at or under `roots` by the last run, by path."""

    @abstractmethod
    def record_count(self) -> int:
        """How many documents are records from `add_texts` rather than files."""

    @abstractmethod
    def has_documents(self) -> bool:
        """Whether the index holds any document."""


class Retrieval(ABC):
    """The reads a search makes."""

    # Whether a hybrid search runs its dense and keyword retrievals at once, in two threads
    # (each with its own connection), rather than one after the other.
    parallel_retrieval: bool = False

    @abstractmethod
    def has_chunks(self) -> bool:
        """Whether the index holds any chunk."""

    def prepare_dense(self) -> None:  # noqa: B027 - optional: most backends have nothing to warm
        """Get ready for dense searches (a cache to load); runs while the query is embedded."""

    @abstractmethod
    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[list[int], list[float]]:
        """The `k` chunks nearest `vector` by cosine similarity, best first, as (ids, scores);
        only among `allowed` chunk ids when given."""

    @abstractmethod
    def keyword(self, terms: Sequence[str], k: int, allowed: np.ndarray | None) -> tuple[list[tuple[int, float]], float]:
        """The `k` best chunks by BM25 for any of `terms` as (chunk id, score) best first, and
        the score of a chunk holding every term: the sum of their IDFs."""

    @abstractmethod
    def document_facts(self) -> Iterator[tuple[int, str, str, int | None]]:
        """(id, path, kind, mtime_ns) of every document, for filtering."""

    @abstractmethod
    def chunk_ids_of_documents(self, document_ids: Sequence[int]) -> np.ndarray:
        """The ids of these documents' chunks, sorted."""

    @abstractmethod
    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The stored facts of each chunk id that exists, with its document's path and title."""

    def chunk_parts(self, chunk_ids: Sequence[int]) -> dict[int, list[tuple[int, int, str | None, np.ndarray]]]:
        """The sections of each of these chunks that holds several, with their own vectors:
        (start, end, section, vector) in order. A backend without them returns none, and
        results are labelled by their chunk's first section."""
        return {}

    @abstractmethod
    def backlog(self) -> tuple[int, int]:
        """How many chunks wait for their vectors, and how many distinct texts that is."""

    @abstractmethod
    def waiting_among(self, chunk_ids: Sequence[int]) -> set[int]:
        """Which of these chunks wait for their vectors (dense search cannot find them yet)."""

    def filtered_ids(self, filters: Filters, roots: Sequence[str]) -> np.ndarray:
        """The ids of the chunks of every document the filters admit."""
        admits = filters.admitter(roots)
        documents = [document_id for document_id, path, kind, mtime_ns in self.document_facts() if admits(path, kind, mtime_ns)]
        return self.chunk_ids_of_documents(documents)


class Maintenance(ABC):
    """Looking after an index."""

    @abstractmethod
    def status(self) -> StorageStatus:
        """Counts, folders, footprint and the files skipped."""

    @abstractmethod
    def check(self, *, repair: bool = False, timeout: float = 10.0) -> CheckReport:
        """Verify the storage; with `repair`, fix what can be fixed (taking the write lock,
        waiting up to `timeout` seconds for it)."""


class Writer(ABC):
    """Changes to an index, made under its write lock."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Make the calls inside one atomic change."""

    @abstractmethod
    def set_settings(self, values: dict[str, str]) -> None:
        """Store settings (model, dimensions, chunking, vectors, ...)."""

    @abstractmethod
    def clear(self) -> None:
        """Delete every document, chunk and vector; the folders are kept."""

    @abstractmethod
    def add_roots(self, roots: Iterable[str]) -> None:
        """Remember folders (or files) as indexed."""

    @abstractmethod
    def remove_roots(self, paths: Sequence[str]) -> None:
        """Forget folders at or under `paths`, and the files skipped there."""

    @abstractmethod
    def set_root_patterns(self, root: str, include: Sequence[str], exclude: Sequence[str]) -> None:
        """Remember the include/exclude patterns for a folder."""

    @abstractmethod
    def set_root_size_limit(self, root: str, limit: int | None) -> None:
        """Remember the file size limit a folder was indexed with (None: no limit)."""

    @abstractmethod
    def replace_skipped(self, roots: Sequence[str], skipped: Iterable[Skipped], reader: int) -> None:
        """Record this run's skipped files in place of those recorded at or under `roots`."""

    @abstractmethod
    def stored_vectors(self, hashes: Iterable[bytes]) -> set[bytes]:
        """Which of these text hashes need no embedding by this writer: their vector is stored
        (or another indexer is embedding them). A text waiting in the backlog is not stored."""

    @abstractmethod
    def waiting_texts(self, limit: int, exclude: set[bytes]) -> list[tuple[bytes, str]]:
        """Up to `limit` texts of the backlog for this writer to embed now, as (hash, text),
        those of the most recently modified documents first; none of `exclude`."""

    @abstractmethod
    def waiting_count(self) -> int:
        """How many texts the backlog holds, as committed."""

    @abstractmethod
    def reject(self, hashes: Iterable[bytes]) -> list[str]:
        """Remove the documents waiting for these texts' vectors, which the model refuses
        even one at a time; returns their paths."""

    @abstractmethod
    def commit(self, change: Commit) -> Committed:
        """Write vectors and documents in one transaction (refusing vectors of another size
        than the index holds: ModelMismatchError); a vector of a waiting text takes its place."""

    @abstractmethod
    def remove_documents(self, document_ids: Sequence[int]) -> int:
        """Delete documents and their chunks; returns how many chunks went."""


class Backend(Catalogue, Retrieval, Maintenance):
    """One open index's storage, in every role."""

    # "local" (a folder: SQLite and a FAISS cache) or another engine.
    kind: str = ""
    # Where the index is, as it may be shown (never with a password).
    location: str = ""
    # Whether writes are refused (a folder the process cannot write).
    readonly: bool = False
    # Whether reads may run in several threads at once (each with its own connection); if
    # not, an Index's reads take turns with its other calls.
    concurrent_reads: bool = False

    @abstractmethod
    def settings(self) -> dict[str, str]:
        """The stored settings; empty for an index not set up yet."""

    @abstractmethod
    def dimensions(self) -> int | None:
        """The size of the index's vectors, once known (the first vectors set it)."""

    @abstractmethod
    def writer(
        self, timeout: float, *, everything: bool = False, step: Callable[[str], None] | None = None
    ) -> AbstractContextManager[Writer]:
        """Hold the write lock (waiting up to `timeout` seconds: IndexLockedError) and give
        the writer. `everything`: the run covers every folder, so vectors no chunk uses
        afterwards are garbage rather than an interrupted run's work in waiting. `step` is
        told of each step the storage takes after the writes that may take a while (saving a
        cache, building an index), as a short phrase."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the index stays."""

    def discard(self) -> None:  # noqa: B027 - a backend with nothing to undo keeps the default
        """Close, and remove what opening made, for an index that was never set up (its
        model could not be reached): a failed first use leaves nothing behind."""
        self.close()

    def export_documents(self) -> Iterator[tuple[DocumentRecord, list[Chunk], list[bytes], dict[bytes, np.ndarray]]]:
        """Every document as it would be written again: its record, its chunks (their parts'
        hashes as stored), each chunk's text hash, and the vectors of those hashes and its
        parts'. For copying an index without embedding anything again."""
        raise NotImplementedError

    def shared_rate_limit(self, key: str, rate: float, capacity: float) -> Any:
        """A token bucket for the service contract `key` that every indexer of this index
        draws from (on any machine), or None when the process's own bucket is the only one.
        The caller closes it."""
        return None

    def walk_exclusions(self) -> tuple[Path | None, tuple[str, ...]]:
        """A folder the index keeps its own files in, and their names, for walks to leave out."""
        return None, ()


def refuse_copy_with_backlog(backend: Backend) -> None:
    """A copy takes vectors along: an index whose backlog is not embedded yet has to finish first."""
    chunks, _ = backend.backlog()
    if chunks:
        from ..errors import SemsearchError

        raise SemsearchError(
            f"The index {backend.location} has {chunks:,} chunks still waiting for their vectors: "
            "run `semsearch index` on it to finish embedding them, then copy it.",
            code="backlog_waiting",
        )


def backlog_notes(waiting_chunks: int, waiting_texts: int, unused_vectors: int) -> list[str]:
    """What `check` says of chunks waiting for their vectors and of stored vectors no chunk
    uses, on any backend: states an indexing run settles, not damage."""
    notes = []
    if waiting_chunks:
        # Keyword search finds these chunks, and any indexing run embeds them.
        notes.append(
            f"{waiting_chunks} chunks ({waiting_texts} texts) wait for their vectors: keyword search finds them now, "
            "and the next `semsearch index` (or `watch`) embeds them"
        )
    if unused_vectors:
        notes.append(
            f"{unused_vectors} stored vectors belong to no chunk: an interrupted run's, which the next "
            "indexing run uses, or left over, which an update of every folder drops"
        )
    return notes
