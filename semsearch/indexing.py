"""Adding documents to an index: read, chunk, embed what is new, commit batch by batch.

A reader thread reads and chunks files while embedding runs (the local model and HTTP
calls release the GIL), and the calling thread alone writes SQLite. Vectors are keyed by
the hash of the embedded text, so a chunk embedded once is never paid for again: not when
its file changes around it, not when the file moves, not after a killed run. Each
embedding batch is committed in one transaction together with the documents it completed.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chunking import Chunk, ChunkSettings, chunk_document
from .embedders import Embedder, Usage
from .errors import DocumentError, EmbeddingError, RequestTooLargeError
from .loaders import Document, read_document
from .store import DocumentRecord, DocumentState, Store
from .walk import FileEntry, Ignored, Skipped, walk

if TYPE_CHECKING:
    import numpy as np

    from .vectors import VectorIndex


@dataclass
class IndexStats:
    """What an `add` run did."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    # Left out on purpose (hidden, dependency folders, ignore rules): counted, not a problem.
    ignored: list[Ignored] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    usage: Usage | None = None
    # Indexed folders (or files) not found by an update of every folder (an unmounted drive,
    # a moved folder): their documents are kept as they were.
    missing: list[str] = field(default_factory=list)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return by_reason(self.skipped)

    @property
    def ignored_by_reason(self) -> dict[str, int]:
        return by_reason(self.ignored)

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new, "changed": self.changed, "unchanged": self.unchanged,
            "removed": self.removed, "skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason,
            "ignored": len(self.ignored), "ignored_by_reason": self.ignored_by_reason,
            "chunks_added": self.chunks_added, "chunks_removed": self.chunks_removed,
            "chunks_embedded": self.chunks_embedded, "chunks_reused": self.chunks_reused,
            "seconds": round(self.seconds, 3),
            "usage": self.usage.__dict__ if self.usage else None,
            "missing": self.missing,
        }


def by_reason(items: Iterable[Skipped | Ignored]) -> dict[str, int]:
    """How many items per reason, most common first."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.reason] = counts.get(item.reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class Progress:
    """Reported after each commit: documents finished out of those to read, chunks embedded."""

    done: int
    total: int
    chunks_embedded: int


ProgressCallback = Callable[[Progress], None]


@dataclass
class _Item:
    """What the reader thread hands over for one document."""

    state: DocumentState | None
    record: DocumentRecord | None = None
    chunks: list[Chunk] | None = None
    skipped: Skipped | None = None
    unchanged: bool = False
    touch: tuple[int, int] | None = None  # new size and mtime_ns of an unchanged file
    hashes: list[bytes] = field(init=False)  # of the chunks' embedded texts

    def __post_init__(self) -> None:
        # Here, in the reader thread, which runs ahead of the writer.
        self.hashes = [chunk.hash for chunk in self.chunks or ()]


@dataclass
class _Pending:
    item: _Item
    hashes: list[bytes]
    missing: set[bytes]


_DONE = object()

# Bump when readers or chunking change what they produce from the same file: documents
# read by an older version are read again (their unchanged chunks keep their vectors).
# 2: encoding detection, PDF, DOCX, code definitions as sections, HTML main content only.
# 3: minified code skipped. 4: a PDF page starts a new chunk.
# 5: HTML lines inside long text and <pre>, lone CR line ends, data: URI payloads left out,
#    CRLF front matter, DOCX content controls and tracked insertions, AES PDFs, Latin codepages,
#    every PDF page (a slide too) starts a chunk.
READER_VERSION = 5


def _current(state: DocumentState | None) -> bool:
    return state is not None and state.reader == READER_VERSION


class _Workers:
    """Daemon threads running `function`: unlike ThreadPoolExecutor's, they never hold up
    the exit of an interrupted run while a slow batch finishes."""

    def __init__(self, count: int, function: Callable[[list[str]], Any]) -> None:
        self._tasks: queue.Queue = queue.Queue()
        self._function = function
        for number in range(count):
            threading.Thread(target=self._work, name=f"semsearch-embed-{number}", daemon=True).start()
        self._count = count
        self._closed = False

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, argument = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._function(argument))
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, argument: list[str]) -> Future:
        future: Future = Future()
        self._tasks.put((future, argument))
        return future

    def close(self) -> None:
        """Stop the workers once their current task ends; queued tasks are dropped."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                future, _ = self._tasks.get_nowait()
            except queue.Empty:
                break
            future.cancel()
        for _ in range(self._count):
            self._tasks.put(None)


