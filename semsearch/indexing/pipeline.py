"""Adding documents to an index: read, chunk, embed what is new, commit batch by batch.

A reader thread reads and chunks files while embedding runs (the local model and HTTP
calls release the GIL), and the calling thread alone writes, through the storage's writer.
Vectors are keyed by the hash of the embedded text, so a chunk embedded once is never paid
for again: not when its file changes around it, not when the file moves, not after a killed
run. Each embedding batch is committed in one transaction together with the documents it
completed.
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


@dataclass
class _Pending:
    item: Item
    hashes: list[bytes]
    missing: set[bytes]


_DONE = object()


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

# Seconds finished embedding batches may wait for others to share their commit; a killed run
# loses at most this much of the service's answers.
COMMIT_EVERY = 0.25


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
    ) -> None:
        self.catalogue = catalogue
        self.writer = writer
        self.embedder = embedder
        self.reader = Reader.for_embedder(embedder, settings, force=force)
        self.force = force
        self.progress = progress
        self.exclusions = exclusions
        self.stats = IndexStats()
        self._started = time.monotonic()
        self._stored: set[bytes] = set()  # text hashes known to have a stored vector
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
        return self.remove_gone()

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
        self._run(lambda: (self.reader.text(key, text, metadata, known.get(key)) for key, text, metadata in records), inline=True)
        self._finish()
        return self.stats

    # -- the run ----------------------------------------------------------------------------

    def _batch_size(self) -> int:
        # Read each time: a remote embedder lowers it when the endpoint refuses big batches.
        return max(int(self.embedder.batch_size or 32), 1)

    def _run(self, items: Callable[[], Iterator[Item]], *, inline: bool = False) -> None:
        """Embed and commit `items`, read in a thread of their own (or, `inline`, in this one)."""
        workers = max(int(self.embedder.concurrency or 1), 1)
        usage = self.embedder.usage
        before = usage.copy() if usage is not None else None
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
                    received: list[Item] = []
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
                            chunks += len(item.chunks)
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
                    shared.get(timeout=0.05)
                except queue.Empty:
                    pass
            if usage is not None and before is not None:
                self.stats.usage = usage.since(before)

    def _collect(self, in_flight: dict[Future, list[tuple[bytes, str]]], *, block: bool) -> None:
        """Commit the batches that have finished (waiting for one if `block`) in one
        transaction. While others are still running, finished ones wait up to COMMIT_EVERY
        for them: each commit has its own cost (the keyword index's segments, the vector
        cache, the database's own work), and a fast service answers many batches a second.
        Failed batches wait until none has succeeded; then one raises its error (`_drain`
        then commits the others)."""
        if not in_flight:
            return
        running = [future for future in in_flight if not future.done()]
        if block and running:
            waiting = len(running) < len(in_flight)  # answers are here, waiting for their commit
            wait(running, timeout=max(self._commit_due - time.monotonic(), 0) if waiting else None, return_when=FIRST_COMPLETED)
        done = [future for future in in_flight if future.done()]
        succeeded = [future for future in done if future.exception() is None]
        if not succeeded:
            if done:
                self._commit(in_flight.pop(done[0]), done[0].result())
            return
        if time.monotonic() < self._commit_due and len(done) < len(in_flight):
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
        """Take what the reader handed over: what to embed, what waits for it."""
        if not self.force:
            # Under force every text is embedded again, once per run. One lookup for all
            # the items, as a query per document costs more than the rest of taking it.
            unknown = {
                digest for item in items for digest, _ in item.texts
                if digest not in self._stored and digest not in self._waiting and digest not in self._sent
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
            missing = set()
            for digest, text in item.texts:
                if digest in self._stored:
                    continue
                missing.add(digest)
                if digest not in self._sent:
                    self._waiting.setdefault(digest, text)
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
        good = [(digest, vector) for (digest, _), vector in zip(batch, vectors or []) if vector is not None]
        self._failed.update(digest for (digest, _), vector in zip(batch, vectors or []) if vector is None)
        finished = {digest for digest, _ in good} | self._failed
        for pending in self._pending:
            pending.missing -= finished
        ready = [pending for pending in self._pending if not pending.missing]
        if not (good or ready or self._touches):
            return
        written: list[_Pending] = []
        rejected: list[_Pending] = []
        for pending in ready:
            (rejected if any(digest in self._failed for digest in pending.hashes) else written).append(pending)
        committed = self.writer.commit(Commit(
            vectors=good,
            documents=[DocumentWrite(pending.item.record, pending.item.chunks, pending.hashes) for pending in written if pending.item.record],
            touches=self._touches,
            replace_vectors=self.force,
        ))
        self._stored.update(digest for digest, _ in good)
        for pending in rejected:
            path = pending.item.record.path if pending.item.record else "?"
            self.stats.skipped.append(Skipped(path, "the model rejected a chunk even on its own"))
        changed = sum(1 for pending in written if pending.item.state)
        self.stats.changed += changed
        self.stats.new += len(written) - changed
        self.stats.chunks_embedded += len(good)
        self.stats.chunks_added += committed.chunks_added
        self.stats.chunks_removed += committed.chunks_removed
        self._done += len(ready)
        self._touches = []
        self._pending = [pending for pending in self._pending if pending.missing]
        self._ready_count = 0
        if self.progress:
            self.progress(Progress(self._done, self._total, self.stats.chunks_embedded))

    def progress_at(self, step: str) -> Progress:
        """Where the run is, at a step after its documents (see `Progress.step`)."""
        return Progress(self._done, self._total, self.stats.chunks_embedded, step)

    def _finish(self) -> None:
        # A pipeline may run several walks (folders with different patterns): one total.
        self.stats.chunks_reused = max(self.stats.chunks_added - self.stats.chunks_embedded, 0)
        self.stats.seconds = time.monotonic() - self._started
