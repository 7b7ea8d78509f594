"""Search: filters decided before ranking, one retriever's ranking or both fused, per-file caps."""
