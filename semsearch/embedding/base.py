"""What semsearch needs from an embedding model, and what it may use when a model offers it.

`Embedder` is the protocol: an id, a size and two methods. `BaseEmbedder` declares the
optional members with their defaults; the bundled and remote models derive from it, and
`conform` gives any other object following the protocol the same shape, so that no caller
has to ask an embedder what it has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import SemsearchError

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """What semsearch needs from an embedding model.

    The optional members it uses when a model has them are declared on `BaseEmbedder`.
    """

    model_id: str
    dimensions: int | None

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Return one row per text, float32, shape (len(texts), dimensions)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Return the vector of a search query, shape (dimensions,)."""
        ...


@dataclass
class Usage:
    """What the embedder has spent: requests, inputs, tokens, retries, 429s, seconds waited."""

    requests: int = 0
    inputs: int = 0
    prompt_tokens: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0

    def copy(self) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) for f in fields(self)})

    def since(self, earlier: Usage) -> Usage:
        """The usage between `earlier` (a copy taken before) and now."""
        return Usage(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})


class BaseEmbedder:
    """An embedding model with every member semsearch may use; the optional ones default
    to "not known" or to feeding the model one call at a time."""

    model_id: str
    dimensions: int | None = None
    # The model's input limit in its own tokens; with `count_tokens`, chunks are cut to fit.
    max_tokens: int | None = None
    # The exact tokens the model sees for a passage, or None when it cannot count them.
    count_tokens: Callable[[str], int] | None = None
    # What the model puts before a query and before a passage (the model applies them).
    query_prefix: str = ""
    passage_prefix: str = ""
    # Texts per `embed_documents` call, and calls in flight at once. Read before each call:
    # a remote model lowers its batch size when the service refuses large ones.
    batch_size: int = 32
    concurrency: int = 1
    # Whether calls may run at once from several threads (a server's searches); if not,
    # an index's searches embed their queries one at a time.
    thread_safe: bool = False
    # Whether embedding keeps this machine's cores busy (a model computed in the process):
    # an indexing run then reads its files first, so that they are searchable by keywords
    # soonest, rather than share the cores with the model from the start.
    uses_cores: bool = False
    # What the model has spent (requests, tokens, ...), kept up to date; None if nothing.
    usage: Usage | None = None
    # Where a model served elsewhere is asked, for people ("host (where the token came
    # from)", never the token); None for a model that runs in the process.
    endpoint: str | None = None
    # The service contract's rate limit when calls are paced: (contract key, requests a
    # second, burst); None for a model with no limit.
    rate_limit: tuple[str, float, float] | None = None

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def portable_count_tokens(self) -> Callable[[str], int] | None:
        """`count_tokens` as a function another process can run (a module-level function, or
        a partial of one, that pickles without the model), or None when it has none. Files
        are read and chunked in other processes only when the counter can go with them."""
        return None

    def pace_with(self, bucket: Any) -> Any:
        """Pace calls by `bucket` (one with `acquire(stop)` and `pause(seconds)`, perhaps
        shared with other machines) from now on; returns the bucket it replaces, to put back
        afterwards. A model with no rate limit ignores it."""
        return None


_REQUIRED = ("model_id", "dimensions", "embed_documents", "embed_query")


def conform(embedder: object) -> BaseEmbedder:
    """`embedder` as a `BaseEmbedder`: itself if it is one, else a view that forwards the
    protocol's members and those of the optional ones it has.

    Raises SemsearchError naming the members a protocol object lacks.
    """
    if isinstance(embedder, BaseEmbedder):
        return embedder
    missing = [name for name in _REQUIRED if not hasattr(embedder, name)]
    if missing:
        raise SemsearchError(
            f"The embedder {type(embedder).__name__} lacks {', '.join(missing)}: an embedder needs model_id, "
            "dimensions, embed_documents(texts) and embed_query(text) (see semsearch.Embedder).",
            code="not_an_embedder", missing=missing,
        )
    if not callable(embedder.embed_documents) or not callable(embedder.embed_query):  # type: ignore[attr-defined]
        raise SemsearchError(
            f"The embedder {type(embedder).__name__}'s embed_documents and embed_query must be methods.",
            code="not_an_embedder", missing=[],
        )
    return _Conformed(embedder)


class _Conformed(BaseEmbedder):
    """An embedder that is not a `BaseEmbedder`, seen as one. The optional members are read
    from it on each use, as a model may change them (its batch size) while it works."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def _optional(self, name: str):
        return getattr(self._inner, name, getattr(BaseEmbedder, name))

    model_id = property(lambda self: self._inner.model_id)  # type: ignore[assignment]
    dimensions = property(lambda self: self._inner.dimensions)  # type: ignore[assignment]
    max_tokens = property(lambda self: self._optional("max_tokens"))  # type: ignore[assignment]
    count_tokens = property(lambda self: self._optional("count_tokens"))  # type: ignore[assignment]
    query_prefix = property(lambda self: self._optional("query_prefix"))  # type: ignore[assignment]
    passage_prefix = property(lambda self: self._optional("passage_prefix"))  # type: ignore[assignment]
    batch_size = property(lambda self: max(int(self._optional("batch_size") or 1), 1))  # type: ignore[assignment]
    concurrency = property(lambda self: max(int(self._optional("concurrency") or 1), 1))  # type: ignore[assignment]
    thread_safe = property(lambda self: bool(self._optional("thread_safe")))  # type: ignore[assignment]
    uses_cores = property(lambda self: bool(self._optional("uses_cores")))  # type: ignore[assignment]
    usage = property(lambda self: self._optional("usage"))  # type: ignore[assignment]
    endpoint = property(lambda self: self._optional("endpoint"))  # type: ignore[assignment]
    rate_limit = property(lambda self: self._optional("rate_limit"))  # type: ignore[assignment]

    def pace_with(self, bucket: Any) -> Any:
        method = getattr(self._inner, "pace_with", None)
        return method(bucket) if callable(method) else None

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._inner.embed_documents(texts)  # type: ignore[attr-defined]

    def embed_query(self, text: str) -> np.ndarray:
        return self._inner.embed_query(text)  # type: ignore[attr-defined]

    def portable_count_tokens(self) -> Callable[[str], int] | None:
        portable = getattr(self._inner, "portable_count_tokens", None)
        return portable() if callable(portable) else None

    def __repr__(self) -> str:
        return repr(self._inner)
