"""Commands about models rather than an index: `models`, `embed` and `similarity`."""

from __future__ import annotations

import click

from ... import config
from .group import cli, print_json, say_endpoint


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def models(as_json):
    """List the embedding models you can use, and the endpoint's rerank models."""
    from ...api import models as list_models

    endpoint = config.remote_endpoint()
    if endpoint.token:
        click.echo(f"Asking {endpoint.describe()} for its models.", err=True)
    listings = list_models()
    if as_json:
        print_json([listing.__dict__ for listing in listings])
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
    from ...api import embed as embed_texts
    from ...api import get_embedder

    _not_blank(*texts)

    embedder = get_embedder(model)
    say_endpoint(embedder)
    usage = embedder.usage
    before = usage.copy() if usage is not None else None
    vectors = embed_texts(list(texts), model=embedder.model_id, query=query)
    spent = usage.since(before).__dict__ if usage is not None else None
    print_json(
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
    from ...api import get_embedder
    from ...api import similarity as compare

    _not_blank(first, second)
    say_endpoint(get_embedder(model))
    click.echo(f"{compare(first, second, model):.4f}")


def _not_blank(*texts: str) -> None:
    # A service refuses blank input, and a vector of nothing would compare as noise.
    if any(not text.strip() for text in texts):
        raise click.UsageError("A text is empty: give words to embed.")
