"""Adding documents to an index: read, chunk, write at once, embed behind.

A reader thread reads and chunks files while embedding runs (the local model and HTTP
calls release the GIL), and the calling thread alone writes, through the storage's writer.
Documents and their chunks are committed as soon as they are read, so keyword search finds
them within moments; a text not embedded yet waits in the storage's backlog, and its
vector takes its place when it comes. Vectors are keyed by the hash of the embedded text,
so a chunk embedded once is never paid for again: not when its file changes around it, not
when the file moves, not after a killed run. A run embeds the whole backlog, the texts of
earlier (interrupted) runs included, the most recently modified documents' first.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..embedding.base import BaseEmbedder
from ..errors import EmbeddingError, RequestTooLargeError
from ..readers.walk import DEFAULT_MAX_FILE_SIZE, FileEntry, Skipped
from ..results import IndexStats, Progress, ProgressCallback
from ..settings import ChunkSettings
from ..storage.base import Catalogue, Commit, DocumentState, DocumentWrite, Writer
from . import plan as planning
from . import processes
from .reading import Item, Reader
from .workers import Workers

if TYPE_CHECKING:
    import numpy as np


_DONE = object()


@dataclass
class _Read:
    """A document read, waiting for its commit: written with its vectors when they come
    within COMMIT_EVERY of its reading (no backlog rows to write and fill again), else
    without them."""

    write: DocumentWrite
    texts: list[bytes]  # the hashes of all of it that is embedded
    at: float


class _Inline:
    """The reader's side of the handoff, run in the calling thread: for texts already in
    memory there is nothing to wait for that a thread could overlap, and two threads busy
    in Python (one reading, one in SQLite's many short calls) wait on each other for the
    interpreter lock."""

    def __init__(self, items: Iterator[Item]) -> None:
        self._items = items

    def get(self, timeout: float | None = None) -> Any:
        return next(self._items, _DONE)

    get_nowait = get


# Seconds between commits: of documents read (what keyword search finds that soon after they
# are read), and of finished embedding batches waiting for others to share their commit (a
# killed run loses at most this much of the service's answers).
COMMIT_EVERY = 0.25
# Documents read wait for a commit at most this many (or their chunks this many).
COMMIT_DOCUMENTS = 256
COMMIT_CHUNKS = 8192
# Texts to embed kept in memory; past that many they wait in the backlog only, and are read
# back from there.
IN_MEMORY = 8192
# Seconds of a run that go to reading alone when the model computes on this machine's cores
# (`uses_cores`): it starts after them, or once every file is read or IN_MEMORY texts wait, so
# that the keyword side of a folder is complete within seconds; a long read shares the cores
# after that. A model served elsewhere starts at once: it takes nothing from reading.
READ_FIRST = 10.0


class Pipeline:
    """One indexing run: what the catalogue holds, the writer to change it, the embedder."""

    def __init__(
        self,
        catalogue: Catalogue,
        writer: Writer,
        embedder: BaseEmbedder,
        settings: ChunkSettings,
        *,
        force: bool = False,
        progress: ProgressCallback | None = None,
        exclusions: tuple[Path | None, tuple[str, ...]] = (None, ()),
        backlog_seconds: float | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.writer = writer
        self.embedder = embedder
        self.reader = Reader.for_embedder(embedder, settings, force=force)
        self.force = force
        self.progress = progress
        self.exclusions = exclusions
        # At most this long embedding texts from the storage's backlog (None: all of them).
        self.backlog_seconds = backlog_seconds
        self._backlog_since: float | None = None
        self._usage_before: Any = None
        self.stats = IndexStats()
        self._started = time.monotonic()
        self._stored: set[bytes] = set()  # text hashes known to have a stored vector
        self._ready: list[_Read] = []  # read, for a commit soon
        self._ready_chunks = 0
        self._ready_changed: set[str] = set()  # of them, new versions of indexed documents
        self._written: dict[str, bool] = {}  # path -> whether it was a change, of the documents written
        self._waiting: dict[bytes, str] = {}  # hash -> text, to embed, not yet sent
        self._queued: set[bytes] = set()  # hashes this run embeds (waiting, sent or done)
        self._unsettled: set[bytes] = set()  # sent, and their vectors not committed yet
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
        self._commit_due = 0.0

    # -- what to read -----------------------------------------------------------------------

    def add_folders(
        self,
        roots: list[Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_file_size: int | None | str = "remembered",
        also: Sequence[Path] = (),
    ) -> IndexStats:
        """Index the files under `roots` (and the indexed folders `also`), and remove what
        is gone from them.

        `include` and `exclude` (when either is given) and `max_file_size` (unless
        "remembered") are remembered for `roots`; each folder is walked with the patterns
        and size limit remembered for it (20 MB unless one was given).
        """
        self.writer.add_roots(str(root) for root in roots)
        if include or exclude:
            for root in roots:
                self.writer.set_root_patterns(str(root), include, exclude)
        if max_file_size != "remembered":
            for root in roots:
                self.writer.set_root_size_limit(str(root), max_file_size if isinstance(max_file_size, int) else None)
        remembered, limits = self.catalogue.root_patterns(), self.catalogue.root_size_limits()
        groups: dict[tuple[tuple[str, ...], tuple[str, ...], int | None], list[Path]] = {}
        for root in [*roots, *also]:
            limit = limits.get(str(root), DEFAULT_MAX_FILE_SIZE)
            groups.setdefault((*remembered.get(str(root), ((), ())), limit), []).append(root)
        for (included, excluded, limit), group in groups.items():
            self.add_files(group, max_file_size=limit, include=included, exclude=excluded)
        self.remove_gone()
        # Last, so that every folder is searchable by keywords first, and the texts of
        # documents that went or changed are out of the backlog before it is embedded.
        return self.embed_backlog()

    def add_files(
        self, roots: list[Path], *, max_file_size: int | None, include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> IndexStats:
        """Index files under `roots`; what the walk did not find is noted for `remove_gone`.

        `max_file_size`, `include` and `exclude` are passed to `walk.walk`.
        """
        paths = [str(root) for root in roots]
        self._walked.update(paths)
        found = planning.plan(
            self.catalogue, roots, max_file_size=max_file_size, include=include, exclude=exclude,
            force=self.force, exclusions=self.exclusions,
        )
        self.stats.ignored += found.ignored
        self.stats.skipped += found.skipped
        self.stats.unchanged += found.unchanged
        self._found |= found.found
        self._total += len(found.todo)
        self._run(self._reading(found.todo))
        self._missing.update(found.missing)
        self.writer.replace_skipped(paths, self.stats.skipped, planning.READER_VERSION)
        self._finish()
        return self.stats

    def _reading(self, todo: list[tuple[FileEntry, DocumentState | None]]) -> Callable[[], Iterator[Item]]:
        """The items of `todo`, read in this process or, for many files, in others."""
        counter = self.embedder.portable_count_tokens() if self.reader.count_tokens and self.reader.max_tokens else None
        travels = counter is not None or not (self.reader.count_tokens and self.reader.max_tokens)
        count = processes.process_count(len(todo), travels)
        if count:
            return lambda: processes.read_in_processes(todo, self.reader, counter, count)
        return lambda: (self.reader.file(entry, state) for entry, state in todo)

    def remove_gone(self) -> IndexStats:
        """After the walks of a run: remove the documents no walk found (and those no longer
        readable as text). Only complete walks may conclude a file is gone, and a file one
        folder's patterns leave out may be another's to index."""
        # A file left out by this run's patterns may lie under another indexed folder, not
        # walked now, whose own patterns take it: while it exists, that folder's run decides.
        others = [root.rstrip("/") + "/" for root in self.catalogue.roots() if root not in self._walked]
        gone = [
            document
            for path, document in self._missing.items()
            if path not in self._found and not (any(path.startswith(other) for other in others) and os.path.exists(path))
        ] + self._stale
        self._missing, self._stale = {}, []
        if gone:
            if self.progress:
                self.progress(self.progress_at(f"removing {len(gone):,} documents that are gone"))
            self.stats.chunks_removed += self.writer.remove_documents(gone)
            self.stats.removed += len(gone)
        self._finish()
        return self.stats

    def add_texts(self, records: Iterable[tuple[str, str, dict[str, Any] | None]]) -> IndexStats:
        """Index (id, text, metadata) records that are not files."""
        records = list(records)
        self._total = len(records)
        known = self.catalogue.document_states_at(key for key, _, _ in records)
        self._run(
            lambda: (self.reader.text(key, text, metadata, known.get(key)) for key, text, metadata in records), inline=True, backlog=True
        )
        self._finish()
        return self.stats

    def embed_backlog(self) -> IndexStats:
        """Embed texts waiting in the storage's backlog (for at most `backlog_seconds`)."""
        self._run(lambda: iter(()), inline=True, backlog=True)
        self._finish()
        return self.stats

    # -- the run ----------------------------------------------------------------------------

    def _batch_size(self) -> int:
        # Read each time: a remote embedder lowers it when the endpoint refuses big batches.
        return max(int(self.embedder.batch_size or 32), 1)

    def _run(self, items: Callable[[], Iterator[Item]], *, inline: bool = False, backlog: bool = False) -> None:
        """Commit `items`, read in a thread of their own (or, `inline`, in this one), and embed
        their new texts (and, with `backlog`, the rest of the storage's backlog)."""
        workers = max(int(self.embedder.concurrency or 1), 1)
        usage = self.embedder.usage
        # What the whole pipeline spent: a run of several walks, and the backlog, is one.
        if self._usage_before is None and usage is not None:
            self._usage_before = usage.copy()
        before = self._usage_before
        shared: queue.Queue = queue.Queue(maxsize=256)
        handoff: queue.Queue | _Inline = _Inline(items()) if inline else shared
        stop = threading.Event()

        def read_all() -> None:
            try:
                for item in items():
                    if stop.is_set():
                        return
                    shared.put(item)
            except BaseException as exc:  # surfaced on the calling thread
                shared.put(exc)
            finally:
                shared.put(_DONE)

        reader = threading.Thread(target=read_all, name="semsearch-reader", daemon=True)
        if not inline:
            reader.start()
        executor = Workers(workers, self._embed)
        in_flight: dict[Future, list[tuple[bytes, str]]] = {}
        reading = True
        try:
            while True:
                batch_size = self._batch_size()
                self._send(executor, in_flight, workers, batch_size, reading)
                if not (reading or in_flight or self._waiting):
                    self._commit([], None, flush=True)  # the last documents read
                    if backlog and self._refill(batch_size * (workers + 1) * 4):
                        continue
                    break
                # Under force the texts to embed again are all held in memory: reading waits.
                if reading and (not self.force or len(self._waiting) < IN_MEMORY):
                    idle = not (in_flight or self._ready or self._touches)
                    received: list[Item] = []
                    chunks = 0
                    try:
                        item = handoff.get(timeout=None if idle else 0.05)
                        while True:
                            if item is _DONE:
                                reading = False
                                break
                            if isinstance(item, BaseException):
                                raise item
                            received.append(item)
                            chunks += len(item.chunks)
                            if chunks >= COMMIT_CHUNKS or len(received) >= COMMIT_DOCUMENTS:
                                break
                            # Take all the reader has ready: the next batches are formed
                            # (and sent) before another commit holds this thread.
                            item = handoff.get_nowait()
                    except queue.Empty:
                        pass
                    self._accept(received)
                    if not reading:
                        self._commit([], None, flush=True)  # every document read is written before more is embedded
                    self._collect(in_flight, block=False)
                else:
                    self._collect(in_flight, block=True)
            self._commit([], None, flush=True)
        except EmbeddingError:
            # The service failed for good. Batches already sent are paid for: keep what
            # they bring back, so that the next run does not pay for them again, and write
            # the documents read (their texts wait in the backlog for the next run).
            executor.close()
            self._drain(in_flight)
            self._commit([], None, flush=True)
            raise
        finally:
            stop.set()
            executor.close()
            # Unblock the reader if it is waiting on a full queue.
            while reader.is_alive():
                try:
                    shared.get(timeout=0.05)
                except queue.Empty:
                    pass
            if usage is not None and before is not None:
                self.stats.usage = usage.since(before)

    def _send(self, executor: Workers, in_flight: dict[Future, list[tuple[bytes, str]]], workers: int, batch_size: int, reading: bool) -> None:
        """Keep the embedder busy: one batch queued beyond what its workers run. Batches done
        but not committed yet do not count (up to a bound), so that a burst of answers
        waiting for their commits never leaves workers idle. (The backlog of earlier runs
        waits until every file is read: a file read later may replace texts waiting there.)"""
        if self.embedder.uses_cores and reading and len(self._waiting) < IN_MEMORY and time.monotonic() - self._started < READ_FIRST:
            return
        while sum(not future.done() for future in in_flight) <= workers and len(in_flight) <= 2 * workers + 1:
            if not (len(self._waiting) >= batch_size or (self._waiting and not reading)):
                return
            batch = self._next_batch(batch_size)
            in_flight[executor.submit([text for _, text in batch])] = batch

    def _refill(self, count: int) -> bool:
        """Take up to `count` texts to embed from the backlog (the texts earlier runs left,
        and this run's past IN_MEMORY); False when it has none for this run."""
        now = time.monotonic()
        self._backlog_since = self._backlog_since or now
        if self.backlog_seconds is not None and now - self._backlog_since >= self.backlog_seconds:
            return False  # the rest waits for the next run
        found = self.writer.waiting_texts(count, self._unsettled | self._failed)
        for digest, text in found:
            self._waiting[digest] = text
            self._queued.add(digest)
        return bool(found)

    def _collect(self, in_flight: dict[Future, list[tuple[bytes, str]]], *, block: bool) -> None:
        """Commit the batches that have finished (waiting for one if `block`) and the
        documents read, in one transaction. While others are still running, finished ones
        wait up to COMMIT_EVERY for them: each commit has its own cost (the keyword index's
        segments, the vector cache, the database's own work), and a fast service answers
        many batches a second. Failed batches wait until none has succeeded; then one raises
        its error (`_drain` then commits the others)."""
        running = [future for future in in_flight if not future.done()]
        if block and running:
            waiting = len(running) < len(in_flight) or self._ready or self._touches  # work waits for its commit
            wait(running, timeout=max(self._commit_due - time.monotonic(), 0) if waiting else None, return_when=FIRST_COMPLETED)
        done = [future for future in in_flight if future.done()]
        succeeded = [future for future in done if future.exception() is None]
        if done and not succeeded:
            self._commit(in_flight.pop(done[0]), done[0].result())
            return
        if not (succeeded or self._ready or self._touches):
            return
        full = len(self._ready) >= COMMIT_DOCUMENTS or self._ready_chunks >= COMMIT_CHUNKS
        if time.monotonic() < self._commit_due and not full and (len(done) < len(in_flight) or not succeeded):
            return
        batches = [(in_flight.pop(future), future.result()) for future in succeeded]
        self._commit([pair for batch, _ in batches for pair in batch], [vector for _, vectors in batches for vector in vectors])
        self._commit_due = time.monotonic() + COMMIT_EVERY

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

    def _accept(self, items: list[Item]) -> None:
        """Take what the reader handed over: the documents to write, the texts to embed."""
        if not self.force:
            # Under force every text is embedded again, once per run. One lookup for all
            # the items, as a query per document costs more than the rest of taking it.
            unknown = {
                digest for item in items for digest, _ in item.texts if digest not in self._stored and digest not in self._queued
            }
            if unknown:
                self._stored.update(self.writer.stored_vectors(unknown))
        for item in items:
            if item.skipped or item.unchanged:
                if item.skipped:
                    self.stats.skipped.append(item.skipped)
                    if item.state is not None and item.skipped.size is not None:
                        # The file is no longer text (not merely unreadable for now): drop its old version.
                        self._stale.append(item.state.id)
                else:
                    self.stats.unchanged += 1
                    if item.touch and item.state is not None:
                        self._touches.append((item.state.id, *item.touch))
                self._done += 1
                continue
            for digest, text in item.texts:
                if digest in self._queued or (digest in self._stored and not self.force):
                    continue
                if len(self._waiting) >= IN_MEMORY and not self.force:
                    continue  # waits in the backlog with its document, and is read back from there
                self._waiting[digest] = text
                self._queued.add(digest)
            if item.record:
                self._ready.append(_Read(DocumentWrite(item.record, item.chunks, item.hashes), [digest for digest, _ in item.texts], time.monotonic()))
                self._ready_chunks += len(item.chunks)
                if item.state is not None:
                    self._ready_changed.add(item.record.path)

    def _next_batch(self, size: int) -> list[tuple[bytes, str]]:
        batch = []
        for digest in list(self._waiting)[:size]:
            batch.append((digest, self._waiting.pop(digest)))
            self._unsettled.add(digest)
        return batch

    def _commit(self, batch: list[tuple[bytes, str]], vectors: list[np.ndarray | None] | None, *, flush: bool = False) -> None:
        """One transaction: the batch's vectors and the documents read that are due: those
        whose vectors are all there now, those read COMMIT_EVERY ago or more, or (`flush`) all."""
        good = [(digest, vector) for (digest, _), vector in zip(batch, vectors or []) if vector is not None]
        refused = [digest for (digest, _), vector in zip(batch, vectors or []) if vector is None]
        self._failed.update(refused)
        arrived = {digest for digest, _ in good}
        oldest = time.monotonic() - COMMIT_EVERY
        due: list[_Read] = []
        held: list[_Read] = []
        for read in self._ready:
            ready = flush or read.at <= oldest or all(digest in self._stored or digest in arrived for digest in read.texts)
            (due if ready else held).append(read)
        documents = [read.write for read in due]
        self._ready, self._ready_chunks = held, sum(len(read.write.chunks) for read in held)
        changed = {write.record.path for write in documents} & self._ready_changed
        self._ready_changed -= changed
        if not (good or documents or self._touches or refused):
            return
        committed = self.writer.commit(Commit(vectors=good, documents=documents, touches=self._touches, replace_vectors=self.force))
        self._stored.update(digest for digest, _ in good)
        self._unsettled.difference_update(digest for digest, _ in batch)
        self.stats.changed += len(changed)
        self.stats.new += len(documents) - len(changed)
        self._written.update((write.record.path, write.record.path in changed) for write in documents)
        if refused:
            for path in self.writer.reject(refused):
                self.stats.skipped.append(Skipped(path, "the model rejected a chunk even on its own"))
                if path in self._written:  # written by this run: skipped rather than new or changed
                    if self._written.pop(path):
                        self.stats.changed -= 1
                    else:
                        self.stats.new -= 1
        self.stats.chunks_embedded += len(good)
        self.stats.chunks_added += committed.chunks_added
        self.stats.chunks_removed += committed.chunks_removed
        self._done += len(documents)
        self._touches = []
        if self.progress:
            self.progress(Progress(self._done, self._total, self.stats.chunks_embedded, waiting=self.writer.waiting_count()))

    def progress_at(self, step: str) -> Progress:
        """Where the run is, at a step after its documents (see `Progress.step`)."""
        return Progress(self._done, self._total, self.stats.chunks_embedded, step, self.writer.waiting_count())

    def _finish(self) -> None:
        # A pipeline may run several walks (folders with different patterns): one total.
        self.stats.chunks_reused = max(self.stats.chunks_added - self.stats.chunks_embedded, 0)
        self.stats.seconds = time.monotonic() - self._started
        self.stats.waiting = self.writer.waiting_count()
