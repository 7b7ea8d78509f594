"""The `semsearch` command: parse options, call the library, print. No indexing or search logic here."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__, config
from ..search import MODES


class _Group(click.Group):
    """Turns semsearch's errors into one clear line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        from ..errors import SemsearchError

        try:
            return super().invoke(ctx)
        except SemsearchError as exc:
            from .advice import message

            raise click.ClickException(message(exc, ctx.invoked_subcommand)) from None
        except KeyboardInterrupt:
            writing = ctx.invoked_subcommand in ("index", "remove", "check")
            more = " Everything committed so far is kept; run the command again to continue." if writing else ""
            click.echo(f"\nInterrupted.{more}", err=True)
            sys.exit(130)


_INDEX_HELP = (
    "Index folder, or a postgresql:// URL. Default: $SEMSEARCH_INDEX, else the 'default' index in your data folder."
)


class _IndexLocation(click.Path):
    """A folder, or a database URL kept as it is (a path would fold its `//`)."""

    name = "index"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.lower().startswith(("postgresql://", "postgres://")):
            return value
        return super().convert(value, param, ctx)


_INDEX_TYPE = _IndexLocation(file_okay=False, path_type=Path)


@click.group(cls=_Group)
@click.option("--index", "index_path", type=_INDEX_TYPE, help=_INDEX_HELP)
@click.version_option(__version__, prog_name="semsearch")
@click.pass_context
def cli(ctx: click.Context, index_path: Path | None) -> None:
    """Semantic search over your documents: index folders, then ask in plain words."""
    ctx.obj = index_path
    _show_warnings()
    if os.environ.get("NO_COLOR"):
        # https://no-color.org: any value turns colour off, also on a terminal.
        ctx.color = False


class _Warnings(logging.Handler):
    """The library's warnings (a request being retried, and why) as lines on stderr,
    written where stderr is at the moment, so that each command's own stream gets them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


def _show_warnings() -> None:
    logger = logging.getLogger("semsearch")
    if not any(isinstance(handler, _Warnings) for handler in logger.handlers):
        logger.addHandler(_Warnings(logging.WARNING))


def _index_option(function):
    """`--index` after the command name too (`semsearch search --index DIR QUERY`); it wins
    over one given before it."""

    def remember(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.obj = value

    return click.option(
        "--index", "index_path", type=_INDEX_TYPE, expose_value=False,
        callback=remember, is_eager=True, help=_INDEX_HELP,
    )(function)


def _open(ctx: click.Context | None, *, create: bool = False, path: Path | None = None, **options: Any):
    from ..index import Index

    return Index.open(path or (ctx.obj if ctx else None), create=create, **options)


def _remote_options(rps: float | None, burst: int | None) -> dict[str, Any]:
    # Checked before anything is created (an index, a client).
    if rps is not None and not (0 < rps < float("inf")):
        raise click.BadParameter(f"must be a number greater than zero, not {rps}.", param_hint="--rps")
    if burst is not None and burst < 1:
        raise click.BadParameter(f"must be at least 1, not {burst}.", param_hint="--burst")
    return {key: value for key, value in (("rps", rps), ("burst", burst)) if value is not None}


def _relative(path: str) -> str:
    """`path` relative to the working folder when it lies below it, else as it is."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _show_path(path: str) -> str:
    return _visible(_relative(path), newlines=True)


# Control characters in documents or file names, shown escaped: printed raw, an escape
# sequence in a file could retitle, clear or recolour the terminal, or fake a line of output.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n"}
# In a name, a newline or tab would also break the line the name is on.
_NAME_CONTROLS = {**_CONTROLS, ord("\n"): "\\n", ord("\t"): "\\t"}


def _visible(text: str, *, newlines: bool = False) -> str:
    return text.translate(_NAME_CONTROLS if newlines else _CONTROLS)


def _say_endpoint(embedder) -> None:
    """Name the service a command is about to talk to, once, on stderr (never the token)."""
    if embedder.endpoint:
        click.echo(f"Model {embedder.model_id} at {embedder.endpoint}.", err=True)


