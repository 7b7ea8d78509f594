"""Embedding models: the protocol (`base`), the catalogue of known models, the bundled local
model and the remote client for OpenAI-compatible services (`remote`)."""

from __future__ import annotations

from typing import Any

from ..config import LOCAL_MODEL
from ..errors import SemsearchError
from .base import BaseEmbedder


def check_remote_options(options: dict[str, Any]) -> None:
    """Refuse options no remote model takes (a misspelt `craete=False` would otherwise
    pass unnoticed with the local model)."""
    import inspect

    from .remote.client import RemoteEmbedder

    known = set(inspect.signature(RemoteEmbedder).parameters) - {"model_id"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SemsearchError(f"Unknown option {', '.join(unknown)}: the options for a remote model are {', '.join(sorted(known))}.")


def make_embedder(model_id: str, **remote_options: Any) -> BaseEmbedder:
    """The embedder for `model_id`: `local` is the bundled model, anything else is remote.

    `remote_options` go to `RemoteEmbedder` (base_url, api_key, rps, burst, ...).
    """
    if model_id == LOCAL_MODEL:
        from .local import LocalEmbedder

        return LocalEmbedder()
    from .remote.client import RemoteEmbedder

    return RemoteEmbedder(model_id, **remote_options)
