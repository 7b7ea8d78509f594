"""`semsearch serve` (the web page, the JSON API and MCP over HTTP) and `semsearch mcp` (MCP over stdio)."""

from __future__ import annotations

import os

import click

from .group import cli, index_option, open_index
from .indexing import watch_printers


@cli.command()
@index_option
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

    from ..http.server import Server
    from ..http.settings import ServeSettings

    for needed in ("starlette", "uvicorn"):
        if find_spec(needed) is None:
            raise click.ClickException(f"semsearch serve needs {needed}: pip install 'semsearch[serve]'.")

    settings = ServeSettings(
        host=host, port=port, token=token or None, allow_write=allow_write, editor_url=editor_url,
        cors=tuple(cors), allowed_hosts=tuple(allowed_hosts),
    )
    settings.check()
    with open_index(ctx) as index:
        if find_spec("mcp") is None:
            app, mcp = None, "no MCP tools without the MCP SDK (pip install 'semsearch[mcp]')"
        else:
            from ..mcp import serve_app

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
        update, notice = watch_printers(False, stream_err=True)
        with open_index(ctx) as writer:
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


@cli.command("mcp")
@index_option
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
        from ..mcp import run_stdio
    except ImportError as exc:
        raise click.ClickException(f"`semsearch mcp` needs the MCP SDK ({exc}): pip install 'semsearch[mcp]'.") from None
    location = ctx.obj
    run_stdio(lambda: open_index(None, path=location))
