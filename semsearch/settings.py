"""An index's settings: the model, how documents are cut, how vectors are laid out.

They are chosen when an index is created and stored with it (in the backend's settings, as
strings), and every later use is checked against them: vectors of one model cannot be
compared with another's, and chunks cut another way would not match the stored ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from .errors import ModelMismatchError, SemsearchError

if TYPE_CHECKING:
    from .embedding.base import BaseEmbedder

# Exact vector search up to this many vectors; see benchmarks/README.md ("Speed at scale")
# for the Flat latency against N that puts it here.
APPROXIMATE_ABOVE = 25_000
ENCODINGS = ("float32", "sq8")


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut. Stored with the index: changing it means rebuilding."""

    target_tokens: int = 320
    overlap_tokens: int = 48
    # Prefix each chunk's embedded text with the document title and section path.
    context: bool = True
    # Embed each section of a chunk that packs several small ones on its own too, so that a
    # hit is labelled and shown by the section that answers (on heading-dense documents,
    # such as sample_docs/, about a third more to embed).
    section_parts: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ChunkSettings:
        """The settings stored with an index. Keys no longer used are ignored: the first
        versions also stored the chunker's version, which each document's reader version
        now stands for."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass(frozen=True)
class VectorSettings:
    """How the vector index is laid out: when to go approximate, compression, recall target.

    Stored with the index. `approximate_above`: exact search up to this many vectors.
    `encoding`: "float32" or "sq8" (8-bit scalar quantisation: 4× smaller, a little recall
    lost). `recall`: the recall@10 against exact search that an IVF's nprobe must reach on
    its calibration sample.
    """

    approximate_above: int = APPROXIMATE_ABOVE
    encoding: str = "float32"
    recall: float = 0.95

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise SemsearchError(f"Unknown vector encoding {self.encoding!r}: use one of {', '.join(ENCODINGS)}.")
        if self.approximate_above < 1 or not 0 < self.recall <= 1:
            raise SemsearchError("approximate_above must be at least 1 and recall between 0 and 1.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VectorSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass(frozen=True)
class IndexSettings:
    """What an index was set up with, as read from its stored settings."""

    model: str
    dimensions: int | None
    chunking: ChunkSettings
    vectors: VectorSettings

    @classmethod
    def from_stored(cls, stored: dict[str, str]) -> IndexSettings:
        return cls(
            model=stored["model"],
            dimensions=int(stored["dimensions"]) if stored.get("dimensions") else None,
            chunking=ChunkSettings.from_dict(json.loads(stored["chunking"])),
            vectors=VectorSettings.from_dict(json.loads(stored["vectors"])) if stored.get("vectors") else VectorSettings(),
        )


def for_new_index(model: str, embedder: BaseEmbedder | None, chunking: ChunkSettings | None) -> dict[str, str]:
    """The stored values that set an empty index up for `model` and `chunking`."""
    from .embedding.catalogue import model_info

    dimensions = (embedder.dimensions if embedder is not None else None) or model_info(model).dimensions
    return {
        "model": model,
        "dimensions": str(dimensions or ""),
        "chunking": json.dumps((chunking or ChunkSettings()).to_dict()),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def differs(stored: dict[str, str], model: str | None, chunking: ChunkSettings | None) -> bool:
    """Whether an index set up with `stored` was set up for another model or chunking."""
    other_model = model is not None and model != stored["model"]
    other_chunking = chunking is not None and chunking != ChunkSettings.from_dict(json.loads(stored["chunking"]))
    return other_model or other_chunking


def check(location: str, stored: dict[str, str], model: str | None, chunking: ChunkSettings | None) -> None:
    """Refuse a model or chunk settings other than those the index was built with."""
    if model and model != stored["model"]:
        raise ModelMismatchError(
            f"The index at {location} was built with model {stored['model']}, not {model}.",
            hint=f"Open it without a model, use another index for {model}, or rebuild it (rebuild=True) to switch.",
            code="other_model", index=location, built_with=stored["model"], requested=model,
        )
    if chunking is not None and chunking != ChunkSettings.from_dict(json.loads(stored["chunking"])):
        raise ModelMismatchError(
            f"The index at {location} was built with other chunk settings ({stored['chunking']}).",
            hint="Keep its settings, or rebuild it (rebuild=True) to change them.",
            code="other_chunking", index=location,
        )


def check_dimensions(location: str, expected: int, got: int) -> None:
    """Refuse vectors of another size than those the index holds."""
    if got != expected:
        raise ModelMismatchError(
            f"The model returned {got}-dimensional vectors, but the index at {location} holds {expected}-dimensional "
            "ones from a model of the same name.",
            hint=(
                "The model behind that name has changed (another version at the endpoint, or an embedder "
                "configured otherwise): use the one the index was built with; an embedder of your own that "
                "changed should take another model_id."
            ),
            code="other_dimensions", index=location, expected=expected, got=got,
        )

