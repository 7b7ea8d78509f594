"""The MCP server: the index's search and reading as tools for AI assistants and agents.

One server object, put behind stdio by `semsearch mcp` (what desktop assistants launch) and
behind streamable HTTP at /mcp by `semsearch serve`. The tools only read: nothing an agent
calls adds, removes or re-indexes anything. Errors are worded for an agent: the facts and
what it (or the user it works for) can do, never a CLI flag it cannot pass.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from .. import __version__
from ..errors import SemsearchError

if TYPE_CHECKING:
    from ..index import Index
    from ..results import SearchResult

# An agent's question is a sentence or a paragraph; a pasted file would only be cut for the
# model anyway, and a long one costs the keyword search for nothing.
MAX_QUERY_CHARS = 2_000
# A page of results an agent can read through; more is a dump of the index.
MAX_LIMIT = 100
# Lines of a document given when the agent names no end: enough to read a section, not so
# many that one call fills its context.
DOCUMENT_LINES = 200
MAX_CONTEXT = 200

INSTRUCTIONS = (
    "semsearch searches the user's own indexed documents (notes, docs, code, PDFs) by meaning and by keyword. "
    "Use `search` first to find the passages that answer a question, then `read_passage` for more of the text "
    "around a hit, or `read_document` for a range of lines of an indexed file. `index_status` tells which folders "
    "are indexed and how large the index is. Everything is read-only."
)

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class Passage(BaseModel):
    """One hit: where it is, how well it matched, and what it says."""

    chunk_id: int = Field(description="Pass to read_passage to read the text around this passage.")
    path: str = Field(description="The document's path (or the id of a record added from Python).")
    start_line: int = Field(description="First line of the passage in the document's text (1-based).")
    end_line: int = Field(description="Last line of the passage.")
    page: int | None = Field(None, description="PDF page the passage starts on.")
    section: str | None = Field(None, description="Heading path of the section, e.g. 'Install › Linux'.")
    title: str | None = Field(None, description="The document's title, when it has one.")
    format: str | None = Field(None, description="The reader that read it: markdown, pdf, docx, code, ...")
    score: float = Field(description="Relevance; comparable only within one search.")
    snippet: str | None = Field(None, description="The sentence or two of the passage that best answer the query.")
    text: str = Field(description="The passage's full text.")


class SearchAnswer(BaseModel):
    """The passages that best answer a query, best first."""

    results: list[Passage]
    notes: list[str] = Field(default_factory=list, description="What the search did that the caller should know.")
    waiting: int = Field(0, description="Chunks still waiting for their vectors: found by keywords alone until indexing embeds them.")


class Line(BaseModel):
    number: int = Field(description="The line's number in the document, from 1.")
    text: str
    hit: bool = Field(False, description="Whether the line belongs to the passage asked for.")


class PassageInContext(BaseModel):
    """A passage with the lines around it."""

    chunk_id: int
    path: str
    start_line: int = Field(description="The passage's first line.")
    end_line: int = Field(description="The passage's last line.")
    page: int | None = None
    section: str | None = None
    title: str | None = None
    format: str | None = None
    total_lines: int | None = Field(None, description="How many lines the document has (None: it cannot be read now).")
    lines: list[Line] = Field(description="The passage's lines (hit: true) and those around it.")
    notes: list[str] = Field(default_factory=list)


class DocumentRange(BaseModel):
    """Lines of an indexed document."""

    path: str
    start_line: int
    end_line: int = Field(description="The last line given; below total_lines, there is more.")
    total_lines: int
    title: str | None = None
    format: str | None = None
    lines: list[Line]
    notes: list[str] = Field(default_factory=list)


class Status(BaseModel):
    """What the index holds."""

    index: str = Field(description="Where the index is.")
    model: str = Field(description="The embedding model it was built with.")
    documents: int
    chunks: int
    folders: list[str] = Field(description="The indexed folders (and files); searches cover these only.")
    skipped: int = Field(description="Files the last indexing run could not read.")
    skipped_by_reason: dict[str, int]
    disk_bytes: int
    last_indexed: str | None = Field(None, description="When an indexing run last finished (ISO 8601, UTC).")
    waiting_chunks: int = Field(0, description="Chunks written but still waiting for their vectors (the backlog).")


class _Opened:
    """The index, opened on first use and kept open (the model and vector cache stay warm).
    A missing index is looked for again on the next call, so the server may be set up before
    the user indexes anything."""

    def __init__(self, open_index: Callable[[], Index]) -> None:
        self._open = open_index
        self._index: Index | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Index:
        with self._lock:
            if self._index is None:
                self._index = self._open()
            return self._index

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None


def create_server(open_index: Callable[[], Index]) -> MCPServer:
    """The MCP server over the index `open_index()` opens (called once, on first use).

    Tools: search, read_passage, read_document, index_status; all read-only.
    """
    return _server(_Opened(open_index))


def _server(index: _Opened) -> MCPServer:
    server: MCPServer = MCPServer(
        "semsearch", title="semsearch", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    @_tool(server, "Search documents")
    def search(
        query: Annotated[str, Field(max_length=MAX_QUERY_CHARS, description="What to look for, in plain words: a question, a phrase, an error message, a name.")],
        mode: Annotated[Literal["hybrid", "dense", "keyword"], Field(description="hybrid: meaning and keywords (best in general); dense: meaning only (paraphrases, other languages); keyword: exact words (names, codes, identifiers).")] = "hybrid",
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="The most passages to return.")] = 10,
        per_file: Annotated[int, Field(ge=0, description="The most passages from one document (0: no cap).")] = 2,
        path: Annotated[list[str] | None, Field(description="Only documents whose path matches one of these globs: '*.md', 'notes/2024/*', 'drafts/'.")] = None,
        ext: Annotated[list[str] | None, Field(description="Only documents with these extensions: ['md', 'pdf'].")] = None,
        after: Annotated[str | None, Field(description="Only documents modified on or after this date (YYYY-MM-DD).")] = None,
        before: Annotated[str | None, Field(description="Only documents modified before this date (YYYY-MM-DD).")] = None,
        rerank: Annotated[bool | None, Field(description="Rerank the best candidates through the service's rerank model: slower (one more request), often better ordered. Default: as the user configured (SEMSEARCH_RERANK_MODEL).")] = None,
    ) -> SearchAnswer:
        """Search the user's indexed documents for the passages that answer a question.

        Use it whenever the answer may be in the user's own files (notes, documentation, code,
        PDFs, Word files) rather than general knowledge. Returns passages best first, each with
        its file, line range (and PDF page), section, score, a snippet and the full text; cite
        the path and lines. Filters narrow by path glob, extension or modification date.
        """
        with _agent_errors():
            found = index().search(
                query, limit=limit, mode=mode, per_file=per_file or None, path=path or None, ext=ext or None,
                after=after, before=before, rerank=rerank,
            )
        return SearchAnswer(results=[_passage(result) for result in found], notes=list(found.notes), waiting=found.waiting)

    @_tool(server, "Index status")
    def index_status() -> Status:
        """What the index holds: its model, how many documents and chunks, which folders are
        indexed, and how many files could not be read. Use it to know what a search covers
        before concluding that something is not in the user's documents."""
        with _agent_errors():
            info = index().status()
        return Status(
            index=str(info.path), model=info.model, documents=info.documents, chunks=info.chunks, folders=info.roots,
            skipped=len(info.skipped), skipped_by_reason=info.skipped_by_reason, disk_bytes=info.disk_bytes,
            last_indexed=info.last_indexed, waiting_chunks=info.waiting_chunks,
        )

    @_tool(server, "Read a passage in context")
    def read_passage(
        chunk_id: Annotated[int, Field(ge=0, description="A search result's chunk_id.")],
        context: Annotated[int, Field(ge=0, le=MAX_CONTEXT, description="Lines to show before and after the passage.")] = 10,
    ) -> PassageInContext:
        """Read a search hit in its context: the passage's lines (marked hit: true) with the
        lines before and after it in the document. Use it when a hit looks relevant but its
        text is cut short, or to see what leads up to it and follows."""
        with _agent_errors():
            found = index().passage(chunk_id, context=context)
        return PassageInContext.model_validate(found.to_dict())

    @_tool(server, "Read lines of a document")
    def read_document(
        path: Annotated[str, Field(min_length=1, max_length=4_096, description="The document's path as search results give it (or relative to an indexed folder).")],
        start_line: Annotated[int, Field(ge=1, description="First line to read (from 1).")] = 1,
        end_line: Annotated[int | None, Field(ge=1, description=f"Last line to read (default: {DOCUMENT_LINES} lines from start_line).")] = None,
    ) -> DocumentRange:
        """Read a range of lines of a document in the index, e.g. a whole section around a
        search hit or a file's beginning. Only documents in the index can be read; any other
        path is refused. The answer says how many lines the document has, so more can be asked for."""
        last = end_line if end_line is not None else start_line + DOCUMENT_LINES - 1
        with _agent_errors():
            found = index().document(path, start=start_line, end=last)
        answer = DocumentRange.model_validate(found.to_dict())
        if answer.end_line < answer.total_lines and not answer.notes:
            answer.notes.append(
                f"Lines {answer.start_line}-{answer.end_line} of {answer.total_lines}: ask for more from line {answer.end_line + 1}."
            )
        return answer

    return server


