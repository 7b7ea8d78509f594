"""The `semsearch` command group and what its commands share: the index option, opening the
index, and printing names and JSON safely."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from ... import __version__


class _Group(click.Group):
    """Turns semsearch's errors into one clear line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        from ...errors import SemsearchError

        try:
            return super().invoke(ctx)
        except SemsearchError as exc:
            from ..advice import message

            raise click.ClickException(message(exc, ctx.invoked_subcommand)) from None
        except KeyboardInterrupt:
            writing = ctx.invoked_subcommand in ("index", "remove", "check")
            more = " Everything committed so far is kept; run the command again to continue." if writing else ""
            click.echo(f"\nInterrupted.{more}", err=True)
            sys.exit(130)


INDEX_HELP = (
    "Index folder, or a postgresql:// URL. Default: $SEMSEARCH_INDEX, else the 'default' index in your data folder."
)


class _IndexLocation(click.Path):
    """A folder, or a database URL kept as it is (a path would fold its `//`)."""

    name = "index"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.lower().startswith(("postgresql://", "postgres://")):
            return value
        return super().convert(value, param, ctx)


INDEX_TYPE = _IndexLocation(file_okay=False, path_type=Path)


@click.group(cls=_Group)
@click.option("--index", "index_path", type=INDEX_TYPE, help=INDEX_HELP)
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


def index_option(function):
    """`--index` after the command name too (`semsearch search --index DIR QUERY`); it wins
    over one given before it."""

    def remember(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.obj = value

    return click.option(
        "--index", "index_path", type=INDEX_TYPE, expose_value=False,
        callback=remember, is_eager=True, help=INDEX_HELP,
    )(function)


def open_index(ctx: click.Context | None, *, create: bool = False, path: Path | None = None, **options: Any):
    from ...index import Index

    return Index.open(path or (ctx.obj if ctx else None), create=create, **options)


def remote_options(rps: float | None, burst: int | None) -> dict[str, Any]:
    # Checked before anything is created (an index, a client).
    if rps is not None and not (0 < rps < float("inf")):
        raise click.BadParameter(f"must be a number greater than zero, not {rps}.", param_hint="--rps")
    if burst is not None and burst < 1:
        raise click.BadParameter(f"must be at least 1, not {burst}.", param_hint="--burst")
    return {key: value for key, value in (("rps", rps), ("burst", burst)) if value is not None}


def relative(path: str) -> str:
    """`path` relative to the working folder when it lies below it, else as it is."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def show_path(path: str) -> str:
    return visible(relative(path), newlines=True)


# Control characters in documents or file names, shown escaped: printed raw, an escape
# sequence in a file could retitle, clear or recolour the terminal, or fake a line of output.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n"}
# In a name, a newline or tab would also break the line the name is on.
_NAME_CONTROLS = {**_CONTROLS, ord("\n"): "\\n", ord("\t"): "\\t"}


def visible(text: str, *, newlines: bool = False) -> str:
    return text.translate(_NAME_CONTROLS if newlines else _CONTROLS)


def say_endpoint(embedder) -> None:
    """Name the service a command is about to talk to, once, on stderr (never the token)."""
    if embedder.endpoint:
        click.echo(f"Model {embedder.model_id} at {embedder.endpoint}.", err=True)


def say_reranker(reranker) -> None:
    """Name the service reranking goes to, on stderr (never the token)."""
    endpoint = getattr(reranker, "endpoint", None)
    if endpoint:
        model = f" with {reranker.model_id}" if reranker.model_id else ""
        click.echo(f"Reranking{model} at {endpoint}.", err=True)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


rate_options = [
    click.option("--rps", type=float, help="Requests per second allowed by your contract (default 5)."),
    click.option("--burst", type=int, help="Burst size allowed by your contract (default 10)."),
]


def with_options(options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate
