"""`Index`: the library's entry point, a thin facade over storage, indexing and search."""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config, embedding, opening, settings
from .embedding.base import BaseEmbedder, conform
from .errors import SemsearchError
from .indexing.records import checked_records
from .results import (
    CheckReport,
    DocumentLines,
    IndexStats,
    IndexStatus,
    Passage,
    ProgressCallback,
    SearchResults,
    count_reasons,
)
from .search import query as query_parts
from .search.filters import DateLike, Filters
from .search.ranking import Ranking, for_query, rank
from .search.rerank import DEFAULT_DEPTH, Reranker, rerank_results
from .settings import ChunkSettings, IndexSettings, VectorSettings
from .storage import open_backend
from .text.checks import check_path
from .text.keywords import query_terms

if TYPE_CHECKING:
    import numpy as np

    from .embedding.base import Embedder
    from .indexing.pipeline import Pipeline
    from .indexing.watch import Notice, Update
    from .storage.base import Backend


def _one_at_a_time(method: Callable) -> Callable:
    """Run `method` holding the index's lock. An `Index` shares one connection, one vector
    cache and the caches of words and counts between its calls: threads sharing it take
    turns (re-entrant, so a progress callback may search)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            if self._closed and method.__name__ != "close":
                raise SemsearchError(f"The index at {self.path} was closed: open it again with Index.open.", code="closed")
            return method(self, *args, **kwargs)

    return locked


def _reading(method: Callable) -> Callable:
    """A read: runs beside other reads and writes in other threads when the storage allows
    it (each thread its own database connection, the vector cache taking turns inside),
    seeing the last committed state; takes turns with the index's other calls otherwise."""

    @functools.wraps(method)
    def read(self, *args, **kwargs):
        if not self._backend.concurrent_reads:
            with self._lock:
                return checked(self, *args, **kwargs)
        return checked(self, *args, **kwargs)

    def checked(self, *args, **kwargs):
        if self._closed:
            raise SemsearchError(f"The index at {self.path} was closed: open it again with Index.open.", code="closed")
        return method(self, *args, **kwargs)

    return read