def _tool(server: MCPServer, title: str) -> Callable[[Callable], Callable]:
    """Register a read-only tool, its docstring (without the code's indentation) as its description."""

    def register(function: Callable) -> Callable:
        description = inspect.cleandoc(function.__doc__ or "")
        return server.tool(title=title, description=description, annotations=_READ_ONLY)(function)

    return register


def _passage(result: SearchResult) -> Passage:
    return Passage(
        chunk_id=result.chunk_id, path=result.path, start_line=result.start_line, end_line=result.end_line,
        page=result.page, section=result.section, title=result.title, format=result.format,
        score=round(float(result.score), 6), snippet=result.snippet, text=result.text,
    )


@contextmanager
def _agent_errors() -> Iterator[None]:
    """Turns semsearch's errors into tool errors an agent can act on."""
    try:
        yield
    except SemsearchError as error:
        raise ToolError(message(error)) from None


# The library's hint speaks of Python calls and the CLI's of flags; an agent can retry, or
# ask the user to run a command. Codes without an entry are told as the library words them
# (a bad date names the parameter, after= or before=, as the tool does).
_ADVICE: dict[str, str] = {
    "index_not_found": "Ask the user to index their folders with `semsearch index FOLDER`, then search again.",
    "index_locked": "Another program is writing to the index; try again in a moment.",
    "storage": "Ask the user to run `semsearch check` on the index.",
    "damaged": "The index is damaged: ask the user to run `semsearch check` and index their folders again.",
    "document_not_found": "Only documents in the index can be read: give a path as search results name it.",
    "document_unreadable": "Ask the user to index its folder again if it moved or was deleted.",
}


