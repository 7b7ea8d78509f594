"""Looking after an index: `status`, `check`, `copy`, `remove` and `eval`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ...search import MODES
from .group import (
    INDEX_TYPE,
    cli,
    index_option,
    open_index,
    print_json,
    rate_options,
    remote_options,
    say_endpoint,
    say_reranker,
    show_path,
    with_options,
)
from .indexing import ProgressLine


@cli.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="List every skipped file with its reason.")
@click.pass_context
def status(ctx, as_json, verbose):
    """Show the index's model, size, folders and the files it could not index."""
    with open_index(ctx) as index:
        info = index.status()
    if as_json:
        print_json(info.to_dict())
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
                click.echo(f"  {show_path(item['path'])}: {item['reason']}")


@cli.command()
@index_option
@click.option("--repair", is_flag=True, help="Fix what can be fixed.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def check(ctx, repair, as_json):
    """Verify the index (and with --repair, fix it)."""
    with open_index(ctx) as index:
        report = index.check(repair=repair)
    if as_json:
        print_json(report.to_dict())
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
            from ..advice import damaged_index

            click.echo(damaged_index(report.advice_details))
        elif report.advice:
            click.echo(report.advice)
        elif not report.repaired:
            click.echo("Run `semsearch check --repair` to fix this.")
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("source", type=INDEX_TYPE)
@click.argument("destination", type=INDEX_TYPE)
def copy(source, destination):
    """Copy an index (a folder or a postgresql:// URL) to another, with its vectors: nothing
    is embedded again. DESTINATION is created when missing and must hold no documents."""
    from ...api import copy_index

    count = copy_index(source, destination)
    shown = destination if isinstance(destination, Path) else _shown_url(destination)
    click.echo(f"Copied {count} document{'s' if count != 1 else ''} to {shown}.")


def _shown_url(url: str) -> str:
    from ...storage.postgres.connection import shown

    return shown(url)


@cli.command()
@index_option
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def remove(ctx, paths):
    """Remove files or folders (or add_texts ids) from the index."""
    with open_index(ctx) as index:
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


@cli.command("eval")
@index_option
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which qrels/SPLIT.tsv to score.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--model", help="Embedding model (default: as for a new index).")
@click.option("--queries", type=click.Path(exists=True, path_type=Path), help="Another dataset's queries and qrels, e.g. German queries against an English corpus.")
@click.option("--rerank", is_flag=True, help="Rerank each query's candidates through the endpoint's rerank model.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_options(rate_options)
@click.pass_context
def eval_command(ctx, dataset, split, mode, model, queries, rerank, as_json, rps, burst):
    """Measure search quality on a BEIR-layout DATASET folder.

    Builds a temporary index of the corpus (or uses --index, reusing what it holds) and
    prints nDCG@10, MRR@10, Recall@10/100, indexing time and query latency.
    """
    import tempfile

    from ...evaluation import evaluate, load_dataset

    data = load_dataset(dataset, split, queries)
    with tempfile.TemporaryDirectory(prefix="semsearch-eval-") as scratch:
        location = ctx.obj or Path(scratch) / "index"
        with open_index(None, create=True, model=model, path=location, **remote_options(rps, burst)) as index:
            say_endpoint(index.embedder)
            if rerank:
                say_reranker(index.reranker)
            with ProgressLine(enabled=not as_json and sys.stderr.isatty()) as progress:
                report = evaluate(index, data, mode=mode, index_progress=progress, rerank=rerank)
    if as_json:
        print_json(report.to_dict())
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
