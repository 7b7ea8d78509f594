"""A real server on a free loopback port, over an index of the `docs` folder."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import pytest

from semsearch import Index
from semsearch.apps.http.server import Server
from semsearch.apps.http.settings import ServeSettings


class Running:
    """A started server, and an HTTP client for it."""

    def __init__(self, server: Server, index: Index) -> None:
        self.server = server
        self.index = index
        self.url = server.url
        self.port = server.port
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def get(self, path: str, **options):
        return self.client.get(path, **options)

    def post(self, path: str, **options):
        return self.client.post(path, **options)


@contextmanager
def serving(index: Index, **settings):
    server = Server(index, ServeSettings(port=0, **settings), log_level="warning").start()
    running = Running(server, index)
    try:
        yield running
    finally:
        running.client.close()
        server.stop()


@pytest.fixture
def indexed(tmp_path, docs, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([docs])
        yield index


@pytest.fixture
def served(indexed):
    with serving(indexed) as running:
        yield running