def message(error: SemsearchError) -> str:
    """What an agent is told for `error`: the library's facts, with advice it can follow."""
    advice = _ADVICE.get(error.code)
    return f"{error.message} {advice}" if advice else str(error)


def run_stdio(open_index: Callable[[], Index]) -> None:
    """Serve the tools over stdin and stdout until the client closes them."""
    index = _Opened(open_index)
    try:
        _server(index).run("stdio")
    finally:
        index.close()


def http_endpoint(
    index: Index, *, hosts: Iterable[str], origins: Iterable[str] = (), path: str = "/mcp", max_body_bytes: int = 64 * 1024,
) -> tuple[list[Any], Callable[[], AbstractAsyncContextManager[None]]]:
    """The tools over streamable HTTP at `path`, for a server's application: its routes
    (Starlette's), and what its lifespan must run around them (the SDK's session manager).

    `hosts` are the names the server answers to (the Host header without its port) and
    `origins` those whose pages may call it besides the server's own: the SDK's transport
    security refuses any other Host (421) or Origin (403), as the server's own checks do.
    Stateless, with JSON answers: every request stands alone, so nothing piles up per client.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    names = sorted({name.lower().strip("[]") for name in hosts})
    shown = [f"[{name}]" if ":" in name else name for name in names]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*shown, *(f"{name}:*" for name in shown)],
        allowed_origins=[
            *(f"{scheme}://{name}{port}" for scheme in ("http", "https") for name in shown for port in ("", ":*")),
            *origins,
        ],
    )
    server = create_server(lambda: index)
    app = server.streamable_http_app(
        streamable_http_path=path, stateless_http=True, json_response=True, transport_security=security,
        max_request_body_size=max_body_bytes,
    )
    return list(app.routes), server.session_manager.run


def serve_app(index: Index, settings: Any) -> Any:
    """`semsearch serve`'s application (`settings` a ServeSettings) with the tools at /mcp,
    behind the server's own checks (Host, Origin, token, sizes) and the SDK's."""
    from .http import create_app

    routes, lifespan = http_endpoint(
        index, hosts=settings.host_names(), origins=settings.cors, max_body_bytes=settings.max_body_bytes
    )
    return create_app(index, settings, routes=routes, lifespan=lambda app: lifespan())
