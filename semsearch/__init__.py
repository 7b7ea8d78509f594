"""semsearch: semantic search over local documents.

    import semsearch
    with semsearch.Index.open("path/to/index", model="local") as index:
        index.add(["sample_docs"])
        for hit in index.search("reset my password", limit=5):
            print(hit.score, hit.path, hit.start_line, hit.text)

Names are imported on first use, so `import semsearch` (and the CLI's start) stays fast.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# A library leaves its log records to the program that uses it: without a handler of its
# own, Python's last-resort handler would print semsearch's warnings to every program's
# stderr. The CLI and `serve` set up their own output.
logging.getLogger("semsearch").addHandler(logging.NullHandler())

_EXPORTS = {
    "Index": "index",
    "IndexStatus": "results",
    "IndexStats": "results",
    "Progress": "results",
    "SearchResult": "results",
    "SearchResults": "results",
    "CheckReport": "results",
    "Passage": "results",
    "DocumentLines": "results",
    "Line": "results",
    "Embedder": "embedding.base",
    "BaseEmbedder": "embedding.base",
    "LocalEmbedder": "embedding.local",
    "Usage": "embedding.base",
    "ChunkSettings": "settings",
    "VectorSettings": "settings",
    "embed": "api",
    "copy_index": "api",
    "similarity": "api",
    "models": "api",
    "SemsearchError": "errors",
    "ConfigError": "errors",
    "IndexNotFoundError": "errors",
    "ModelMismatchError": "errors",
    "IndexLockedError": "errors",
    "StorageError": "errors",
    "DocumentError": "errors",
    "DatasetError": "errors",
    "EmbeddingError": "errors",
    "AuthenticationError": "errors",
    "ModelNotFoundError": "errors",
    "RequestTooLargeError": "errors",
    "ServiceError": "errors",
    "NotInIndexError": "errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .api import copy_index, embed, models, similarity
    from .embedding.base import BaseEmbedder, Embedder, Usage
    from .embedding.local import LocalEmbedder
    from .errors import (
        AuthenticationError,
        ConfigError,
        DatasetError,
        DocumentError,
        EmbeddingError,
        IndexLockedError,
        IndexNotFoundError,
        ModelMismatchError,
        ModelNotFoundError,
        NotInIndexError,
        RequestTooLargeError,
        SemsearchError,
        ServiceError,
        StorageError,
    )
    from .index import Index
    from .results import (
        CheckReport,
        DocumentLines,
        IndexStats,
        IndexStatus,
        Line,
        Passage,
        Progress,
        SearchResult,
        SearchResults,
    )
    from .settings import ChunkSettings, VectorSettings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'semsearch' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
