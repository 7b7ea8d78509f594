"""`semsearch search`: results as text (snippets highlighted, --explain), paths or JSON."""

from __future__ import annotations

import os
import sys

import click

from ... import config
from ...search import MODES
from .group import cli, index_option, open_index, print_json, relative, say_endpoint, say_reranker, show_path, visible


@cli.command()
@index_option
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
    with open_index(ctx) as index:
        if mode != "keyword":
            say_endpoint(index.embedder)
        if rerank or (rerank is None and config.setting("SEMSEARCH_RERANK_MODEL")):
            say_reranker(index.reranker)
        results = index.search(
            query, limit=limit, mode=mode, per_file=1 if files_only else per_file or None, path=list(paths),
            ext=list(extensions), after=after, before=before, explain=explain, rerank=rerank,
        )
        empty = not results and index.status().documents == 0
    if files_only:
        # One best hit per file, so --limit counts files. For programs, the paths exactly as
        # stored; for a person, shown with any control character (a newline) escaped.
        if as_json:
            print_json([result.path for result in results])
        elif null:
            sys.stdout.buffer.write(b"".join(os.fsencode(relative(result.path)) + b"\0" for result in results))
            sys.stdout.flush()
        else:
            for result in results:
                click.echo(visible(relative(result.path), newlines=True))
    elif as_json:
        print_json([result.to_dict() for result in results])
    else:
        print_results(results, "blend" if results.reranked else mode)
    for note in results.notes:
        click.echo(note, err=True)
    if not results and empty:
        click.echo(f"The index at {index.path} holds no documents yet: add some with `semsearch index FOLDER`.", err=True)


def print_results(results, mode: str = "hybrid") -> None:
    if not results:
        click.echo("No results.")
        return
    # Each mode's scores are on a scale of their own: a fused score from 0 to 1, a cosine
    # similarity, or BM25 (unbounded, comparable only within one query).
    scale = {"hybrid": "score", "dense": "cosine", "keyword": "BM25", "blend": "blend"}[mode]
    for rank, hit in enumerate(results, 1):
        # Lines of a PDF's or Word file's extracted text would send an editor nowhere.
        where = show_path(hit.path) if hit.format in ("pdf", "docx") else f"{show_path(hit.path)}:{hit.start_line}-{hit.end_line}"
        if hit.page:
            where += f" (page {hit.page})"
        if hit.section:
            where += f" › {visible(hit.section)}"
        click.echo(click.style(f"{rank}. {where}", bold=True) + f"  {scale} {hit.score:.3f}")
        click.echo(_indent(_snippet(hit) if hit.snippet else _trim(hit.text)))
        if hit.explain:
            click.echo(_indent(explanation(hit.explain)))
        click.echo()


def explanation(facts: dict) -> str:
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
    from ...text.snippets import segments

    shown = "".join(
        click.style(visible(piece), fg="yellow", bold=True) if marked else visible(piece)
        for piece, marked in segments(hit.text, hit.snippet, hit.highlights or [])
    )
    body = hit.text.strip()
    if not body.startswith(hit.snippet):
        shown = "… " + shown
    if not body.endswith(hit.snippet):
        shown += " …"
    return shown


def _trim(text: str, limit: int = 600) -> str:
    text = visible(text.strip())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
