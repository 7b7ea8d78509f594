"""One-call helpers: embed texts, compare two texts, list the models."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import config, embedding
from .embedding.base import BaseEmbedder, conform
from .embedding.catalogue import KNOWN_MODELS
from .errors import SemsearchError
from .text.checks import check_path, check_text

if TYPE_CHECKING:
    import numpy as np

_shared: dict[tuple, BaseEmbedder] = {}


def get_embedder(model: str | None = None, remote_options: dict[str, Any] | None = None) -> BaseEmbedder:
    """The embedder for `model`, shared by every call in this process (one pacing, one usage count)."""
    import hashlib

    remote_options = remote_options or {}
    model_id = model or config.choose_model().model
    # The environment's endpoint and token are part of the key (a program may change them),
    # the token only as a digest, and options are kept the same way.
    settings = {"base_url": config.base_url(), "api_key": config.api_token(), **remote_options}
    key = (model_id,) + tuple(
        (name, hashlib.sha256(str(value).encode()).hexdigest() if name == "api_key" else value)
        for name, value in sorted(settings.items())
    )
    if key not in _shared:
        _shared[key] = conform(embedding.make_embedder(model_id, **remote_options))
    return _shared[key]


def embed(texts: list[str] | str, model: str | None = None, *, query: bool = False, **remote_options: Any) -> np.ndarray:
    """Embed `texts` as passages (or as search queries with `query=True`).

    Returns a float32 array of shape (len(texts), dimensions); a single string gives
    shape (dimensions,). `model` defaults as for a new index (local without a token).
    """
    for position, text in enumerate([texts] if isinstance(texts, str) else texts):
        if not isinstance(text, str):
            raise SemsearchError(f"Text {position} is a {type(text).__name__}, not a string.", code="not_text")
        if not text.strip():
            # A service refuses blank input, and a vector of nothing would compare as noise.
            raise SemsearchError(f"Text {position} is empty: give words to embed.", code="empty_text")
        check_text(text, f"Text {position}")
    embedder = get_embedder(model, remote_options)
    if isinstance(texts, str):
        return embedder.embed_query(texts) if query else embedder.embed_documents([texts])[0]
    texts = list(texts)
    if query and texts:
        import numpy as np

        return np.stack([embedder.embed_query(text) for text in texts])
    return embedder.embed_documents(texts)


def similarity(a: str, b: str, model: str | None = None, **remote_options: Any) -> float:
    """The cosine similarity of two texts under `model`, from -1 to 1."""
    import numpy as np

    vectors = embed([a, b], model, **remote_options)
    norms = np.linalg.norm(vectors, axis=1)
    if not norms.all():
        return 0.0
    return float(vectors[0] @ vectors[1] / (norms[0] * norms[1]))


@dataclass(frozen=True)
class ModelListing:
    """A model semsearch can use: where it runs and what is known about it."""

    model_id: str
    where: str  # "local" or the endpoint URL
    dimensions: int | None
    max_tokens: int | None
    description: str
    # "embedding", or "rerank" for a model `search --rerank` can use.
    kind: str = "embedding"


def models(*, remote: bool = True, **remote_options: Any) -> list[ModelListing]:
    """The bundled local model, and with a token, the embedding and rerank models the endpoint lists.

    Raises AuthenticationError or ServiceError when the endpoint cannot be asked.
    """
    local = KNOWN_MODELS[config.LOCAL_MODEL]
    listings = [ModelListing(local.model_id, "local", local.dimensions, local.max_tokens, local.description)]
    if remote and (remote_options.get("api_key") or config.api_token()):
        from .embedding.remote.client import RemoteEmbedder
        from .embedding.remote.rerank import is_rerank_model

        client = RemoteEmbedder(config.DEFAULT_REMOTE_MODEL, **remote_options)
        base_url = remote_options.get("base_url") or config.base_url()
        for model_id in client.list_models():
            if is_rerank_model(model_id):
                listings.append(ModelListing(model_id, base_url, None, None, "reranks search results", "rerank"))
                continue
            info = KNOWN_MODELS.get(model_id)
            if info is None and not _looks_like_embedding_model(model_id):
                continue
            listings.append(
                ModelListing(
                    model_id, base_url, info.dimensions if info else None,
                    info.max_tokens if info else None, info.description if info else "",
                )
            )
    return listings


def _looks_like_embedding_model(model_id: str) -> bool:
    lowered = model_id.lower()
    return any(word in lowered for word in ("embed", "bge", "e5", "mpnet", "minilm", "sentence-transformers", "gte", "nomic"))


def copy_index(source: str | os.PathLike, destination: str | os.PathLike, *, progress: Callable[[int], None] | None = None) -> int:
    """Copy the index at `source` to `destination` (folders or postgresql:// URLs, in any
    combination) with its vectors: nothing is embedded again. The destination is created
    when missing and must hold no documents. Returns how many documents were copied;
    `progress` hears the count as it grows.

    Raises IndexNotFoundError for a missing source, SemsearchError for a destination that
    holds documents or another model, StorageError.
    """
    from .storage import open_backend
    from .storage.copying import copy_index as copy

    check_path(source, "The source index")
    check_path(destination, "The destination index")
    origin = open_backend(source, create=False)
    try:
        target = open_backend(destination, create=True)
        try:
            return copy(origin, target, progress=progress)
        finally:
            target.close()
    finally:
        origin.close()
