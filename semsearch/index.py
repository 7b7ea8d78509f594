"""`Index`: the library's entry point. A folder holding a SQLite database and a FAISS cache."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .chunking import ChunkSettings
from . import embedders
from .embedders import Embedder, model_info
from .errors import IndexNotFoundError, ModelMismatchError, SemsearchError, StorageError
from .indexing import IndexStats, Pipeline, ProgressCallback
from .locking import try_write_lock, write_lock
from .search import SearchResult, dense_search
from .store import DATABASE_NAME, Store
from .walk import DEFAULT_MAX_FILE_SIZE, resolve_roots

if TYPE_CHECKING:
    from .vectors import VectorIndex


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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Index:
    """A semsearch index. Open one with `Index.open(path)`; use it as a context manager."""

    def __init__(self, directory: Path, store: Store, embedder: Embedder | None, remote_options: dict[str, Any]) -> None:
        self.path = directory
        self._store = store
        self._embedder = embedder
        self._remote_options = remote_options
        self._vectors: VectorIndex | None = None
        self._vectors_generation = -1
        meta = store.meta()
        self.model: str = meta["model"]
        self.dimensions: int | None = int(meta["dimensions"]) if meta.get("dimensions") else None
        self.chunking = ChunkSettings(**json.loads(meta["chunking"]))
        self.created = False
        self.model_reason: str | None = None

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
        **remote_options: Any,
    ) -> Index:
        """Open the index at `path` (default: SEMSEARCH_INDEX or the user's default index).

        Args:
            model: the embedding model for a new index ("local" or a remote model id); for an
                existing index it must match the one it was built with.
            embedder: any object following the `Embedder` protocol, used instead of `model`.
            create: create the index when missing (otherwise raise IndexNotFoundError).
            chunking: chunk settings for a new index; must match for an existing one.
            remote_options: base_url, api_key, rps, burst, ... for a remote model.

        Raises:
            IndexNotFoundError, ModelMismatchError, StorageError.
        """
        directory = Path(path).expanduser() if path is not None else config.default_index_path()
        exists = (directory / DATABASE_NAME).exists()
        if not exists and not create:
            raise IndexNotFoundError(
                f"No index at {directory}. Create one with `semsearch index FOLDER` (or pass --index)."
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create the index folder {directory}: {exc.strerror}.") from None
        store = Store(directory)
        requested = embedder.model_id if embedder is not None else model
        meta = store.meta()
        created, reason = False, None
        if "model" not in meta:
            with write_lock(directory):
                meta = store.meta()
                if "model" not in meta:
                    choice = config.choose_model(requested)
                    dimensions = (embedder.dimensions if embedder is not None else None) or model_info(choice.model).dimensions
                    store.set_meta(
                        {
                            "model": choice.model,
                            "dimensions": str(dimensions or ""),
                            "chunking": json.dumps((chunking or ChunkSettings()).to_dict()),
                            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        }
                    )
                    created, reason = True, choice.reason
                    meta = store.meta()
        if requested and requested != meta["model"]:
            store.close()
            raise ModelMismatchError(
                f"The index at {directory} was built with model {meta['model']}, not {requested}. "
                f"Search it without --model, use another --index for {requested}, or rebuild it with "
                f"`semsearch index --rebuild --model {requested} FOLDER`."
            )
        if chunking is not None and chunking.to_dict() != json.loads(meta["chunking"]):
            store.close()
            raise ModelMismatchError(
                f"The index at {directory} was built with other chunk settings ({meta['chunking']}). "
                "Keep its settings, or rebuild it with `semsearch index --rebuild FOLDER`."
            )
        index = cls(directory, store, embedder, remote_options)
        index.created, index.model_reason = created, reason
        return index

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database. The index stays on disk."""
        self._store.close()

    @property
    def embedder(self) -> Embedder:
        """The index's embedding model, created on first use."""
        if self._embedder is None:
            self._embedder = embedders.make_embedder(self.model, **self._remote_options)
        return self._embedder

    # -- writing ----------------------------------------------------------------------------

    def add(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        force: bool = False,
        progress: ProgressCallback | None = None,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> IndexStats:
        """Index the files in `paths` (folders or files); re-runs only embed what changed.

        Files indexed earlier under these folders that are gone are removed. `force`
        re-embeds everything. Raises SemsearchError for a path that does not exist,
        EmbeddingError when the model fails (what was committed before stays).
        """
        roots = resolve_roots(list(paths))
        with self._writing():
            self._store.add_roots(str(root) for root in roots)
            pipeline = self._pipeline(force, progress)
            try:
                stats = pipeline.add_files(roots, max_file_size=max_file_size)
            finally:
                self._after_write()
        return stats

    def add_texts(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[dict[str, Any] | None] | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> IndexStats:
        """Index records that are not files: `ids[i]` names `texts[i]`.

        A `title` in a record's metadata is indexed with its text. Adding an id again
        replaces that record; an unchanged text is not embedded again.
        """
        if len(ids) != len(texts) or (metadata is not None and len(metadata) != len(ids)):
            raise SemsearchError("add_texts needs as many ids (and metadata) as texts.")
        if len(set(ids)) != len(ids):
            raise SemsearchError("add_texts ids must be unique.")
        records = zip(ids, texts, metadata or [None] * len(ids))
        with self._writing():
            pipeline = self._pipeline(False, progress)
            try:
                stats = pipeline.add_texts(records)
            finally:
                self._after_write()
        return stats

    def remove(self, paths: Sequence[str | os.PathLike]) -> int:
        """Remove documents at or under `paths` (files need not exist any more); returns how many."""
        # A path names files; a plain string may also be the id of an `add_texts` record.
        targets = sorted({str(p) for p in paths} | {str(Path(p).expanduser().resolve()) for p in paths})
        with self._writing():
            documents = self._store.documents_matching(targets)
            if not documents:
                return 0
            with self._store.transaction():
                removed = self._store.remove_documents([d.id for d in documents])
            self._vector_index().remove(removed)
            self._after_write()
        return len(documents)

    def _pipeline(self, force: bool, progress: ProgressCallback | None) -> Pipeline:
        return Pipeline(
            self._store, self._vector_index, self.embedder, self.chunking, self._check_dimensions,
            force=force, progress=progress,
        )

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with write_lock(self.path):
            self._sync_vectors()
            yield

    def _after_write(self) -> None:
        """Drop vectors nothing uses and save the FAISS cache for the next reader."""
        with self._store.transaction():
            self._store.delete_unused_vectors()
        if self._vectors is not None:
            generation = self._store.generation()
            self._vectors.save(self.path, generation)
            self._vectors_generation = generation

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

    def _sync_vectors(self) -> bool:
        """Bring the FAISS cache up to the committed state of SQLite; True if it changed."""
        import numpy as np

        if self.dimensions is None:
            return False
        index = self._vector_index()
        generation = self._store.generation()
        if generation == self._vectors_generation:
            return False
        # One read transaction, so ids and vectors come from the same snapshot.
        with self._store.transaction():
            generation = self._store.generation()
            stored = self._store.chunk_ids()
            cached = index.ids()
            index.remove(np.setdiff1d(cached, stored, assume_unique=True))
            missing = np.setdiff1d(stored, cached, assume_unique=True)
            everything = len(missing) == len(stored)
            for ids, matrix in self._store.chunk_vectors(self.dimensions, None if everything else missing):
                index.add(ids, matrix)
        self._vectors_generation = generation
        return True

    # -- reading ----------------------------------------------------------------------------

    def search(self, query: str, *, limit: int = 10, per_file: int | None = 2) -> list[SearchResult]:
        """The passages that best answer `query`, best first.

        Args:
            limit: the most results to return.
            per_file: the most results from one document (None or 0: no cap).
        """
        if not query or not query.strip():
            raise SemsearchError("The query is empty: say what you are looking for.")
        if self.dimensions is None or self._store.counts()["chunks"] == 0:
            return []
        vector = self.embedder.embed_query(query)
        if self._sync_vectors():
            self._save_if_free()
        return dense_search(self._store, self._vector_index(), vector, limit=limit, per_file=per_file)

    def _save_if_free(self) -> None:
        # A reader that had to catch up saves its work for the next one, unless a writer is busy.
        with try_write_lock(self.path) as locked:
            if locked and self._vectors is not None:
                try:
                    self._vectors.save(self.path, self._vectors_generation)
                except OSError:
                    pass  # a read-only index folder: the cache is rebuilt next time

    def status(self) -> IndexStatus:
        """Model, dimensions, counts and size on disk."""
        counts = self._store.counts()
        disk = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        return IndexStatus(
            path=str(self.path),
            model=self.model,
            dimensions=self.dimensions,
            documents=counts["documents"],
            chunks=counts["chunks"],
            vectors=counts["vectors"],
            roots=self._store.roots(),
            disk_bytes=disk,
            index_type="flat",
            chunking=self.chunking.to_dict(),
        )
