"""Search: filters decided before ranking, one retriever's ranking or both fused, per-file caps."""

# Here rather than in ranking, so that the CLI's options need no more than this.
MODES = ("hybrid", "dense", "keyword")