class Pipeline:
    """One indexing run over one store, FAISS cache and embedder."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: ChunkSettings,
        *,
        cache: Callable[[], VectorIndex],
        committed: Callable[[], None],
        dimensions: Callable[[int], None],
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        # `cache()` gives the FAISS cache current as of the last commit; after applying a
        # commit of ours to it, `committed()` says so.
        self.cache = cache
        self.committed = committed
        self.check_dimensions = dimensions
        self.force = force
        self.progress = progress
        self.stats = IndexStats()
        self._started = time.monotonic()
        self._vector_ids: dict[bytes, int] = {}
        self._pending: list[_Pending] = []
        self._waiting: dict[bytes, str] = {}  # hash -> text, not yet sent
        self._sent: set[bytes] = set()
        self._failed: set[bytes] = set()
        self._touches: list[tuple[int, int, int]] = []
        self._stale: list[int] = []  # documents whose file can no longer be read as text
        # Across the walks of one run (folders with different patterns may nest): the
        # files some walk found, and the documents a walk did not find, by path.
        self._found: set[str] = set()
        self._missing: dict[str, int] = {}
        self._walked: set[str] = set()
        self._done = 0
        self._total = 0
        self._ready_count = 0

    # -- what to read -----------------------------------------------------------------------

    def add_files(
        self, roots: list[Path], *, max_file_size: int | None, include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> IndexStats:
        """Index files under `roots`; files indexed before but no longer there are removed.

        `max_file_size`, `include` and `exclude` are passed to `walk.walk`.
        """
        paths = [str(root) for root in roots]
        self._walked.update(paths)
        known = self.store.document_states(paths)
        refused = self.store.skipped_states(paths)
        todo: list[tuple[FileEntry, DocumentState | None]] = []
        index_dir = self.store.path.parent.resolve()
        for entry in walk(roots, max_file_size=max_file_size, include=include, exclude=exclude, index_dir=index_dir):
            if isinstance(entry, Ignored):
                self.stats.ignored.append(entry)
                continue
            if isinstance(entry, Skipped):
                self.stats.skipped.append(entry)
                if entry.reason.startswith("unreadable"):
                    # Not readable this time is not gone: what was indexed under it stays.
                    under = entry.path.rstrip("/") + "/"
                    self._found.update(path for path in known if path == entry.path or path.startswith(under))
                continue
            self._found.add(str(entry.path))
            state = known.pop(str(entry.path), None)
            if _current(state) and not self.force and (state.size, state.mtime_ns) == (entry.size, entry.mtime_ns):
                self.stats.unchanged += 1
                continue
            reason, *seen = refused.get(str(entry.path), (None, None, None, None))
            if reason and state is None and not self.force and seen == [entry.size, entry.mtime_ns, READER_VERSION]:
                # Refused by this reader before and unchanged since: refused again without reading.
                self.stats.skipped.append(Skipped(str(entry.path), reason, entry.size, entry.mtime_ns))
                continue
            todo.append((entry, state))
        self._total += len(todo)
        self._run(lambda: (self._read_file(entry, state) for entry, state in todo))
        self._missing.update((path, state.id) for path, state in known.items())
        with self.store.transaction():
            self.store.replace_skipped(paths, self.stats.skipped, READER_VERSION)
        self._finish()
        return self.stats

    def remove_gone(self) -> IndexStats:
        """After the walks of a run: remove the documents no walk found (and those no longer
        readable as text). Only complete walks may conclude a file is gone, and a file one
        folder's patterns leave out may be another's to index."""
        # A file left out by this run's patterns may lie under another indexed folder, not
        # walked now, whose own patterns take it: while it exists, that folder's run decides.
        others = [root.rstrip("/") + "/" for root in self.store.roots() if root not in self._walked]
        gone = [
            document
            for path, document in self._missing.items()
            if path not in self._found and not (any(path.startswith(other) for other in others) and os.path.exists(path))
        ] + self._stale
        self._missing, self._stale = {}, []
        if gone:
            cache = self.cache()
            with self.store.transaction():
                removed = self.store.remove_documents(gone)
            cache.remove(removed)
            self.committed()
            self.stats.removed += len(gone)
            self.stats.chunks_removed += len(removed)
        self._finish()
        return self.stats

    def add_texts(self, records: Iterable[tuple[str, str, dict[str, Any] | None]]) -> IndexStats:
        """Index (id, text, metadata) records that are not files."""
        records = list(records)
        self._total = len(records)
        known = self.store.document_states_at(key for key, _, _ in records)
        self._run(lambda: (self._read_text(key, text, metadata, known.get(key)) for key, text, metadata in records))
        self._finish()
        return self.stats

    def _read_file(self, entry: FileEntry, state: DocumentState | None) -> _Item:
        try:
            data = entry.read_bytes()
        except OSError as exc:
            return _Item(state, skipped=Skipped(str(entry.path), f"unreadable: {exc.strerror or exc}"))
        content_hash = hashlib.blake2b(data, digest_size=16).hexdigest()
        if _current(state) and not self.force and state.content_hash == content_hash:
            return _Item(state, unchanged=True, touch=(entry.size, entry.mtime_ns))
        try:
            document = read_document(entry.path, data)
        except DocumentError as exc:
            return _Item(state, skipped=Skipped(str(entry.path), str(exc), entry.size, entry.mtime_ns))
        record = DocumentRecord(
            path=str(entry.path), kind="file", content_hash=content_hash, reader=READER_VERSION,
            size=entry.size, mtime_ns=entry.mtime_ns, format=document.format, title=document.title,
        )
        return _Item(state, record, self._chunk(document))

    def _read_text(self, key: str, text: str, metadata: dict[str, Any] | None, state: DocumentState | None) -> _Item:
        title = (metadata or {}).get("title")
        # The metadata counts too: a record whose metadata alone changed is written again
        # (its chunks keep their vectors), so searches show the new metadata.
        described = json.dumps(metadata, sort_keys=True, ensure_ascii=False) if metadata else ""
        content_hash = hashlib.blake2b(f"{title}\0{text}\0{described}".encode(), digest_size=16).hexdigest()
        if _current(state) and not self.force and state.content_hash == content_hash:
            return _Item(state, unchanged=True)
        body = f"{title}\n\n{text}" if title else text
        sections = [_title_section(title)] if title else []
        document = Document(body, format="text", title=title, sections=sections)
        if not body.strip():
            return _Item(state, skipped=Skipped(key, "no text"))
        record = DocumentRecord(
            path=key, kind="text", content_hash=content_hash, reader=READER_VERSION, format="text",
            title=title, metadata=metadata,
        )
        return _Item(state, record, self._chunk(document))

    def _chunk(self, document: Document) -> list[Chunk]:
        return chunk_document(
            document,
            self.settings,
            max_tokens=getattr(self.embedder, "max_tokens", None),
            count_tokens=getattr(self.embedder, "count_tokens", None),
        )

    # -- the run ----------------------------------------------------------------------------

    def _batch_size(self) -> int:
        # Read each time: a remote embedder lowers it when the endpoint refuses big batches.
        return max(int(getattr(self.embedder, "batch_size", 32) or 32), 1)

    def _run(self, items: Callable[[], Iterator[_Item]]) -> None:
        workers = max(int(getattr(self.embedder, "concurrency", 1) or 1), 1)
        usage = getattr(self.embedder, "usage", None)
        before = usage.copy() if isinstance(usage, Usage) else None
        handoff: queue.Queue = queue.Queue(maxsize=256)
        stop = threading.Event()

        def read_all() -> None:
            try:
                for item in items():
                    if stop.is_set():
                        return
                    handoff.put(item)
            except BaseException as exc:  # surfaced on the calling thread
                handoff.put(exc)
            finally:
                handoff.put(_DONE)

        reader = threading.Thread(target=read_all, name="semsearch-reader", daemon=True)
        reader.start()
        executor = _Workers(workers, self._embed)
        in_flight: dict[Future, list[tuple[bytes, str]]] = {}
        reading = True
        try:
            while True:
                batch_size = self._batch_size()
                # Keep the embedder busy: one batch queued beyond what its workers run.
                # Batches done but not committed yet do not count (up to a bound), so that
                # a burst of answers waiting for their commits never leaves workers idle.
                while (
                    sum(not future.done() for future in in_flight) <= workers
                    and len(in_flight) <= 2 * workers + 1
                    and (len(self._waiting) >= batch_size or (self._waiting and not reading))
                ):
                    batch = self._next_batch(batch_size)
                    in_flight[executor.submit([text for _, text in batch])] = batch
                if not (reading or in_flight or self._waiting):
                    break
                if reading and len(self._waiting) < batch_size * (workers + 1):
                    received: list[_Item] = []
                    chunks = len(self._waiting)
                    try:
                        item = handoff.get(timeout=0.05 if in_flight else None)
                        while True:
                            if item is _DONE:
                                reading = False
                                break
                            if isinstance(item, BaseException):
                                raise item
                            received.append(item)
                            chunks += len(item.chunks or ())
                            if chunks >= batch_size * (workers + 1):
                                break
                            # Take all the reader has ready: the next batches are formed
                            # (and sent) before another commit holds this thread.
                            item = handoff.get_nowait()
                    except queue.Empty:
                        pass
                    self._accept(received)
                    self._collect(in_flight, block=False)
                    if self._ready_count >= 64 or not reading:
                        self._commit([], None)
                else:
                    self._collect(in_flight, block=True)
            self._commit([], None)
        except EmbeddingError:
            # The service failed for good. Batches already sent are paid for: keep what
            # they bring back, so that the next run does not pay for them again.
            executor.close()
            self._drain(in_flight)
            raise
        finally:
            stop.set()
            executor.close()
            # Unblock the reader if it is waiting on a full queue.
            while reader.is_alive():
                try:
                    handoff.get(timeout=0.05)
                except queue.Empty:
                    pass
            if before is not None:
                self.stats.usage = usage.since(before)

    def _collect(self, in_flight: dict[Future, list[tuple[bytes, str]]], *, block: bool) -> None:
        """Commit the batches that have finished (waiting for one if `block`) in one
        transaction: a commit costs about as much for one batch as for several. Failed
        batches wait until none has succeeded; then one raises its error (`_drain` then
        commits the others)."""
        if not in_flight:
            return
        done, _ = wait(list(in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        succeeded = [future for future in done if future.exception() is None]
        if not succeeded:
            if done:
                future = next(iter(done))
                self._commit(in_flight.pop(future), future.result())
            return
        batches = [(in_flight.pop(future), future.result()) for future in succeeded]
        self._commit([pair for batch, _ in batches for pair in batch], [vector for _, vectors in batches for vector in vectors])

    def _drain(self, in_flight: dict[Future, list[tuple[bytes, str]]]) -> None:
        """Wait for the batches still running and commit those that succeed (queued ones
        were cancelled); their failures add nothing to the error already on its way."""
        for future, batch in list(in_flight.items()):
            del in_flight[future]
            if not future.cancelled() and future.exception() is None:
                self._commit(batch, future.result())

    def _embed(self, texts: list[str]) -> list[np.ndarray | None]:
        """Vectors for `texts`; None for a text the model refuses even alone."""
        try:
            matrix = self.embedder.embed_documents(texts)
        except RequestTooLargeError as exc:
            if exc.vectors is not None and len(exc.vectors) == len(texts):
                return list(exc.vectors)  # the others were embedded: keep them, send nothing again
            if len(texts) == 1:
                return [None]
            return [vector for text in texts for vector in self._embed([text])]
        import numpy as np

        try:
            matrix = np.asarray(matrix, dtype=np.float32)
        except (TypeError, ValueError):
            raise EmbeddingError("The model returned something other than a matrix of numbers.") from None
        if matrix.ndim != 2 or len(matrix) != len(texts):
            raise EmbeddingError(f"The model returned an array of shape {matrix.shape} for {len(texts)} texts.")
        if not np.isfinite(matrix).all():
            # Stored, such a vector would never be found, and spoil nothing visibly.
            raise EmbeddingError("The model returned vectors holding NaN or infinite values.")
        return list(matrix)

    def _accept(self, items: list[_Item]) -> None:
        """Take what the reader handed over: what to embed, what waits for it."""
        if not self.force:
            # Under --force every text is embedded again, once per run. One lookup for all
            # the items, as a query per document costs more than the rest of taking it.
            unknown = {
                digest for item in items for digest in item.hashes
                if digest not in self._vector_ids and digest not in self._waiting and digest not in self._sent
            }
            if unknown:
                self._vector_ids.update(self.store.vector_ids(unknown))
        for item in items:
            if item.skipped or item.unchanged:
                if item.skipped:
                    self.stats.skipped.append(item.skipped)
                    if item.state is not None and item.skipped.size is not None:
                        # The file is no longer text (not merely unreadable for now): drop its old version.
                        self._stale.append(item.state.id)
                else:
                    self.stats.unchanged += 1
                    if item.touch:
                        self._touches.append((item.state.id, *item.touch))
                self._done += 1
                continue
            missing = set()
            for chunk, digest in zip(item.chunks, item.hashes):
                if digest in self._vector_ids:
                    continue
                missing.add(digest)
                if digest not in self._sent:
                    self._waiting.setdefault(digest, chunk.embed_text)
            self._pending.append(_Pending(item, item.hashes, missing))
            if not missing:
                self._ready_count += 1

    def _next_batch(self, size: int) -> list[tuple[bytes, str]]:
        batch = []
        for digest in list(self._waiting)[:size]:
            batch.append((digest, self._waiting.pop(digest)))
            self._sent.add(digest)
        return batch

    def _commit(self, batch: list[tuple[bytes, str]], vectors: list[np.ndarray | None] | None) -> None:
        """One transaction: the batch's vectors and every document they completed."""
        import numpy as np

        good = [(digest, vector) for (digest, _), vector in zip(batch, vectors or []) if vector is not None]
        self._failed.update(digest for (digest, _), vector in zip(batch, vectors or []) if vector is None)
        if good:
            self.check_dimensions(len(good[0][1]))
        finished = {digest for digest, _ in good} | self._failed
        for pending in self._pending:
            pending.missing -= finished
        ready = [pending for pending in self._pending if not pending.missing]
        if not (good or ready or self._touches):
            return
        cache = self.cache() if ready else None
        written: list[_Pending] = []
        rejected: list[_Pending] = []
        for pending in ready:
            (rejected if any(digest in self._failed for digest in pending.hashes) else written).append(pending)
        with self.store.transaction():
            if good:
                ids = self.store.add_vectors([d for d, _ in good], np.stack([v for _, v in good]), replace=self.force)
                self._vector_ids.update(zip((d for d, _ in good), ids))
            removed_ids, added_ids = self.store.replace_documents([
                (pending.item.record, pending.item.chunks, [self._vector_ids[digest] for digest in pending.hashes])
                for pending in written
            ])
            self.store.touch_documents(self._touches)
        for pending in rejected:
            self.stats.skipped.append(Skipped(pending.item.record.path, "the model rejected a chunk even on its own"))
        changed = sum(1 for pending in written if pending.item.state)
        self.stats.changed += changed
        self.stats.new += len(written) - changed
        self.stats.chunks_embedded += len(good)
        self.stats.chunks_added += len(added_ids)
        self.stats.chunks_removed += len(removed_ids)
        self._done += len(ready)
        self._touches.clear()
        self._pending = [pending for pending in self._pending if pending.missing]
        self._ready_count = 0
        if cache is not None:
            cache.remove(removed_ids)
            for ids, matrix in self.store.chunk_vectors(cache.dimensions, np.asarray(added_ids, dtype=np.int64)):
                cache.add(ids, matrix)
            self.committed()
        if self.progress:
            self.progress(Progress(self._done, self._total, self.stats.chunks_embedded))

    def _finish(self) -> None:
        # A pipeline may run several walks (folders with different patterns): one total.
        self.stats.chunks_reused = max(self.stats.chunks_added - self.stats.chunks_embedded, 0)
        self.stats.seconds = time.monotonic() - self._started


def _title_section(title: str):
    from .loaders import Section

    return Section(0, 1, title)
