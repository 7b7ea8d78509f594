"""What the library hands back: search results, the report of an indexing run, an index's
status and the findings of a check."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .embedding.base import Usage
    from .readers.walk import Ignored, Skipped


@dataclass
class SearchResult:
    """One passage that answers a query: where it is, how well it matched, what it says."""

    path: str
    score: float
    text: str
    start_line: int
    end_line: int
    chunk_id: int
    title: str | None = None
    section: str | None = None
    page: int | None = None
    start_char: int = 0
    end_char: int = 0
    metadata: dict[str, Any] | None = None
    # The reader that read the document: "markdown", "pdf", "docx", "code", ...; for PDF and
    # Word files, lines count the extracted text, which no editor shows (pages do).
    format: str | None = None
    # With explain=True: each ranking's rank and score for this chunk, and how they fused
    # (and with reranking, the first-stage rank, the reranker's score and the blend).
    explain: dict[str, Any] | None = None
    # Asked to rerank: True when `score` is the blend of the first stage and the reranker,
    # False when reranking failed and the first-stage order stands; None when not asked.
    reranked: bool | None = None
    # The query this result answers. `snippet` and `highlights` are worked out from it on
    # first use: a caller that reads only paths or texts does not pay for them (about
    # 60 µs a result, more than a dense search at 100k chunks takes; benchmarks/README.md).
    query: str | None = field(default=None, repr=False, compare=False)
    # For a chunk that holds several sections: each as (start, end) in `text`, its heading
    # path, and its cosine similarity to the query (None without a query vector). The snippet
    # comes from the part that answers best, and `section` names it.
    parts: list[tuple[int, int, str | None, float | None]] | None = field(default=None, repr=False, compare=False)

    @property
    def snippet(self) -> str | None:
        """The best sentence or two of `text` for the query (see `text.snippets.best_snippet`)."""
        return self._snippet()[0]

    @property
    def highlights(self) -> list[list[int]] | None:
        """[start, end] offsets into `text` of the query's words, in order."""
        return self._snippet()[1]

    def _snippet(self) -> tuple[str | None, list[list[int]] | None]:
        # Worked out again if the query or the text was changed since.
        found = self.__dict__.get("_snippet_for")
        if found is None or found[0] != self.query or found[1] is not self.text:
            from .text.snippets import best_snippet

            best = self._best_part()
            within = (best[0], best[1]) if best else None
            worked_out = best_snippet(self.text, self.query, within=within) if self.query else (None, None)
            found = self.__dict__["_snippet_for"] = (self.query, self.text, worked_out)
        return found[2]

    def _best_part(self) -> tuple[int, int, str | None, float | None] | None:
        scored = [part for part in self.parts or () if part[3] is not None]
        return max(scored, key=lambda part: part[3] or 0.0) if scored else None

    def _section_shown(self) -> str | None:
        """The heading path of the part of the chunk the snippet is from."""
        stored = self.__dict__.get("_section")
        if not self.parts or not self.query:
            return stored
        snippet = self.snippet
        at = self.text.find(snippet) if snippet else -1
        for start, end, section, _ in self.parts:
            if start <= at < end:
                return section
        return stored

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        del values["query"]
        del values["parts"]
        values["snippet"], values["highlights"] = self._snippet()
        return values


class SearchResults(list):
    """The results of a search, best first (a list of `SearchResult`), with `notes`: what
    the search did that its caller should know (the query was cut for the model, ...)."""

    def __init__(self, results=(), notes: list[str] | None = None, reranked: bool | None = None, waiting: int = 0) -> None:
        super().__init__(results)
        self.notes: list[str] = notes or []
        # As each result's `reranked`: whether the order is the reranker's blend (None: not asked).
        self.reranked = reranked
        # Chunks of the index still waiting for their vectors (found by keywords alone).
        self.waiting = waiting

    def to_dict(self) -> dict[str, Any]:
        """As JSON: `results`, each as `search --json` prints it, the `notes`, and how many
        chunks were `waiting` for their vectors."""
        return {"results": [result.to_dict() for result in self], "notes": list(self.notes), "waiting": self.waiting}


# `section` is worked out with the snippet when the chunk holds several sections, and is
# stored as given otherwise; a property over the dataclass field keeps the constructor.
SearchResult.section = property(  # type: ignore[assignment]
    SearchResult._section_shown, lambda self, value: self.__dict__.__setitem__("_section", value)
)


@dataclass
class Line:
    """One line of a document, numbered from 1; `hit` marks the lines of the passage asked for."""

    number: int
    text: str
    hit: bool = False


