"""The PostgreSQL database of an index with every query it answers: the only code that
writes SQL for it (with its migrations). One mixin per subject, as in the local store."""

from __future__ import annotations

from .catalogue import CatalogueQueries
from .chunks import ChunkQueries
from .keywords import KeywordQueries


class PostgresStore(CatalogueQueries, ChunkQueries, KeywordQueries):
    """One connection to an index database, its schema brought up to date on open."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__(url, create=create)
        self.released_vectors: set[int] = set()