def _say_reranker(reranker) -> None:
    """Name the service reranking goes to, on stderr (never the token)."""
    endpoint = getattr(reranker, "endpoint", None)
    if endpoint:
        model = f" with {reranker.model_id}" if reranker.model_id else ""
        click.echo(f"Reranking{model} at {endpoint}.", err=True)


def _json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


rate_options = [
    click.option("--rps", type=float, help="Requests per second allowed by your contract (default 5)."),
    click.option("--burst", type=int, help="Burst size allowed by your contract (default 10)."),
]


def _with(options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@cli.command("index")
@_index_option
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", help="Embedding model for a new index: 'local' or a remote model id.")
@click.option("--force", is_flag=True, help="Embed everything again, changed or not.")
@click.option("--rebuild", is_flag=True, help="Empty the index and index its folders again (to change --model).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="List every skipped and ignored file with its reason.")
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching this gitignore-style pattern, e.g. '*.md' (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out files and folders matching this pattern, e.g. 'drafts/' (repeatable).")
@click.option("--max-file-size", metavar="SIZE", help="Skip larger files: 500KB, 20MB, 1GB; a bare number is MB (0: no limit). Remembered for the folders named; default 20MB.")
@_with(rate_options)
@click.pass_context
def index_command(ctx, paths, model, force, rebuild, as_json, verbose, include, exclude, max_file_size, rps, burst):
    """Index the documents in PATHS (folders or files).

    Run it again to pick up changes: only new and changed files are embedded, and files
    that are gone are dropped. Without PATHS, every folder already in the index is updated.
    Hidden files, dependency and build folders, and whatever .gitignore and .semsearchignore
    files rule out are left alone. --include and --exclude are remembered for the folders
    named, and later runs apply them until other patterns are given (giving either replaces
    both; --include '*' takes every file again).
    """
    from ..readers.walk import parse_size, resolve_roots

    limit = "remembered" if max_file_size is None else parse_size(max_file_size) or None
    resolve_roots(list(paths))  # a mistyped folder is reported before any index is created
    # Without PATHS there is nothing to create an index for: only an existing one is updated.
    with _open(ctx, create=bool(paths), model=model, rebuild=rebuild, **_remote_options(rps, burst)) as index:
        if index.created and not as_json:
            click.echo(f"New index at {index.path} using model {index.model} ({index.model_reason}).", err=True)
        if index.dropped_records:
            click.echo(
                f"The rebuild dropped {index.dropped_records} records added with add_texts: add them again.", err=True
            )
        _say_endpoint(index.embedder)
        try:
            with _progress(enabled=not as_json and sys.stderr.isatty()) as progress:
                stats = index.add(
                    list(paths), force=force, progress=progress, max_file_size=limit, include=include, exclude=exclude
                )
        except KeyboardInterrupt:
            if not rebuild:
                raise
            # Running --rebuild again would empty the index again and lose what this run paid for.
            click.echo(
                "\nInterrupted. Everything committed so far is kept; run `semsearch index` (without --rebuild) to continue.",
                err=True,
            )
            sys.exit(130)
        if as_json:
            _json(stats.to_dict(files=verbose))
            return
        _print_stats(stats, verbose)


@cli.command()
@_index_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--poll", is_flag=True, help="Look for changes every 300 ms instead of waiting for the system's events (network drives, WSL, containers).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line for each update.")
@_with(rate_options)
@click.pass_context
def watch(ctx, paths, poll, as_json, rps, burst):
    """Keep the index current as files change, until Ctrl-C.

    Watches PATHS (folders already in the index, or new ones to add), or without PATHS
    every folder in the index. It first catches up with what changed while nothing was
    watching, then applies each burst of changes as an ordinary update: only changed text
    is embedded, moved files keep their vectors, editors' temporary files are left alone.
    Prints a line per update that changed something, and nothing while nothing does.
    """
    import signal

    update, notice = _watch_printers(as_json)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with _open(ctx, create=bool(paths), **_remote_options(rps, burst)) as index:
            _say_endpoint(index.embedder)
            index.watch(list(paths) or None, poll=poll, on_update=update, on_notice=notice)
    except KeyboardInterrupt:
        click.echo("\nStopped watching. What changed meanwhile is picked up by the next `semsearch watch` or `semsearch index`.", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _watch_printers(as_json: bool, *, stream_err: bool = False):
    """What `watch` (and `serve --watch`) print: a line per update that changed something, on
    stdout (on stderr when `stream_err`, as a server's stdout is not for people), and each
    notice on stderr; JSON lines with `as_json`."""
    import time as clock

    def update(done) -> None:
        if as_json:
            click.echo(json.dumps(done.to_dict(), ensure_ascii=False))
            return
        stats = done.stats
        files = stats.new + stats.changed
        parts = f"{stats.new} new, {stats.changed} changed, {stats.removed} removed"
        if stats.skipped:
            parts += f", {len(stats.skipped)} skipped"
        click.echo(
            f"{clock.strftime('%H:%M:%S')} updated {files} file{'s' if files != 1 else ''} ({parts}; "
            f"{stats.chunks_embedded} chunks embedded, {stats.chunks_reused} reused) in {done.seconds:.1f} s",
            err=stream_err,
        )

    def notice(said) -> None:
        if as_json:
            click.echo(json.dumps(said.to_dict(), ensure_ascii=False))
        else:
            more = " Ctrl-C stops." if said.kind == "watching" and not stream_err else ""
            click.echo(f"{clock.strftime('%H:%M:%S')} {said.message}{more}", err=True)

    return update, notice


class _progress:
    """One line of progress on stderr when it is a terminal (a no-op otherwise), for both
    stages: documents written (searchable by keywords from then on) and texts embedded."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = ""
        self.drawn_at = 0.0

    def __enter__(self):
        return self if self.enabled else None

    def __call__(self, event) -> None:
        import time as clock

        if event.step:
            # What follows the writes gets a line of its own, so that a finished line does
            # not look like a run that hangs.
            self._end()
            click.echo(f"{event.step[:1].upper()}{event.step[1:]}…", err=True)
            return
        if event.total == 0 and not event.waiting and not event.chunks_embedded:
            return
        line = f"Indexing: {event.done:,}/{event.total:,} documents written, {event.chunks_embedded:,} chunks embedded"
        if event.waiting:
            line += f", {event.waiting:,} waiting"
        now = clock.monotonic()
        if line != self.shown and (now - self.drawn_at > 0.2 or event.done == event.total and not event.waiting):
            click.echo(f"\r\x1b[2K{line}", err=True, nl=False)
            self.shown, self.drawn_at = line, now

    def _end(self) -> None:
        if self.shown:
            click.echo("", err=True)
            self.shown = ""

    def __exit__(self, *exc_info) -> None:
        self._end()


def _print_stats(stats, verbose: bool) -> None:
    files = stats.new + stats.changed + stats.unchanged
    click.echo(
        f"Indexed {files} file{'s' if files != 1 else ''} in {stats.seconds:.1f} s: {stats.new} new, {stats.changed} changed, "
        f"{stats.unchanged} unchanged, {stats.removed} removed, {len(stats.skipped)} skipped."
    )
    click.echo(f"Chunks: {stats.chunks_added} written ({stats.chunks_embedded} embedded, {stats.chunks_reused} reused), {stats.chunks_removed} removed.")
    if stats.waiting:
        # Another indexer of a shared index is embedding them; its commits bring them in.
        click.echo(f"{stats.waiting} texts still wait for their vectors, which another indexing run is computing.")
    if stats.skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in stats.skipped_by_reason.items())
        click.echo(f"Skipped: {reasons}.")
        if verbose:
            for item in sorted(stats.skipped, key=lambda item: (item.reason, item.path)):
                click.echo(f"  {_show_path(item.path)}: {item.reason}")
    if stats.ignored:
        reasons = ", ".join(f"{count} {reason}" for reason, count in stats.ignored_by_reason.items())
        click.echo(f"Ignored: {reasons}.")
        if verbose:
            for item in stats.ignored:
                click.echo(f"  {_show_path(item.path)}: {item.reason}")
    if stats.also:
        click.echo(
            "Also indexed, as the rebuild emptied every folder: " + ", ".join(_show_path(root) for root in stats.also) + ".",
            err=True,
        )
    for root in stats.missing:
        import shlex

        kept = "The rebuild emptied it" if stats.rebuilt else "Its documents are kept as they were"
        click.echo(
            f"Not found: {_show_path(root)}. {kept}; `semsearch remove {shlex.quote(_show_path(root))}` "
            "forgets it, and `semsearch index` takes it again once it is back.",
            err=True,
        )
    usage = stats.usage
    if usage and usage.requests:
        click.echo(
            f"Remote usage: {usage.requests} requests, {usage.inputs} inputs, {usage.prompt_tokens} tokens, "
            f"{usage.retries} retries, {usage.rate_limited} rate-limited, {usage.seconds:.1f} s in requests."
        )


@cli.command()
@_index_option
@click.argument("query")
@click.option("--limit", "-n", type=click.IntRange(min=1, max=10_000), default=10, show_default=True, help="Most results to show.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True,
              help="Meaning and keywords fused, meaning only, or keywords only (BM25).")
@click.option("--per-file", type=click.IntRange(min=0), default=2, show_default=True,
              help="Most results from one file (0: no limit).")
@click.option("--path", "paths", multiple=True, help="Only files matching this glob (repeatable): '*.md', 'notes/2024/*', 'drafts/' (in a folder of that name).")
@click.option("--ext", "extensions", multiple=True, help="Only these extensions: --ext md,pdf.")
@click.option("--after", help="Only files modified on or after this date (YYYY-MM-DD).")
@click.option("--before", help="Only files modified before this date (YYYY-MM-DD).")
@click.option("--explain", is_flag=True, help="Show each hit's dense and keyword ranks and scores.")
@click.option("--rerank/--no-rerank", default=None,
              help="Rerank the best candidates through the endpoint's rerank model. Default: on when $SEMSEARCH_RERANK_MODEL is set.")
@click.option("--files", "files_only", is_flag=True, help="Print only the matching files, one per line, best first.")
@click.option("-0", "--null", "null", is_flag=True, help="With --files (implied): end each path with a NUL byte, not a newline, for xargs -0.")
@click.option("--json", "as_json", is_flag=True, help="Print results as a JSON list.")
@click.pass_context
def search(ctx, query, limit, mode, per_file, paths, extensions, after, before, explain, rerank, files_only, null, as_json):
    """Find the passages that answer QUERY."""
    files_only = files_only or null
    with _open(ctx) as index:
        if mode != "keyword":
            _say_endpoint(index.embedder)
        if rerank or (rerank is None and config.setting("SEMSEARCH_RERANK_MODEL")):
            _say_reranker(index.reranker)
        results = index.search(
            query, limit=limit, mode=mode, per_file=1 if files_only else per_file or None, path=list(paths),
            ext=list(extensions), after=after, before=before, explain=explain, rerank=rerank,
        )
        empty = not results and index.status().documents == 0
    if files_only:
        # One best hit per file, so --limit counts files. For programs, the paths exactly as
        # stored; for a person, shown with any control character (a newline) escaped.
        if as_json:
            _json([result.path for result in results])
        elif null:
            sys.stdout.buffer.write(b"".join(os.fsencode(_relative(result.path)) + b"\0" for result in results))
            sys.stdout.flush()
        else:
            for result in results:
                click.echo(_visible(_relative(result.path), newlines=True))
    elif as_json:
        _json([result.to_dict() for result in results])
    else:
        _print_results(results, "blend" if results.reranked else mode)
    for note in results.notes:
        click.echo(note, err=True)
    if not results and empty:
        click.echo(f"The index at {index.path} holds no documents yet: add some with `semsearch index FOLDER`.", err=True)


def _print_results(results, mode: str = "hybrid") -> None:
    if not results:
        click.echo("No results.")
        return
    # Each mode's scores are on a scale of their own: a fused score from 0 to 1, a cosine
    # similarity, or BM25 (unbounded, comparable only within one query).
    scale = {"hybrid": "score", "dense": "cosine", "keyword": "BM25", "blend": "blend"}[mode]
    for rank, hit in enumerate(results, 1):
        # Lines of a PDF's or Word file's extracted text would send an editor nowhere.
        where = _show_path(hit.path) if hit.format in ("pdf", "docx") else f"{_show_path(hit.path)}:{hit.start_line}-{hit.end_line}"
        if hit.page:
            where += f" (page {hit.page})"
        if hit.section:
            where += f" › {_visible(hit.section)}"
        click.echo(click.style(f"{rank}. {where}", bold=True) + f"  {scale} {hit.score:.3f}")
        click.echo(_indent(_snippet(hit) if hit.snippet else _trim(hit.text)))
        if hit.explain:
            click.echo(_indent(_explanation(hit.explain)))
        click.echo()


def _explanation(facts: dict) -> str:
    """The ranks and scores of a hit, each with its scale, and for hybrid search the sum
    that makes its score (the keyword share is raised to a power before it counts)."""
    lines = []
    fused = "fusion" in facts
    if facts.get("waiting"):
        stand_in = f": counts {facts['dense_counted']:.4f}, what embedded chunks with its keyword share count" if fused else ""
        lines.append(f"waiting for its vector, found by keywords alone{stand_in}")
    if "dense_rank" in facts and not facts.get("waiting"):
        if facts["dense_rank"]:
            lines.append(f"dense rank {facts['dense_rank']}, cosine {facts['dense_score']:.4f}")
        elif fused:
            lines.append(f"dense: not in its top results (counts the cosine at its floor, {facts['dense_counted']:.4f})")
        else:
            lines.append("dense: not in its top results")
    if "keyword_rank" in facts:
        if facts["keyword_rank"]:
            found = (
                f"keyword rank {facts['keyword_rank']}, BM25 {facts['keyword_score']:.4f} of "
                f"{facts['keyword_ceiling']:.4f} for every word of the query: share {facts['keyword_share']:.3f}"
            )
            if fused:
                found += f", ^{facts['keyword_power']:g} = {facts['keyword_counted']:.6f}"
            lines.append(found)
        else:
            lines.append("keyword: not in its top results (counts a share of 0)" if fused else "keyword: not in its top results")
    if fused:
        lines.append(f"hybrid score {facts['fusion']}")
    if "rerank_blend" in facts:
        lines.append(
            f"first stage rank {facts['first_stage_rank']}, score {facts['first_stage_score']:.4f}; "
            f"reranker score {facts['rerank_score']:.4f}"
        )
        lines.append(f"blend {facts['rerank_blend']}")
    return "\n".join(lines)


def _snippet(hit) -> str:
    """The hit's snippet with the query's words highlighted (click drops the styling when
    stdout is not a terminal), marked with … where the passage goes on."""
    from ..text.snippets import segments

    shown = "".join(
        click.style(_visible(piece), fg="yellow", bold=True) if marked else _visible(piece)
        for piece, marked in segments(hit.text, hit.snippet, hit.highlights or [])
    )
    body = hit.text.strip()
    if not body.startswith(hit.snippet):
        shown = "… " + shown
    if not body.endswith(hit.snippet):
        shown += " …"
    return shown


def _trim(text: str, limit: int = 600) -> str:
    text = _visible(text.strip())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


@cli.command()
@_index_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="List every skipped file with its reason.")
@click.pass_context
def status(ctx, as_json, verbose):
    """Show the index's model, size, folders and the files it could not index."""
    with _open(ctx) as index:
        info = index.status()
    if as_json:
        _json(info.to_dict())
        return
    dimensions = f"{info.dimensions} dimensions" if info.dimensions else "dimensions not known yet"
    click.echo(f"Index:      {info.path}")
    click.echo(f"Model:      {info.model} ({dimensions})")
    click.echo(f"Documents:  {info.documents}")
    click.echo(f"Chunks:     {info.chunks} ({info.vectors} distinct vectors)")
    if info.index_type == "none":
        click.echo("Vectors:    none yet")
    else:
        click.echo(f"Vectors:    {info.index_vectors}, {info.index_type} index")
    click.echo(
        f"            {info.index_disk_bytes / 1e6:.1f} MB on disk, {info.index_memory_bytes / 1e6:.1f} MB in memory"
        " when loaded (a search maps the file and reads what it probes)"
    )
    click.echo(f"Disk:       {info.disk_bytes / 1e6:.1f} MB")
    if info.last_indexed:
        click.echo(f"Indexed:    {info.last_indexed}")
    if info.waiting_chunks:
        click.echo(
            f"Waiting:    {info.waiting_chunks} chunks ({info.waiting_texts} texts) for their vectors: found by keywords "
            "until then; `semsearch index` embeds them"
        )
    for i, root in enumerate(info.roots):
        click.echo(f"{'Folders:' if i == 0 else '':<12}{root}")
    if info.skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in info.skipped_by_reason.items())
        click.echo(f"Skipped:    {len(info.skipped)} files: {reasons}" + ("" if verbose else " (-v lists them)"))
        if verbose:
            for item in info.skipped:
                click.echo(f"  {_show_path(item['path'])}: {item['reason']}")


@cli.command()
@_index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; any but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--token", envvar="SEMSEARCH_SERVE_TOKEN", show_envvar=True,
              help="Every request must carry it (Authorization: Bearer TOKEN). Prefer the variable: options show in process lists.")
@click.option("--allow-write", is_flag=True, help="Let requests update the index (POST /api/index); read-only otherwise.")
@click.option("--editor-url", default="file://{path}", show_default=True,
              help="How the page opens a hit: {path} and {line} are filled in, e.g. 'vscode://file/{path}:{line}'.")
@click.option("--cors", "cors", multiple=True, metavar="ORIGIN", help="Let pages from ORIGIN call the API (repeatable); none unless given.")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="NAME", help="Another host name clients use (a proxy's), repeatable.")
@click.option("--watch", "watching", is_flag=True, help="Keep the index current as files change, as `semsearch watch` does, while serving.")
@click.option("--poll", is_flag=True, help="With --watch: look for changes every 300 ms instead of waiting for the system's events.")
@click.pass_context
def serve(ctx, host, port, token, allow_write, editor_url, cors, allowed_hosts, watching, poll):
    """Serve the index to browsers and programs: a web page at /, a JSON API under /api,
    and the MCP tools at /mcp (streamable HTTP). With --watch it also keeps the index
    current as files change."""
    from importlib.util import find_spec

    # OpenMP threads (the local model's, FAISS's) spin while they wait for work by default,
    # which on a machine shared with the server's clients takes the cores the next request
    # needs: at 100k chunks on 2 busy cores, p50 fell from 464 to 108 ms with them asleep
    # (benchmarks/README.md). Read when OpenMP starts, so set before the model or FAISS loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from .http.server import Server
    from .http.settings import ServeSettings

    for needed in ("starlette", "uvicorn"):
        if find_spec(needed) is None:
            raise click.ClickException(f"semsearch serve needs {needed}: pip install 'semsearch[serve]'.")

    settings = ServeSettings(
        host=host, port=port, token=token or None, allow_write=allow_write, editor_url=editor_url,
        cors=tuple(cors), allowed_hosts=tuple(allowed_hosts),
    )
    settings.check()
    with _open(ctx) as index:
        if find_spec("mcp") is None:
            app, mcp = None, "no MCP tools without the MCP SDK (pip install 'semsearch[mcp]')"
        else:
            from .mcp import serve_app

            app, mcp = serve_app(index, settings), "MCP tools at /mcp"
        server = Server(index, settings, app)
        server.bind()
        access = "read-write" if allow_write else "read-only"
        guarded = "every request needs the token" if settings.token else "no token"
        click.echo(f"Serving {index.path} at {server.url}/ ({access}, {guarded}), {mcp}; Ctrl-C stops.", err=True)
        if not watching:
            server.run()
            return
        # The watcher writes through an Index of its own (its own connection and model), so
        # searches never wait for an update: they see each one once it commits.
        import threading

        stop = threading.Event()
        update, notice = _watch_printers(False, stream_err=True)
        with _open(ctx) as writer:
            watcher = threading.Thread(
                target=writer.watch, kwargs=dict(poll=poll, on_update=update, on_notice=notice, stop=stop),
                name="semsearch-watch", daemon=True,
            )
            watcher.start()
            try:
                server.run()
            finally:
                stop.set()
                # An update under way finishes its commit first; past this wait the process
                # ends with it, which leaves the index as a killed run does: consistent.
                watcher.join(30)


@cli.command("eval")
@_index_option
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which qrels/SPLIT.tsv to score.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--model", help="Embedding model (default: as for a new index).")
@click.option("--queries", type=click.Path(exists=True, path_type=Path), help="Another dataset's queries and qrels, e.g. German queries against an English corpus.")
@click.option("--rerank", is_flag=True, help="Rerank each query's candidates through the endpoint's rerank model.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_with(rate_options)
@click.pass_context
def eval_command(ctx, dataset, split, mode, model, queries, rerank, as_json, rps, burst):
    """Measure search quality on a BEIR-layout DATASET folder.

    Builds a temporary index of the corpus (or uses --index, reusing what it holds) and
    prints nDCG@10, MRR@10, Recall@10/100, indexing time and query latency.
    """
    import tempfile

    from ..evaluation import evaluate, load_dataset

    data = load_dataset(dataset, split, queries)
    with tempfile.TemporaryDirectory(prefix="semsearch-eval-") as scratch:
        location = ctx.obj or Path(scratch) / "index"
        with _open(None, create=True, model=model, path=location, **_remote_options(rps, burst)) as index:
            _say_endpoint(index.embedder)
            if rerank:
                _say_reranker(index.reranker)
            with _progress(enabled=not as_json and sys.stderr.isatty()) as progress:
                report = evaluate(index, data, mode=mode, index_progress=progress, rerank=rerank)
    if as_json:
        _json(report.to_dict())
        return
    reranked = f", reranked by {report.reranker} ({report.reranked} of {report.queries} queries)" if rerank else ""
    click.echo(f"{dataset} ({split}, {report.queries} queries), model {report.model}, mode {report.mode}{reranked}")
    click.echo(f"nDCG@10     {report.ndcg_10:.4f}")
    click.echo(f"MRR@10      {report.mrr_10:.4f}")
    click.echo(f"Recall@10   {report.recall_10:.4f}")
    click.echo(f"Recall@100  {report.recall_100:.4f}")
    click.echo(f"Indexing    {report.index_seconds:.1f} s")
    click.echo(f"Latency     p50 {report.latency_p50_ms:.1f} ms, p95 {report.latency_p95_ms:.1f} ms")
    for note in report.notes:
        click.echo(note, err=True)


@cli.command()
@_index_option
@click.option("--repair", is_flag=True, help="Fix what can be fixed.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def check(ctx, repair, as_json):
    """Verify the index (and with --repair, fix it)."""
    with _open(ctx) as index:
        report = index.check(repair=repair)
    if as_json:
        _json(report.to_dict())
    else:
        for problem in report.problems:
            click.echo(f"Problem: {problem}")
        for fix in report.repaired:
            click.echo(f"Repaired: {fix}")
        for note in report.notes:
            click.echo(f"Note: {note}")
        if not report.problems:
            click.echo("The index is sound.")
        elif report.advice_code == "damaged_database":
            from .advice import damaged_index

            click.echo(damaged_index(report.advice_details))
        elif report.advice:
            click.echo(report.advice)
        elif not report.repaired:
            click.echo("Run `semsearch check --repair` to fix this.")
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("source", type=_INDEX_TYPE)
@click.argument("destination", type=_INDEX_TYPE)
def copy(source, destination):
    """Copy an index (a folder or a postgresql:// URL) to another, with its vectors: nothing
    is embedded again. DESTINATION is created when missing and must hold no documents."""
    from ..api import copy_index

    count = copy_index(source, destination)
    shown = destination if isinstance(destination, Path) else _shown_url(destination)
    click.echo(f"Copied {count} document{'s' if count != 1 else ''} to {shown}.")


def _shown_url(url: str) -> str:
    from ..storage.postgres.connection import shown

    return shown(url)


@cli.command()
@_index_option
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def remove(ctx, paths):
    """Remove files or folders (or add_texts ids) from the index."""
    with _open(ctx) as index:
        count = index.remove(list(paths))
        roots = index.status().roots
    click.echo(f"Removed {count} document{'s' if count != 1 else ''}.")
    if not count:
        click.echo("Nothing in the index is at or under " + ", ".join(paths) + ".", err=True)
    for path in paths:
        # Removed from the index, but the folder above it is still indexed.
        target = str(Path(path).expanduser().resolve())
        above = next((root for root in roots if target.startswith(root.rstrip("/") + "/")), None)
        if count and above:
            inside = Path(target).relative_to(above).as_posix()
            click.echo(
                f"{path} lies inside the indexed folder {above}: the next `semsearch index` adds it back. "
                f"To leave it out, run `semsearch index {above} --exclude '{inside}'`.",
                err=True,
            )


@cli.command("mcp")
@_index_option
@click.pass_context
def mcp_command(ctx):
    """Serve the index to AI assistants over the Model Context Protocol, on stdin/stdout.

    This is the command an assistant (Claude Desktop, Claude Code, Cursor, ...) launches:
    it gets tools to search the index, read passages and documents, and see the index's
    status. Nothing it calls changes the index.
    """
    # As for `serve`: OpenMP threads left spinning between calls take the cores the
    # assistant beside it needs.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from .mcp import run_stdio
    except ImportError as exc:
        raise click.ClickException(f"`semsearch mcp` needs the MCP SDK ({exc}): pip install 'semsearch[mcp]'.") from None
    location = ctx.obj
    run_stdio(lambda: _open(None, path=location))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def models(as_json):
    """List the embedding models you can use, and the endpoint's rerank models."""
    from .. import config
    from ..api import models as list_models

    endpoint = config.remote_endpoint()
    if endpoint.token:
        click.echo(f"Asking {endpoint.describe()} for its models.", err=True)
    listings = list_models()
    if as_json:
        _json([listing.__dict__ for listing in listings])
        return
    for listing in listings:
        facts = ", ".join(
            part for part in (
                f"{listing.dimensions} dims" if listing.dimensions else "",
                f"{listing.max_tokens} tokens" if listing.max_tokens else "",
                listing.description,
            ) if part
        )
        kind = "" if listing.kind == "embedding" else f" [{listing.kind}]"
        click.echo(f"{listing.model_id:<62} {listing.where}{kind}" + (f"  ({facts})" if facts else ""))
    if len(listings) == 1:
        click.echo("Set IONOS_API_TOKEN to list the IONOS embedding models too.", err=True)


@cli.command()
@click.argument("texts", nargs=-1, required=True)
@click.option("--model", help="Model to use (default: as for a new index).")
@click.option("--query", is_flag=True, help="Embed as search queries (with the model's query prefix).")
def embed(texts, model, query):
    """Print the embedding vectors of TEXTS as JSON."""
    from ..api import embed as embed_texts
    from ..api import get_embedder

    _not_blank(*texts)

    embedder = get_embedder(model)
    _say_endpoint(embedder)
    usage = embedder.usage
    before = usage.copy() if usage is not None else None
    vectors = embed_texts(list(texts), model=embedder.model_id, query=query)
    spent = usage.since(before).__dict__ if usage is not None else None
    _json(
        {
            "model": embedder.model_id,
            "dimensions": int(vectors.shape[1]),
            "data": [{"text": text, "embedding": [round(float(x), 7) for x in vector]} for text, vector in zip(texts, vectors)],
            "usage": spent,
        }
    )


@cli.command()
@click.argument("first")
@click.argument("second")
@click.option("--model", help="Model to use (default: as for a new index).")
def similarity(first, second, model):
    """Print the cosine similarity of two texts."""
    from ..api import get_embedder
    from ..api import similarity as compare

    _not_blank(first, second)
    _say_endpoint(get_embedder(model))
    click.echo(f"{compare(first, second, model):.4f}")


def _not_blank(*texts: str) -> None:
    # A service refuses blank input, and a vector of nothing would compare as noise.
    if any(not text.strip() for text in texts):
        raise click.UsageError("A text is empty: give words to embed.")
