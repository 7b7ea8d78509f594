"""`Index`: the library's entry point. A folder holding a SQLite database and a FAISS cache."""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config, embedders
from .chunking import ChunkSettings
from .embedders import Embedder, model_info
from .errors import IndexNotFoundError, ModelMismatchError, SemsearchError, StorageError
from .filters import DateLike, Filters, allowed_chunks
from .indexing import IndexStats, Pipeline, ProgressCallback, by_reason
from .keywords import query_terms
from .locking import try_write_lock, write_lock
from .search import MODES, Ranking, SearchResult, for_query, rank
from .store import DATABASE_NAME, Store
from .vectors import INDEX_NAME as VECTORS_FILE
from .vectors import NOTE_NAME as NOTE_FILE
from .walk import DEFAULT_MAX_FILE_SIZE, Skipped, resolve_roots

log = logging.getLogger(__name__)
# Chunks whose vectors `check` compares between the FAISS file and the database.
CHECK_SAMPLE = 64
# Seconds between saves of the vector cache during a long run.
CACHE_SAVE_EVERY = 60.0

if TYPE_CHECKING:
    from .vectors import VectorIndex, VectorSettings


def _one_at_a_time(method: Callable) -> Callable:
    """Run `method` holding the index's lock. An `Index` shares one SQLite connection, one
    vector cache and the caches of words and counts between its calls: threads sharing it
    take turns (re-entrant, so a progress callback may search)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            if self._closed and method.__name__ != "close":
                raise SemsearchError(f"The index at {self.path} was closed: open it again with Index.open.")
            return method(self, *args, **kwargs)

    return locked


@dataclass
class IndexStatus:
    """What an index holds and what it costs on disk."""

    path: str
    model: str
    dimensions: int | None
    documents: int
    chunks: int
    vectors: int
    roots: list[str]
    disk_bytes: int
    index_type: str
    chunking: dict[str, Any] = field(default_factory=dict)
    # Files the last run over each folder could not index: {"path", "reason"} each.
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    # The FAISS cache as last saved: vectors it holds, layout parameters, bytes it takes in
    # memory when fully loaded (a search maps the file and reads only what it probes) and on disk.
    index_vectors: int = 0
    index_layout: dict[str, Any] = field(default_factory=dict)
    index_memory_bytes: int = 0
    index_disk_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CheckReport:
    """What `Index.check` found, and what it repaired."""

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What to do about problems that `repair` cannot fix (a damaged database file).
    advice: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems or bool(self.repaired)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "repaired": self.repaired, "notes": self.notes, "advice": self.advice}


class Index:
    """A semsearch index. Open one with `Index.open(path)`; use it as a context manager."""

    def __init__(self, directory: Path, store: Store, embedder: Embedder | None, remote_options: dict[str, Any]) -> None:
        self.path = directory
        self._store = store
        self._embedder = embedder
        self._remote_options = remote_options
        self._vectors: VectorIndex | None = None
        self._vectors_generation = -1
        self._saved_at = time.monotonic()
        self._lock = threading.RLock()
        self._closed = False
        meta = store.meta()
        self.model: str = meta["model"]
        self.dimensions: int | None = int(meta["dimensions"]) if meta.get("dimensions") else None
        self.chunking = ChunkSettings.from_dict(json.loads(meta["chunking"]))
        self.vector_settings = _vector_settings(meta)
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
                SQ8 compression, recall target); stored with the index, and the FAISS cache
                is rebuilt when they change.
            remote_options: base_url, api_key, rps, burst, ... for a remote model.

        Raises:
            IndexNotFoundError, ModelMismatchError, StorageError, EmbeddingError.
        """
        if remote_options:
            embedders.check_remote_options(remote_options)
        directory = Path(path).expanduser() if path is not None else config.default_index_path()
        if not (directory / DATABASE_NAME).exists() and not create:
            raise IndexNotFoundError(
                f"No index at {directory}. Create one with `semsearch index FOLDER` (or pass --index)."
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create the index folder {directory}: {exc.strerror}.") from None
        store = Store(directory)
        try:
            requested = embedder.model_id if embedder is not None else model
            created, reason, dropped = False, None, 0
            if "model" in store.meta() and rebuild:
                embedder = embedder or embedders.make_embedder(requested or store.meta()["model"], **remote_options)
                embedder.embed_documents(["semsearch"])
                requested = embedder.model_id
                # Emptied and set up for the new model in one transaction: a rebuild killed
                # halfway resumes with the model it was asked for, not the default.
                with write_lock(directory, lock_timeout), store.transaction():
                    # Records from add_texts are not files: the folders cannot bring them back.
                    dropped = store.record_count()
                    store.clear()
                    store.set_meta(_settings_for(requested, embedder, chunking))
                created, reason = True, "--rebuild"
            elif _unused_with_other_settings(store, requested, chunking):
                # An index that holds no document yet (its first run failed: no token, a
                # typo) takes the model and chunking asked for now; there is nothing to lose.
                with write_lock(directory, lock_timeout), store.transaction():
                    # Asked again under the lock: a run may have filled it meanwhile.
                    if _unused_with_other_settings(store, requested, chunking):
                        replaced = store.meta()["model"]
                        store.clear()
                        store.set_meta(_settings_for(requested, embedder, chunking))
                        created = True
                        reason = f"{config.choose_model(requested).reason}; it held no documents with {replaced}"
            if not store.meta().get("model"):
                with write_lock(directory, lock_timeout), store.transaction():
                    if not store.meta().get("model"):
                        store.set_meta(_settings_for(requested, embedder, chunking))
                        created, reason = True, reason or config.choose_model(requested).reason
            _check_settings(directory, store.meta(), requested, chunking)
        except BaseException:
            store.close()
            raise
        index = cls(directory, store, embedder, remote_options)
        index.lock_timeout = lock_timeout
        if created:
            index._reset_cache()
        if vectors is not None and vectors != index.vector_settings:
            with write_lock(directory, lock_timeout):
                store.set_meta({"vectors": json.dumps(vectors.to_dict())})
                index.vector_settings = vectors
                index._reset_cache()
        index.created, index.model_reason = created, reason
        index.dropped_records = dropped
        return index

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @_one_at_a_time
    def close(self) -> None:
        """Release the database. The index stays on disk."""
        if not self._closed:
            self._store.close()
            self._closed = True

    @property
    def embedder(self) -> Embedder:
        """The index's embedding model, created on first use."""
        if self._embedder is None:
            self._embedder = embedders.make_embedder(self.model, **self._remote_options)
        return self._embedder

    # -- writing ----------------------------------------------------------------------------

    @_one_at_a_time
    def add(
        self,
        paths: Sequence[str | os.PathLike] | None = None,
        *,
        force: bool = False,
        progress: ProgressCallback | None = None,
        max_file_size: int | None | str = "remembered",
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
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
        each folder was last indexed with, else 20 MB. Raises
        SemsearchError for a path that does not exist, EmbeddingError when the model fails
        (what was committed before stays).
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        missing: list[str] = []
        if not paths:
            known = self._store.roots()
            if not known:
                raise SemsearchError("The index has no folders yet: name the folders to index.")
            # A folder gone from an update of them all (an unmounted drive, a moved folder)
            # keeps its documents; the others are brought up to date all the same.
            paths = [root for root in known if os.path.lexists(root)]
            missing = [root for root in known if root not in paths]
        if not (max_file_size is None or max_file_size == "remembered" or (isinstance(max_file_size, int) and max_file_size >= 0)):
            raise SemsearchError(f'max_file_size must be a number of bytes, None (no limit) or "remembered", not {max_file_size!r}.')
        roots = resolve_roots(list(paths))
        everything = {str(root) for root in roots} >= set(self._store.roots())
        with self._writing(everything=everything):
            self._store.add_roots(str(root) for root in roots)
            if include or exclude:
                for root in roots:
                    self._store.set_root_patterns(str(root), include, exclude)
            if max_file_size != "remembered":
                for root in roots:
                    self._store.set_root_size_limit(str(root), max_file_size)
            remembered, limits = self._store.root_patterns(), self._store.root_size_limits()
            groups: dict[tuple[tuple[str, ...], tuple[str, ...], int | None], list[Path]] = {}
            for root in roots:
                limit = limits.get(str(root), DEFAULT_MAX_FILE_SIZE)
                groups.setdefault((*remembered.get(str(root), ((), ())), limit), []).append(root)
            pipeline = self._pipeline(force, progress)
            for (included, excluded, limit), group in groups.items():
                pipeline.add_files(group, max_file_size=limit, include=included, exclude=excluded)
            stats = pipeline.remove_gone()
            stats.missing = missing
            return stats

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
        records = _checked_records(ids, texts, metadata)
        # Records and files share one namespace (a document's path); a record must not
        # silently take an indexed file's place (the file's folder would bring it back).
        states = self._store.document_states_at(key for key, _, _ in records)
        files = [key for key, state in states.items() if state.size is not None]
        if files:
            raise SemsearchError(f"add_texts id {files[0]!r} is the path of an indexed file: use ids that are not file paths.")
        with self._writing():
            return self._pipeline(False, progress).add_texts(records)

    @_one_at_a_time
    def remove(self, paths: Sequence[str | os.PathLike]) -> int:
        """Remove documents at or under `paths` (files need not exist any more); returns how many."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        # A path names files; a plain string may also be the id of an `add_texts` record.
        targets = sorted({str(p) for p in paths} | {str(Path(p).expanduser().resolve()) for p in paths})
        with self._writing():
            documents = self._store.documents_matching(targets)
            cache = self._cache() if documents else None
            with self._store.transaction():
                removed = self._store.remove_documents([d.id for d in documents]) if documents else []
                self._store.remove_roots(targets)
            if cache is not None:
                cache.remove(removed)
                self._cache_committed()
        return len(documents)

    def _pipeline(self, force: bool, progress: ProgressCallback | None) -> Pipeline:
        return Pipeline(
            self._store, self.embedder, self.chunking,
            cache=self._cache, committed=self._cache_committed, dimensions=self._check_dimensions,
            force=force, progress=progress,
        )

    @contextmanager
    def _writing(self, *, everything: bool = False) -> Iterator[None]:
        """Hold the write lock; when the run changed anything, tidy up and save the cache.

        `everything`: the run covered every folder of the index, so any vector still
        unused afterwards is garbage, not an interrupted run's work in waiting.
        """
        if self._store.readonly:
            raise StorageError(
                f"Cannot write in the index folder {self.path}: it is read-only (searching it works). "
                "Check its permissions, or copy the index somewhere writable."
            )
        with write_lock(self.path, self.lock_timeout):
            start = self._store.generation()
            try:
                yield
            except BaseException:
                # Keep what was committed findable, but never hide the original error.
                with suppress(Exception):
                    self._save_cache(start)
                raise
            try:
                self._tidy(start, everything)
            except StorageError as exc:
                # The change is committed; failing to tidy up after it (a full disk) loses
                # nothing, and the next run, or search, does it.
                log.warning("semsearch: the change is saved, but tidying up after it failed: %s", exc)

    def _tidy(self, start: int, everything: bool) -> None:
        """After a write: drop vectors no chunk uses, fit the cache's layout to the new size,
        recount common words when due, and save the cache."""
        if self._store.generation() != start or everything:
            with self._store.transaction():
                self._store.delete_unused_vectors(None if everything else self._store.released_vectors)
            self._store.released_vectors.clear()
        if self._store.generation() != start:
            self._relayout()
        # Also when nothing changed: an index upgraded through migration m005 has no
        # counts of its common words until a run records them (seconds at a million
        # chunks), and without them every search counts its words itself.
        self._store.refresh_term_statistics()
        self._save_cache(start)

    def _save_cache(self, start: int) -> None:
        if self._vectors is not None and self._store.generation() != start:
            self._vectors.save(self.path, self._vectors_generation)

    def _check_dimensions(self, dimensions: int) -> None:
        if self.dimensions is None:
            self._store.set_meta({"dimensions": str(dimensions)})
            self.dimensions = dimensions
        elif dimensions != self.dimensions:
            raise ModelMismatchError(
                f"The model returned {dimensions}-dimensional vectors, but the index at {self.path} "
                f"holds {self.dimensions}-dimensional ones. Rebuild it with `semsearch index --rebuild FOLDER`."
            )

    # -- the FAISS cache --------------------------------------------------------------------

    def _vector_index(self) -> VectorIndex:
        """The cache as loaded from disk (or empty), not yet checked against SQLite."""
        if self._vectors is None:
            from .vectors import VectorIndex

            if self.dimensions is None:
                raise SemsearchError("The index has no vectors yet: its model has not been called.")
            loaded = VectorIndex.load(self.path)
            if loaded and loaded[0].dimensions == self.dimensions:
                index, note = loaded
                self._vectors = index
                self._vectors_generation = note.generation if index.count == note.count else -1
            else:
                self._vectors = VectorIndex(self.dimensions)
                self._vectors_generation = -1
        return self._vectors

    def _cache(self) -> VectorIndex:
        """The cache, brought up to the committed state of SQLite."""
        self._sync_vectors()
        return self._vector_index()

    def _cache_committed(self) -> None:
        """This process applied its own commit to the cache (under the write lock), so the
        cache reflects the store's new generation without comparing ids again."""
        self._vectors_generation = self._store.generation()
        # A long run saves the cache now and then: a search meanwhile (another process,
        # which cannot save while this one holds the lock) then loads it and adds only
        # what came since, instead of reading every vector from SQLite each time.
        now = time.monotonic()
        if self._vectors is not None and now - self._saved_at > CACHE_SAVE_EVERY:
            self._saved_at = now
            with suppress(StorageError):  # a full disk: the run's own commits matter more
                self._vectors.save(self.path, self._vectors_generation)

    def _sync_vectors(self) -> bool:
        """Bring the cache up to the committed state of SQLite; True if it changed."""
        import numpy as np

        if self.dimensions is None:
            return False
        index = self._vector_index()
        if self._store.generation() == self._vectors_generation:
            return False
        # One read transaction, so ids and vectors come from the same snapshot.
        with self._store.transaction():
            generation = self._store.generation()
            stored = self._store.chunk_ids()
            cached = index.ids()
            index.remove(np.setdiff1d(cached, stored, assume_unique=True))
            missing = np.setdiff1d(stored, cached, assume_unique=True)
            if len(missing) and len(missing) == len(stored):
                # Built from scratch, in the layout its size calls for.
                self._vectors = self._built(stored)
            else:
                for ids, matrix in self._store.chunk_vectors(self.dimensions, missing):
                    index.add(ids, matrix)
        self._vectors_generation = generation
        return True

    def _built(self, stored) -> VectorIndex:
        """A new cache of the vectors of `stored` chunk ids. Call inside a read transaction."""
        from .vectors import VectorIndex, planned_layout

        layout = planned_layout(len(stored), self.vector_settings)

        def read(ids):
            return self._store.chunk_vectors(self.dimensions, ids)

        return VectorIndex.build(self.dimensions, stored, read, layout, self.vector_settings.recall)

    def _relayout(self) -> None:
        """Rebuild the cache from SQLite when its size has left the range its layout suits
        (exact search past the threshold, IVF cells sized for a much smaller or larger index).
        Call with the write lock held and the cache in step with SQLite."""
        from .vectors import planned_layout

        current = self._vectors
        if current is None or self._vectors_generation != self._store.generation():
            return
        if planned_layout(current.count, self.vector_settings, current.layout) != current.layout:
            with self._store.transaction():
                self._vectors = self._built(self._store.chunk_ids())

    def _reset_cache(self) -> None:
        for name in (VECTORS_FILE, NOTE_FILE):
            (self.path / name).unlink(missing_ok=True)
        self._vectors = None
        self._vectors_generation = -1

    # -- reading ----------------------------------------------------------------------------

    @_one_at_a_time
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
    ) -> list[SearchResult]:
        """The passages that best answer `query`, best first.

        Args:
            limit: the most results to return.
            mode: "hybrid" (meaning and keywords, fused), "dense" (meaning) or "keyword" (BM25).
            per_file: the most results from one document (None or 0: no cap).
            path: glob(s) a result's path must match ("*.md", "notes/2024/*"); any may match.
            ext: extension(s) a result must have ("md,pdf" or [".md", "pdf"]).
            after, before: modification-time window ("2024-05-01", a date or a datetime);
                records from `add_texts` have no modification time, so these leave them out.
            explain: fill each result's `explain` with its ranks and scores.

        Filters apply before the cut to `limit`, so they never hide a match that exists.
        """
        if not isinstance(query, str):
            raise SemsearchError(f"The query must be a string, not {type(query).__name__}.")
        if not query.strip():
            raise SemsearchError("The query is empty: say what you are looking for.")
        if not isinstance(limit, int) or not (per_file is None or isinstance(per_file, int)):
            raise SemsearchError("limit must be a whole number, and per_file a whole number or None.")
        if mode not in MODES:
            raise SemsearchError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
        if limit < 0 or (per_file or 0) < 0:
            raise SemsearchError(f"limit and per_file must be 0 or more (per_file None: no cap), not {limit} and {per_file}.")
        if not self._store.has_chunks():
            return []
        filters = Filters.build(path, ext, after, before)
        allowed = allowed_chunks(self._store, filters) if filters.active else None
        if allowed is not None and len(allowed) == 0:
            return []
        dense = keyword = None
        if mode in ("hybrid", "dense"):
            vector = self._embed_query_and_sync(query)
            if self.dimensions is not None:
                self._check_dimensions(int(getattr(vector, "size", len(vector))))
            index = self._vector_index()

            def dense(k: int) -> Ranking:
                ids, scores = index.search(vector, k, allowed)
                return Ranking(ids.tolist(), scores.tolist())

        if mode in ("hybrid", "keyword"):
            terms = query_terms(query)

            def keyword(k: int) -> Ranking:
                found, ceiling = self._store.keyword_search(terms, k, allowed)
                return Ranking([chunk_id for chunk_id, _ in found], [score for _, score in found], ceiling)

        return for_query(rank(self._store, dense, keyword, limit=limit, per_file=per_file, explain=explain), query)

    def _embed_query_and_sync(self, query: str):
        """The query's vector, with the vector cache brought up to date. On the first search
        of a process the two overlap: the query is embedded (the model computes, or the
        service answers, without the GIL) while the cache is opened, as both take a while
        in a fresh process."""
        embedder = self.embedder
        if self._vectors is not None:
            vector = embedder.embed_query(query)
            self._sync_and_save()
            return vector
        embedding = _started(embedder.embed_query, query)
        self._sync_and_save()
        return embedding()

    def _sync_and_save(self) -> None:
        if self._sync_vectors():
            self._save_if_free()

    def _save_if_free(self) -> None:
        # A reader that had to catch up saves its work for the next one, unless a writer is busy.
        with try_write_lock(self.path) as locked:
            if locked and self._vectors is not None:
                with suppress(StorageError):  # a full disk: the next reader catches up again
                    self._vectors.save(self.path, self._vectors_generation)

    @_one_at_a_time
    def check(self, *, repair: bool = False) -> CheckReport:
        """Verify the index: SQLite sound, every chunk with a vector and a document, the FAISS
        cache matching SQLite. With `repair`, fix what can be fixed: damaged chunks are
        dropped and their documents re-read on the next `add`; the cache is rebuilt.
        """
        import numpy as np

        report = CheckReport()
        damage = self._store.integrity_problems()
        if damage:
            # Nothing else can be trusted (or even read) in a damaged file, and deleting
            # rows cannot mend it: the way out is a new index of the same folders.
            report.problems += [f"SQLite: {problem}" for problem in damage]
            report.advice = self._damaged_advice()
            return report
        # FTS5's integrity check writes (a command row), so it runs before the read
        # snapshot below, and not at all on a read-only index.
        keyword_problems = [] if self._store.readonly else self._store.keyword_problems()
        if self._store.readonly:
            report.notes.append("the keyword index's own integrity check needs a writable index; its entries were compared only")
        # One snapshot: a run committing meanwhile must not look like a mismatch.
        with self._store.transaction():
            without_vectors = self._store.chunks_without_vectors()
            without_documents = self._store.chunks_without_documents()
            wrong_size = self._store.vectors_of_wrong_size(self.dimensions) if self.dimensions else []
            incomplete = self._store.documents_with_missing_chunks()
            unused = self._store.unused_vector_count()
            keyword_ids, chunk_ids = self._store.keyword_ids(), self._store.chunk_ids()
            # The FAISS file is a cache: behind the database (a writer at work, a killed run)
            # or missing, it is brought up to date by the next search, so that is no problem.
            cache_state = self._cache_state()
            cache_damage = None if cache_state else self._cache_damage()
        if without_vectors:
            report.problems.append(f"{len(without_vectors)} chunks have no vector")
        if without_documents:
            report.problems.append(f"{len(without_documents)} chunks belong to no document")
        if wrong_size:
            report.problems.append(f"{len(wrong_size)} vectors do not have {self.dimensions} dimensions")
        if unused:
            report.notes.append(
                f"{unused} stored vectors belong to no chunk: an interrupted run's, which the next "
                "`semsearch index` uses, or left over, which an update of every folder drops"
            )
        if not keyword_problems and not np.array_equal(keyword_ids, chunk_ids):
            keyword_problems.append(f"it holds {len(keyword_ids)} entries for {len(chunk_ids)} chunks")
        report.problems += [f"keyword index: {problem}" for problem in keyword_problems]
        if cache_state:
            report.notes.append(f"{cache_state}: the next search brings it up to date (or `check --repair` now)")
        if cache_damage:
            report.problems.append(f"FAISS cache: {cache_damage}")
        if not repair or not (report.problems or cache_state):
            return report
        with self._writing():
            with self._store.transaction():
                self._store.delete_vectors(wrong_size)
                self._store.delete_chunks(without_vectors + without_documents)
                self._store.forget_content(self._store.documents_with_missing_chunks())
                if keyword_problems:
                    self._store.rebuild_keywords()
            self._reset_cache()
            self._cache()
            self._vectors.save(self.path, self._vectors_generation)
        report.repaired = list(report.problems) + ([f"{cache_state}: rebuilt"] if cache_state else [])
        if incomplete or without_vectors or wrong_size:
            report.repaired.append("documents that lost chunks will be read again by the next `semsearch index`")
        return report

    def _cache_damage(self) -> str | None:
        """Whether the saved FAISS file, current by its ids and generation, holds the vectors
        the database holds, judged on a random sample of chunks (a damaged file that still
        loads would give wrong results, and no search would notice)."""
        import numpy as np

        from .vectors import VectorIndex

        stored = self._store.chunk_ids()
        loaded = VectorIndex.load(self.path) if len(stored) else None
        if loaded is None:
            return None
        sample = np.sort(np.random.default_rng().choice(stored, size=min(CHECK_SAMPLE, len(stored)), replace=False))
        wrong = sum(loaded[0].disagreements(ids, matrix) for ids, matrix in self._store.chunk_vectors(self.dimensions, sample))
        return f"{wrong} of {len(sample)} sampled vectors differ from the database" if wrong else None

    def _damaged_advice(self) -> str:
        try:
            roots = self._store.roots()
        except sqlite3.DatabaseError:
            roots = []
        folders = " ".join(shlex.quote(root) for root in roots if os.path.lexists(root)) or "FOLDER..."
        again = f"`semsearch --index {shlex.quote(f'{self.path}.new')} index --model {shlex.quote(self.model)} {folders}`"
        return (
            f"The index database is damaged, which `check --repair` cannot mend. Index your folders again "
            f"into a new index ({again}), then replace {self.path} with it."
        )

    def _cache_state(self) -> str | None:
        """How the saved FAISS file differs from the database, if it does."""
        import numpy as np

        from .vectors import VectorIndex

        if self.dimensions is None or self._store.chunk_count() == 0:
            return None
        loaded = VectorIndex.load(self.path)
        if loaded is None:
            return "the FAISS cache is missing or unreadable"
        index, note = loaded
        if index.dimensions != self.dimensions:
            return f"the FAISS cache has {index.dimensions} dimensions, the index {self.dimensions}"
        stored = self._store.chunk_ids()
        cached = np.sort(index.ids())
        if len(cached) != len(stored) or not np.array_equal(cached, stored):
            return f"the FAISS cache holds {len(cached)} vectors for {len(stored)} chunks"
        if note.generation != self._store.generation():
            return "the FAISS cache is marked as older than the database"
        return None

    @_one_at_a_time
    def status(self) -> IndexStatus:
        """Model, dimensions, counts and size on disk."""
        from .vectors import read_note

        counts = self._store.counts()
        disk = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        skipped = [Skipped(path, reason) for path, reason in self._store.skipped_files()]
        note = read_note(self.path)
        cache_file = self.path / VECTORS_FILE
        return IndexStatus(
            path=str(self.path),
            model=self.model,
            dimensions=self.dimensions,
            documents=counts["documents"],
            chunks=counts["chunks"],
            vectors=counts["vectors"],
            roots=self._store.roots(),
            disk_bytes=disk,
            index_type=note.layout.describe() if note else "none",
            chunking=self.chunking.to_dict(),
            skipped=[{"path": item.path, "reason": item.reason} for item in skipped],
            skipped_by_reason=by_reason(skipped),
            index_vectors=note.count if note else 0,
            index_layout=dict(note.layout.__dict__) if note else {},
            index_memory_bytes=note.memory_bytes if note else 0,
            index_disk_bytes=cache_file.stat().st_size if note and cache_file.exists() else 0,
        )


def _started(function: Callable, *args: Any) -> Callable[[], Any]:
    """Run `function(*args)` in a daemon thread; returns what waits for its result (or
    raises its error). A daemon, so that Ctrl-C ends the process at once even while the
    thread waits on a service that does not answer (a pool's worker would be joined first)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="semsearch-query", daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return result


def _vector_settings(meta: dict[str, str]) -> VectorSettings:
    from .vectors import VectorSettings

    return VectorSettings.from_dict(json.loads(meta["vectors"])) if meta.get("vectors") else VectorSettings()


def _settings_for(requested: str | None, embedder: Embedder | None, chunking: ChunkSettings | None) -> dict[str, str]:
    """The meta values that set an empty index up for a model and chunking."""
    choice = config.choose_model(requested)
    dimensions = (embedder.dimensions if embedder is not None else None) or model_info(choice.model).dimensions
    return {
        "model": choice.model,
        "dimensions": str(dimensions or ""),
        "chunking": json.dumps((chunking or ChunkSettings()).to_dict()),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _unused_with_other_settings(store: Store, model: str | None, chunking: ChunkSettings | None) -> bool:
    """Whether the index was set up for another model or chunking but holds no document."""
    meta = store.meta()
    if not meta.get("model"):
        return False
    other_model = model is not None and model != meta["model"]
    other_chunking = chunking is not None and chunking != ChunkSettings.from_dict(json.loads(meta["chunking"]))
    return (other_model or other_chunking) and not store.has_documents()


def _checked_records(ids, texts, metadata) -> list[tuple[str, str, dict[str, Any] | None]]:
    """`add_texts`' arguments as records, refused before anything is written when they
    cannot all be stored (a run commits as it goes)."""
    if isinstance(ids, str) or isinstance(texts, str):
        raise SemsearchError("add_texts takes lists: ids=[...], texts=[...].")
    ids, texts = list(ids), list(texts)
    metadata = [None] * len(ids) if metadata is None else list(metadata)
    if not len(ids) == len(texts) == len(metadata):
        raise SemsearchError("add_texts needs as many ids (and metadata) as texts.")
    if len(set(ids)) != len(ids):
        raise SemsearchError("add_texts ids must be unique.")
    for number, (key, text, values) in enumerate(zip(ids, texts, metadata)):
        problem = None
        if not isinstance(key, str) or not isinstance(text, str):
            problem = "ids and texts must be strings"
        elif values is not None and not isinstance(values, dict):
            problem = "metadata must be a dict or None"
        elif values is not None and not isinstance(values.get("title", ""), str):
            problem = "a title in metadata must be a string"
        else:
            try:
                json.dumps(values)
            except (TypeError, ValueError) as exc:
                problem = f"metadata must be JSON-serialisable ({exc})"
        if problem:
            raise SemsearchError(f"add_texts record {number} ({key!r}): {problem}. Nothing was written.")
    return list(zip(ids, texts, metadata))


def _check_settings(directory: Path, meta: dict[str, str], model: str | None, chunking: ChunkSettings | None) -> None:
    if model and model != meta["model"]:
        raise ModelMismatchError(
            f"The index at {directory} was built with model {meta['model']}, not {model}. "
            f"Search it without --model, use another --index for {model}, or rebuild it with "
            f"`semsearch index --rebuild --model {model}`."
        )
    if chunking is not None and chunking != ChunkSettings.from_dict(json.loads(meta["chunking"])):
        raise ModelMismatchError(
            f"The index at {directory} was built with other chunk settings ({meta['chunking']}). "
            "Keep its settings, or rebuild it with `semsearch index --rebuild`."
        )