class Index:
    """A semsearch index. Open one with `Index.open(path)`; use it as a context manager."""

    def __init__(self, backend: Backend, embedder: BaseEmbedder | None, remote_options: dict[str, Any]) -> None:
        self._backend = backend
        self._embedder = embedder
        self._reranker: Reranker | None = None
        self._remote_options = remote_options
        self._lock = threading.RLock()
        # Queries are embedded one at a time unless the embedder says it can take several.
        self._embedding = threading.Lock()
        self._closed = False
        self._warm = False
        # Emptied by `rebuild` and not indexed since: the next `add` takes every folder.
        self._rebuilt = False
        self.path: Path | str = Path(backend.location) if backend.kind == "local" else backend.location
        stored = IndexSettings.from_stored(backend.settings())
        self.model: str = stored.model
        self.chunking: ChunkSettings = stored.chunking
        self.vector_settings: VectorSettings = stored.vectors
        self.created = False
        self.model_reason: str | None = None
        # With rebuild=True: how many add_texts records the rebuild dropped.
        self.dropped_records = 0
        self.lock_timeout = 10.0

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike | None = None,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        create: bool = True,
        chunking: ChunkSettings | None = None,
        rebuild: bool = False,
        lock_timeout: float = 10.0,
        vectors: VectorSettings | None = None,
        reranker: Reranker | None = None,
        **remote_options: Any,
    ) -> Index:
        """Open the index at `path` (default: SEMSEARCH_INDEX or the user's default index).

        Args:
            model: the embedding model for a new index ("local" or a remote model id); for an
                existing index it must match the one it was built with.
            embedder: any object following the `Embedder` protocol, used instead of `model`.
            create: create the index when missing (otherwise raise IndexNotFoundError).
            chunking: chunk settings for a new index; must match for an existing one.
            rebuild: empty an existing index and start again with `model` and `chunking`
                (its folders are kept, so `add()` without paths re-indexes them). The new
                model is called once first, so a wrong token or model id fails before
                anything is deleted.
            lock_timeout: how long a write waits for another process's write to finish
                before raising IndexLockedError.
            vectors: the vector index's layout settings (exact up to how many vectors,
                SQ8 compression, recall target); stored with the index, and the vector
                cache is rebuilt when they change.
            reranker: the rerank model for `search(rerank=...)`, any object with `model_id`
                and `rerank(query, documents) -> scores`; default the endpoint's (see
                `RemoteReranker`). Given, searches rerank unless told not to.
            remote_options: base_url, api_key, rps, burst, ... for a remote model (and the
                reranker).

        Raises:
            IndexNotFoundError, ModelMismatchError, StorageError, EmbeddingError.
        """
        if remote_options:
            embedding.check_remote_options(remote_options)
        conformed = conform(embedder) if embedder is not None else None
        location = path if path is not None else config.default_index_path()
        check_path(location, "The index location")
        backend = open_backend(location, create=create)
        fresh = not backend.settings().get("model")
        try:
            setup = opening.set_up(
                backend, model, conformed, chunking, rebuild=rebuild, timeout=lock_timeout,
                make=lambda model_id: conform(embedding.make_embedder(model_id, **remote_options)),
            )
            index = cls(backend, setup.embedder, remote_options)
            index.lock_timeout = lock_timeout
            if vectors is not None and vectors != index.vector_settings:
                with backend.writer(lock_timeout) as writer:
                    writer.set_settings({"vectors": json.dumps(vectors.to_dict())})
                index.vector_settings = vectors
        except BaseException:
            opening.abandon(backend, fresh)
            raise
        index.created, index.model_reason, index.dropped_records = setup.created, setup.reason, setup.dropped
        index._reranker = reranker
        index._rebuilt = rebuild
        return index

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @_one_at_a_time
    def close(self) -> None:
        """Release the storage. The index stays."""
        if not self._closed:
            self._backend.close()
            self._closed = True

    @property
    def dimensions(self) -> int | None:
        """The size of the index's vectors, once known."""
        return self._backend.dimensions()

    @property
    def embedder(self) -> BaseEmbedder:
        """The index's embedding model, created on first use."""
        if self._embedder is None:
            with self._embedding:
                if self._embedder is None:
                    self._embedder = conform(embedding.make_embedder(self.model, **self._remote_options))
        return self._embedder

    @property
    def reranker(self) -> Reranker:
        """The rerank model searches use with `rerank=True`: the one given to `open`, else
        the endpoint's (`SEMSEARCH_RERANK_MODEL`, else the first it lists), made on first use."""
        if self._reranker is None:
            from .embedding.remote.rerank import RemoteReranker

            shared = ("base_url", "api_key", "rps", "burst", "max_retries", "timeout", "backoff")
            self._reranker = RemoteReranker(**{key: value for key, value in self._remote_options.items() if key in shared})
        return self._reranker

    # -- writing ----------------------------------------------------------------------------

    @_one_at_a_time
    def add(
        self,
        paths: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
        *,
        force: bool = False,
        progress: ProgressCallback | None = None,
        max_file_size: int | None | str = "remembered",
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        backlog_seconds: float | None = None,
    ) -> IndexStats:
        """Index the files in `paths` (folders or files); re-runs only embed what changed.

        Without `paths`, every folder already in the index is brought up to date. Files
        indexed earlier under these folders that are gone (or now ignored) are removed.
        `force` re-embeds everything. `.gitignore` and `.semsearchignore` files are honoured;
        `include` and `exclude` are gitignore-style patterns relative to each folder (only
        files matching an `include`; nothing matching an `exclude`). They are remembered
        for these folders: later updates apply them until other patterns are given. Files
        larger than `max_file_size` bytes are skipped (None: no limit); a limit given is
        remembered for these folders too, and "remembered" (the default) applies the one
        each folder was last indexed with, else 20 MB. Documents are written (and searchable
        by keywords) as soon as they are read; their vectors follow, and so do those of texts
        an earlier run left waiting, for at most `backlog_seconds` (None: all of them). Raises
        SemsearchError for a path that does not exist, EmbeddingError when the model fails
        (what was committed before stays).
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        for given in paths or ():
            check_path(given)
        missing: list[str] = []
        also: list[str] = []
        if not paths:
            known = self._backend.roots()
            if not known:
                raise SemsearchError("The index has no folders yet: name the folders to index.", code="no_folders")
            # A folder gone from an update of them all (an unmounted drive, a moved folder)
            # keeps its documents; the others are brought up to date all the same.
            paths = [root for root in known if os.path.lexists(root)]
            missing = [root for root in known if root not in paths]
        elif self._rebuilt:
            # A rebuild emptied every folder: indexing only those named would leave the
            # others listed but empty.
            from .readers.walk import resolve_roots

            named = {str(root) for root in resolve_roots(list(paths))}
            also = [root for root in self._backend.roots() if root not in named and os.path.lexists(root)]
            missing = [root for root in self._backend.roots() if root not in named and not os.path.lexists(root)]
        if not (max_file_size is None or max_file_size == "remembered" or (isinstance(max_file_size, int) and max_file_size >= 0)):
            raise SemsearchError(f'max_file_size must be a number of bytes, None (no limit) or "remembered", not {max_file_size!r}.')
        from .readers.walk import resolve_roots

        roots = resolve_roots(list(paths))
        everything = {str(root) for root in roots} | set(also) >= set(self._backend.roots())
        with self._indexing(force, progress, everything=everything, backlog_seconds=backlog_seconds) as pipeline:
            stats = pipeline.add_folders(
                roots, include=include, exclude=exclude, max_file_size=max_file_size, also=[Path(root) for root in also]
            )
        stats.missing, stats.also, stats.rebuilt = missing, also, self._rebuilt
        self._rebuilt = False
        return stats

    @_one_at_a_time
    def embed_backlog(self, *, seconds: float | None = None, progress: ProgressCallback | None = None) -> IndexStats:
        """Embed the texts waiting for their vectors (an interrupted run's), the most recently
        modified documents' first, for at most `seconds` (None: all of them). Reads no file:
        `add` does this too, after the files it reads."""
        with self._indexing(False, progress, backlog_seconds=seconds) as pipeline:
            return pipeline.embed_backlog()

    @_one_at_a_time
    def folders(self) -> list[str]:
        """The folders in the index (as `add` resolved them)."""
        return list(self._backend.roots())

    def watch(
        self,
        paths: Sequence[str | os.PathLike] | None = None,
        *,
        poll: bool = False,
        on_update: Callable[[Update], None] | None = None,
        on_notice: Callable[[Notice], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Keep the index current until `stop` is set: a pass over `paths` (default: every
        folder in the index) for what changed while nothing watched, then an update per
        burst of file events. `poll` checks for changes instead of waiting for the system's
        events (network drives, WSL mounts, some containers). See `indexing.watch`."""
        from .indexing.watch import Watcher

        Watcher(self, paths, poll=poll, on_update=on_update, on_notice=on_notice, stop=stop).run()

    @_one_at_a_time
    def add_texts(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[dict[str, Any] | None] | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> IndexStats:
        """Index records that are not files: `ids[i]` names `texts[i]`.

        A `title` in a record's metadata is indexed with its text; metadata must be a
        JSON-serialisable dict (or None). Adding an id again replaces that record, metadata
        included; an unchanged text is not embedded again. Ids share one namespace with
        the paths of indexed files, so use ids that are not file paths.
        """
        records = checked_records(ids, texts, metadata)
        # Records and files share one namespace (a document's path); a record must not
        # silently take an indexed file's place (the file's folder would bring it back).
        states = self._backend.document_states_at(key for key, _, _ in records)
        files = [key for key, state in states.items() if state.size is not None]
        if files:
            raise SemsearchError(f"add_texts id {files[0]!r} is the path of an indexed file: use ids that are not file paths.")
        with self._indexing(False, progress) as pipeline:
            return pipeline.add_texts(records)

    @_one_at_a_time
    def remove(self, paths: Sequence[str | os.PathLike] | str | os.PathLike) -> int:
        """Remove documents at or under `paths` (files need not exist any more); returns how many."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        for given in paths:
            check_path(given)
        # A path names files; a plain string may also be the id of an `add_texts` record.
        targets = sorted({str(p) for p in paths} | {str(Path(p).expanduser().resolve()) for p in paths})
        with self._backend.writer(self.lock_timeout) as writer:
            documents = self._backend.documents_matching(targets)
            with writer.transaction():
                writer.remove_documents([document.id for document in documents])
                writer.remove_roots(targets)
        return len(documents)

    @contextmanager
    def _indexing(
        self, force: bool, progress: ProgressCallback | None, *, everything: bool = False, backlog_seconds: float | None = None
    ) -> Iterator[Pipeline]:
        """A pipeline holding the write lock; its stats count the whole run, the storage's
        last steps after the writes too (a vector index built, the cache saved), which
        `progress` hears of as steps."""
        started = time.monotonic()
        pipelines: list[Pipeline] = []

        def step(what: str) -> None:
            if progress and pipelines:
                progress(pipelines[0].progress_at(what))

        limit = self.embedder.rate_limit
        shared = self._backend.shared_rate_limit(*limit) if limit else None
        replaced = self.embedder.pace_with(shared) if shared is not None else None
        try:
            with self._backend.writer(self.lock_timeout, everything=everything, step=step) as writer:
                pipelines.append(self._pipeline(writer, force, progress, backlog_seconds))
                yield pipelines[0]
                writer.set_settings({"last_indexed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        finally:
            if shared is not None:
                # The embedder outlives this index (it is shared within the process).
                self.embedder.pace_with(replaced)
                shared.close()
        pipelines[0].stats.seconds = time.monotonic() - started

    def _pipeline(self, writer, force: bool, progress: ProgressCallback | None, backlog_seconds: float | None = None) -> Pipeline:
        # Imported here: the readers and the chunker are for indexing, not for searching.
        from .indexing.pipeline import Pipeline

        return Pipeline(
            self._backend, writer, self.embedder, self.chunking,
            force=force, progress=progress, exclusions=self._backend.walk_exclusions(), backlog_seconds=backlog_seconds,
        )

    # -- reading ----------------------------------------------------------------------------

    @_reading
    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        mode: str = "hybrid",
        per_file: int | None = 2,
        path: str | Sequence[str] | None = None,
        ext: str | Sequence[str] | None = None,
        after: DateLike | None = None,
        before: DateLike | None = None,
        explain: bool = False,
        rerank: bool | None = None,
        rerank_depth: int = DEFAULT_DEPTH,
    ) -> SearchResults:
        """The passages that best answer `query`, best first (a list of SearchResult, with
        `notes` on what the search did: the query cut for the model, ...).

        Args:
            limit: the most results to return.
            mode: "hybrid" (meaning and keywords, fused), "dense" (meaning) or "keyword" (BM25).
            per_file: the most results from one document (None or 0: no cap).
            path: glob(s) a result's path must match ("*.md", "notes/2024/*"); any may match.
            ext: extension(s) a result must have ("md,pdf" or [".md", "pdf"]).
            after, before: modification-time window ("2024-05-01", a date or a datetime);
                records from `add_texts` have no modification time, so these leave them out.
            explain: fill each result's `explain` with its ranks and scores.
            rerank: send the best `rerank_depth` candidates to the reranker (`self.reranker`)
                in one request and blend its scores with their ranks (see search.rerank).
                Default: when SEMSEARCH_RERANK_MODEL is set or a reranker was given to
                `open`. A reranker that fails or is too slow leaves the first-stage order,
                with a note; a wrong token or rerank model raises, as for embedding.

        Filters apply before the cut to `limit`, so they never hide a match that exists.
        """
        query_parts.check_arguments(query, limit, mode, per_file, path)
        backend = self._backend
        if not backend.has_chunks():
            return SearchResults()
        filters = Filters.build(path, ext, after, before)
        allowed = backend.filtered_ids(filters, backend.roots()) if filters.active else None
        if allowed is not None and len(allowed) == 0:
            return SearchResults()
        dense = keyword = None
        vector = None
        notes: list[str] = []
        if mode in ("hybrid", "dense"):
            vector = self._query_vector(query_parts.fitted(self.embedder, query, notes))
            dimensions = self.dimensions
            if dimensions is not None:
                settings.check_dimensions(str(self.path), dimensions, int(getattr(vector, "size", len(vector))))

            def dense(k: int) -> Ranking:
                return Ranking(*backend.dense(vector, k, allowed))

        if mode in ("hybrid", "keyword"):
            terms = query_terms(query)

            def keyword(k: int) -> Ranking:
                found, ceiling = backend.keyword(terms, k, allowed)
                return Ranking([chunk_id for chunk_id, _ in found], [score for _, score in found], ceiling)

        reranking = query_parts.reranking(rerank, rerank_depth, self._reranker is not None)
        depth = max(limit, rerank_depth) if reranking else limit
        waiting, _ = backend.backlog()
        if waiting and mode != "keyword":
            notes.append(query_parts.waiting_note(waiting, mode))
        ranked = rank(
            backend, dense, keyword, limit=depth, per_file=per_file, explain=explain,
            waiting=backend.waiting_among if waiting else None,
        )
        reranked = None
        if reranking:
            ranked, note = rerank_results(self.reranker, query, ranked, rerank_depth, explain=explain)
            ranked, reranked = ranked[:limit], note is None
            notes.extend([note] if note else [])
            for result in ranked:
                result.reranked = reranked
        query_parts.attach_parts(backend, ranked, vector)
        return SearchResults(for_query(ranked, query), notes, reranked, waiting)

    def _query_vector(self, query: str) -> np.ndarray:
        """The query's vector, with the storage ready for dense search. On the first search
        of an Index the two overlap: the query is embedded (the model computes, or the
        service answers, without the GIL) while the vector cache is opened, as both take a
        while in a fresh process."""
        embed = self._embed_query
        if self._warm:
            vector = embed(query)
            self._backend.prepare_dense()
            return vector
        embedding = query_parts.started(embed, query)
        self._backend.prepare_dense()
        self._warm = True
        return embedding()

    def _embed_query(self, query: str) -> np.ndarray:
        embedder = self.embedder
        if embedder.thread_safe:
            return embedder.embed_query(query)
        with self._embedding:
            return embedder.embed_query(query)

    @_reading
    def passage(self, chunk_id: int, *, context: int = 3) -> Passage:
        """The chunk `chunk_id` (a result's `chunk_id`) with `context` lines of its document
        on each side, its own lines marked. Raises NotInIndexError for a chunk not in the
        index (it may have changed since the search)."""
        from .search.passages import passage

        return passage(self._backend, chunk_id, context)

    @_reading
    def document(self, path: str, *, start: int = 1, end: int | None = None) -> DocumentLines:
        """Lines `start` to `end` (1-based, inclusive) of a document in the index, named as
        search results name it (or relative to an indexed folder). Only documents in the
        index are read: any other path raises NotInIndexError, whatever is on disk there."""
        from .search.passages import document_lines

        return document_lines(self._backend, path, start, end)

    @_one_at_a_time
    def check(self, *, repair: bool = False) -> CheckReport:
        """Verify the index: the storage sound, every chunk with a vector and a document, the
        vector cache matching the database. With `repair`, fix what can be fixed: damaged
        chunks are dropped and their documents re-read on the next `add`; the cache is rebuilt.
        """
        return self._backend.check(repair=repair, timeout=self.lock_timeout)

    @_reading
    def status(self) -> IndexStatus:
        """Model, dimensions, counts and size on disk."""
        found = self._backend.status()
        return IndexStatus(
            path=str(self.path),
            model=self.model,
            dimensions=self.dimensions,
            documents=found.documents,
            chunks=found.chunks,
            vectors=found.vectors,
            roots=found.roots,
            disk_bytes=found.disk_bytes,
            index_type=found.index_type,
            chunking=self.chunking.to_dict(),
            skipped=[{"path": path, "reason": reason} for path, reason in found.skipped],
            skipped_by_reason=count_reasons(reason for _, reason in found.skipped),
            index_vectors=found.index_vectors,
            index_layout=found.index_layout,
            index_memory_bytes=found.index_memory_bytes,
            index_disk_bytes=found.index_disk_bytes,
            last_indexed=self._backend.settings().get("last_indexed"),
            waiting_chunks=found.waiting_chunks,
            waiting_texts=found.waiting_texts,
        )


