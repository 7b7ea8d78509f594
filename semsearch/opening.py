"""Opening an index: settling the model and chunking it is set up for, or giving up cleanly.

A new index is set up only for a model that answered once (a typo, a wrong token or an
endpoint that is down fails before anything is written); an index that holds nothing
embedded switches to the settings asked for; `rebuild` empties one for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import config, settings
from .embedding.base import BaseEmbedder
from .errors import SemsearchError
from .settings import ChunkSettings

if TYPE_CHECKING:
    from .storage.base import Backend


@dataclass
class SetUp:
    """How opening an index went: the embedder to use (when one was made or given), whether
    the index was set up now, why with this model, and how many records a rebuild dropped."""

    embedder: BaseEmbedder | None
    created: bool = False
    reason: str | None = None
    dropped: int = 0


def set_up(
    backend: Backend,
    model: str | None,
    embedder: BaseEmbedder | None,
    chunking: ChunkSettings | None,
    *,
    rebuild: bool,
    timeout: float,
    make: Callable[[str], BaseEmbedder],
) -> SetUp:
    """Settle an opened index's settings: a new index takes the model and chunking asked for
    (or the default), an empty one set up for others switches to them, `rebuild` empties it
    for them; otherwise they must match (ModelMismatchError). `make` creates an embedder."""
    requested = embedder.model_id if embedder is not None else model
    result = SetUp(embedder)
    if backend.settings().get("model") and rebuild:
        result.embedder = embedder = embedder or make(requested or backend.settings()["model"])
        # Called once first, so that a wrong token or model id fails before anything is deleted.
        embedder.embed_documents(["semsearch"])
        requested = embedder.model_id
        # Emptied and set up for the new model in one transaction: a rebuild killed
        # halfway resumes with the model it was asked for, not the default.
        with backend.writer(timeout) as writer, writer.transaction():
            # Records from add_texts are not files: the folders cannot bring them back.
            result.dropped = backend.record_count()
            writer.clear()
            writer.set_settings(settings.for_new_index(requested, embedder, chunking))
        result.created, result.reason = True, "--rebuild"
    elif unused_with_other_settings(backend, requested, chunking):
        # An index that holds no document yet (its first run failed: no token, a typo)
        # takes the model and chunking asked for now; there is nothing to lose.
        result.embedder = reached(result.embedder, config.choose_model(requested).model, make)
        with backend.writer(timeout) as writer, writer.transaction():
            # Asked again under the lock: a run may have filled it meanwhile.
            if unused_with_other_settings(backend, requested, chunking):
                replaced = backend.settings()["model"]
                choice = config.choose_model(requested)
                writer.clear()
                writer.set_settings(settings.for_new_index(choice.model, embedder, chunking))
                result.created = True
                result.reason = f"{choice.reason}; it held nothing embedded with {replaced}"
    if not backend.settings().get("model"):
        result.embedder = reached(result.embedder, config.choose_model(requested).model, make)
        with backend.writer(timeout) as writer, writer.transaction():
            if not backend.settings().get("model"):
                choice = config.choose_model(requested)
                writer.set_settings(settings.for_new_index(choice.model, embedder, chunking))
                result.created, result.reason = True, result.reason or choice.reason
    settings.check(backend.location, backend.settings(), requested, chunking)
    return result


def reached(embedder: BaseEmbedder | None, model: str, make: Callable[[str], BaseEmbedder]) -> BaseEmbedder | None:
    """The embedder a new index will use, called once if semsearch makes it for a remote
    model: an index is set up only for a model that answered (a typo, a wrong token or an
    endpoint that is down fail here, before anything is written). An embedder given, or the
    bundled model, is not called."""
    if embedder is not None or model == config.LOCAL_MODEL:
        return embedder
    made = make(model)
    made.embed_documents(["semsearch"])
    return made


def unused_with_other_settings(backend: Backend, model: str | None, chunking: ChunkSettings | None) -> bool:
    """Whether the index was set up for another model or chunking but holds no vector: no
    document, or only files whose texts wait for their first vector (its first run failed),
    which the new settings read again in seconds. Records from `add_texts` cannot be read
    again: an index holding any keeps its settings."""
    stored = backend.settings()
    if not (stored.get("model") and settings.differs(stored, model, chunking)):
        return False
    return not backend.has_documents() or (backend.record_count() == 0 and backend.status().vectors == 0)


def abandon(backend: Backend, fresh: bool) -> None:
    """Close a backend whose opening failed. An index that was never set up (its model could
    not be reached, say) is not left behind; one that was is only closed."""
    try:
        never_set_up = fresh and not backend.settings().get("model")
    except SemsearchError:
        never_set_up = False
    (backend.discard if never_set_up else backend.close)()
