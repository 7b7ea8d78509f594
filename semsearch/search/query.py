"""The parts of a search around its ranking: the arguments checked, the query fitted to the
model and embedded beside the storage's own preparation, the sections of multi-section chunks
scored, and notes on what the search could not do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import config
from ..errors import SemsearchError
from ..text.checks import check_text
from . import MODES

if TYPE_CHECKING:
    import numpy as np

    from ..embedding.base import BaseEmbedder
    from ..storage.base import Backend

# The most results one search returns: more is a dump of the index, not a ranking (and the
# candidates each retriever reads grow with it).
MAX_RESULTS = 10_000


def check_arguments(query: Any, limit: Any, mode: str, per_file: Any, path: str | Sequence[str] | None) -> None:
    """Refuse a search that cannot be run, saying what to give instead."""
    if not isinstance(query, str):
        raise SemsearchError(f"The query must be a string, not {type(query).__name__}.")
    if not query.strip():
        raise SemsearchError("The query is empty: say what you are looking for.", code="empty_query")
    check_text(query, "The query")
    for pattern in [path] if isinstance(path, str) else (path or []):
        check_text(pattern, "A path filter")
    if not isinstance(limit, int) or not (per_file is None or isinstance(per_file, int)):
        raise SemsearchError("limit must be a whole number, and per_file a whole number or None.")
    if mode not in MODES:
        raise SemsearchError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.", code="unknown_mode")
    if limit < 0 or (per_file or 0) < 0:
        raise SemsearchError(f"limit and per_file must be 0 or more (per_file None: no cap), not {limit} and {per_file}.")
    if limit > MAX_RESULTS:
        raise SemsearchError(f"limit may be at most {MAX_RESULTS:,}, not {limit:,}.", code="limit_too_large", limit=limit)


def reranking(rerank: bool | None, depth: int, given: bool) -> bool:
    """Whether a search reranks: as asked, else when a reranker was `given` or one is configured."""
    if not isinstance(depth, int) or not 1 <= depth <= MAX_RESULTS:
        raise SemsearchError(f"rerank_depth must be a whole number from 1 to {MAX_RESULTS:,}, not {depth!r}.")
    if rerank is None:
        return given or bool(config.setting("SEMSEARCH_RERANK_MODEL"))
    return bool(rerank)


def fitted(embedder: BaseEmbedder, query: str, notes: list[str]) -> str:
    """The query as the model can take it: cut to its input limit (the model would
    take minutes over a pasted page, and look only at its beginning anyway), saying so
    in `notes`. Keyword search takes all of it."""
    if not embedder.max_tokens or len(query) <= embedder.max_tokens // 2:
        return query
    from ..text.chunking import estimate_tokens, fit_to_tokens

    limit = max(embedder.max_tokens - 8 - estimate_tokens(embedder.query_prefix), 8)
    cut = fit_to_tokens(query, limit, embedder.count_tokens)
    if cut != query:
        notes.append(
            f"The query is longer than the model takes ({embedder.max_tokens} tokens): its meaning was read from "
            f"its first {len(cut):,} of {len(query):,} characters; keyword search used all of it."
        )
    return cut


def waiting_note(waiting: int, mode: str) -> str:
    if mode == "dense":
        return (
            f"{waiting:,} chunks are still waiting for their vectors: dense search cannot find them yet "
            "(hybrid and keyword search do); `semsearch index` embeds them."
        )
    return (
        f"{waiting:,} chunks are still waiting for their vectors: they were ranked by their keywords alone; "
        "`semsearch index` embeds them."
    )


def attach_parts(backend: Backend, results: list, vector: np.ndarray | None) -> None:
    """Give each result whose chunk holds several sections those sections, scored against
    the query's vector when there is one, so its snippet and label come from the one that
    answers (the chunk's vector speaks for all of them together)."""
    if not results:
        return
    found = backend.chunk_parts([result.chunk_id for result in results])
    if not found:
        return
    import numpy as np

    query = None if vector is None else np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(query)) if query is not None else 0.0
    for result in results:
        parts = found.get(result.chunk_id)
        if not parts:
            continue
        scored = []
        for start, end, section, part_vector in parts:
            score = None
            if query is not None and norm and len(part_vector) == len(query):
                score = float(part_vector @ query / ((float(np.linalg.norm(part_vector)) or 1.0) * norm))
            scored.append((start - result.start_char, end - result.start_char, section, score))
        result.parts = scored


def started(function: Callable, *args: Any) -> Callable[[], Any]:
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
