"""`semsearch index` and `semsearch watch`, with the progress line and the summary they print."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .group import (
    cli,
    index_option,
    open_index,
    print_json,
    rate_options,
    remote_options,
    say_endpoint,
    show_path,
    with_options,
)


@cli.command("index")
@index_option
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", help="Embedding model for a new index: 'local' or a remote model id.")
@click.option("--force", is_flag=True, help="Embed everything again, changed or not.")
@click.option("--rebuild", is_flag=True, help="Empty the index and index its folders again (to change --model).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="List every skipped and ignored file with its reason.")
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching this gitignore-style pattern, e.g. '*.md' (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out files and folders matching this pattern, e.g. 'drafts/' (repeatable).")
@click.option("--max-file-size", metavar="SIZE", help="Skip larger files: 500KB, 20MB, 1GB; a bare number is MB (0: no limit). Remembered for the folders named; default 20MB.")
@with_options(rate_options)
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
    from ...readers.walk import parse_size, resolve_roots

    limit = "remembered" if max_file_size is None else parse_size(max_file_size) or None
    resolve_roots(list(paths))  # a mistyped folder is reported before any index is created
    # Without PATHS there is nothing to create an index for: only an existing one is updated.
    with open_index(ctx, create=bool(paths), model=model, rebuild=rebuild, **remote_options(rps, burst)) as index:
        if index.created and not as_json:
            click.echo(f"New index at {index.path} using model {index.model} ({index.model_reason}).", err=True)
        if index.dropped_records:
            click.echo(
                f"The rebuild dropped {index.dropped_records} records added with add_texts: add them again.", err=True
            )
        say_endpoint(index.embedder)
        try:
            with ProgressLine(enabled=not as_json and sys.stderr.isatty()) as progress:
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
            print_json(stats.to_dict(files=verbose))
            return
        print_stats(stats, verbose)


@cli.command()
@index_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--poll", is_flag=True, help="Look for changes every 300 ms instead of waiting for the system's events (network drives, WSL, containers).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line for each update.")
@with_options(rate_options)
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

    update, notice = watch_printers(as_json)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with open_index(ctx, create=bool(paths), **remote_options(rps, burst)) as index:
            say_endpoint(index.embedder)
            index.watch(list(paths) or None, poll=poll, on_update=update, on_notice=notice)
    except KeyboardInterrupt:
        click.echo("\nStopped watching. What changed meanwhile is picked up by the next `semsearch watch` or `semsearch index`.", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


def watch_printers(as_json: bool, *, stream_err: bool = False):
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


class ProgressLine:
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


def print_stats(stats, verbose: bool) -> None:
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
                click.echo(f"  {show_path(item.path)}: {item.reason}")
    if stats.ignored:
        reasons = ", ".join(f"{count} {reason}" for reason, count in stats.ignored_by_reason.items())
        click.echo(f"Ignored: {reasons}.")
        if verbose:
            for item in stats.ignored:
                click.echo(f"  {show_path(item.path)}: {item.reason}")
    if stats.also:
        click.echo(
            "Also indexed, as the rebuild emptied every folder: " + ", ".join(show_path(root) for root in stats.also) + ".",
            err=True,
        )
    for root in stats.missing:
        import shlex

        kept = "The rebuild emptied it" if stats.rebuilt else "Its documents are kept as they were"
        click.echo(
            f"Not found: {show_path(root)}. {kept}; `semsearch remove {shlex.quote(show_path(root))}` "
            "forgets it, and `semsearch index` takes it again once it is back.",
            err=True,
        )
    usage = stats.usage
    if usage and usage.requests:
        click.echo(
            f"Remote usage: {usage.requests} requests, {usage.inputs} inputs, {usage.prompt_tokens} tokens, "
            f"{usage.retries} retries, {usage.rate_limited} rate-limited, {usage.seconds:.1f} s in requests."
        )