@dataclass
class Passage:
    """A chunk in its context: the chunk's facts and the document's lines around it, the
    chunk's own lines marked. `notes` say when the lines are not the file as indexed (it
    changed since, or cannot be read now and only the chunk's text is shown)."""

    chunk_id: int
    path: str
    start_line: int
    end_line: int
    text: str
    lines: list[Line]
    title: str | None = None
    section: str | None = None
    page: int | None = None
    format: str | None = None
    total_lines: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DocumentLines:
    """Lines `start_line` to `end_line` of an indexed document (fewer at its end), of `total_lines`."""

    path: str
    start_line: int
    end_line: int
    total_lines: int
    lines: list[Line]
    title: str | None = None
    format: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexStats:
    """What an `add` run did."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    # Left out on purpose (hidden, dependency folders, ignore rules): counted, not a problem.
    ignored: list[Ignored] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    usage: Usage | None = None
    # Indexed folders (or files) not found by an update of every folder (an unmounted drive,
    # a moved folder): their documents are kept as they were.
    missing: list[str] = field(default_factory=list)
    # Indexed folders the run took besides those it was given: the first run after a
    # rebuild brings back every folder, as the rebuild emptied them all.
    also: list[str] = field(default_factory=list)
    # The first run after a rebuild: folders `missing` were emptied, not kept.
    rebuilt: bool = False
    # Texts still waiting for their vectors when the run ended (another indexer's, or left
    # for the next run by a time limit on the backlog).
    waiting: int = 0

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return by_reason(self.skipped)

    @property
    def ignored_by_reason(self) -> dict[str, int]:
        return by_reason(self.ignored)

    def to_dict(self, *, files: bool = False) -> dict[str, Any]:
        """As JSON; with `files`, the skipped and ignored files too, each with its reason."""
        listed = {
            "skipped_files": [{"path": item.path, "reason": item.reason} for item in self.skipped],
            "ignored_files": [{"path": item.path, "reason": item.reason} for item in self.ignored],
        } if files else {}
        return {
            "new": self.new, "changed": self.changed, "unchanged": self.unchanged,
            "removed": self.removed, "skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason,
            "ignored": len(self.ignored), "ignored_by_reason": self.ignored_by_reason,
            "chunks_added": self.chunks_added, "chunks_removed": self.chunks_removed,
            "chunks_embedded": self.chunks_embedded, "chunks_reused": self.chunks_reused,
            "seconds": round(self.seconds, 3),
            "usage": self.usage.__dict__ if self.usage else None,
            "missing": self.missing,
            "also": self.also,
            "rebuilt": self.rebuilt,
            "waiting": self.waiting,
        } | listed


def by_reason(items: Iterable[Skipped | Ignored]) -> dict[str, int]:
    """How many items per kind of reason, most common first."""
    return count_reasons(item.reason for item in items)


def count_reasons(reasons: Iterable[str]) -> dict[str, int]:
    """How many times each kind of reason occurs, most common first."""
    counts: dict[str, int] = {}
    for reason in reasons:
        kind = reason_kind(reason)
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def reason_kind(reason: str) -> str:
    """A reason without the particulars that follow it: "too large (25 MB, limit 20 MB)" and
    "unreadable: Permission denied" are "too large" and "unreadable", so files group by kind."""
    return re.split(r" \(|: ", reason, maxsplit=1)[0]


@dataclass(frozen=True)
class Progress:
    """Reported after each commit: documents written (and searchable by keywords) out of
    those to read, chunks embedded, and texts still waiting for their vectors; and once every
    document is done, each further step that may take a while ("saving the vector cache"),
    as `step`."""

    done: int
    total: int
    chunks_embedded: int
    step: str | None = None
    waiting: int = 0


ProgressCallback = Callable[[Progress], None]


@dataclass
class IndexStatus:
    """What an index holds and what it costs on disk."""

    path: str
    model: str
    dimensions: int | None
    documents: int
    chunks: int
    vectors: int
    roots: list[str]
    disk_bytes: int
    index_type: str
    chunking: dict[str, Any] = field(default_factory=dict)
    # Files the last run over each folder could not index: {"path", "reason"} each.
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    # The FAISS cache as last saved: vectors it holds, layout parameters, bytes it takes in
    # memory when fully loaded (a search maps the file and reads only what it probes) and on disk.
    index_vectors: int = 0
    index_layout: dict[str, Any] = field(default_factory=dict)
    index_memory_bytes: int = 0
    index_disk_bytes: int = 0
    # When an indexing run last finished (ISO 8601, UTC), None before the first.
    last_indexed: str | None = None
    # Chunks written but waiting for their vectors (found by keywords only until then), and
    # the distinct texts they wait for: the backlog the next indexing run embeds.
    waiting_chunks: int = 0
    waiting_texts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CheckReport:
    """What `Index.check` found, and what it repaired."""

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What to do about problems that `repair` cannot fix (a damaged database file), with a
    # code and the values it names, for front ends that word it themselves.
    advice: str | None = None
    advice_code: str | None = None
    advice_details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems or bool(self.repaired)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "repaired": self.repaired, "notes": self.notes, "advice": self.advice}
