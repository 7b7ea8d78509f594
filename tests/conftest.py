"""Shared fixtures: a deterministic fake embedder and an environment with no real settings."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DOCS = REPO / "sample_docs"

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Hashed bag of words: texts sharing words are similar, so a query about cats finds cats.

    Records every text it embeds, so tests can assert what was (not) embedded again.
    """

    def __init__(self, model_id: str = "fake", dimensions: int = 64) -> None:
        self.model_id = model_id
        self.dimensions = dimensions
        self.calls: list[list[str]] = []
        self.queries: list[str] = []

    @property
    def embedded(self) -> list[str]:
        return [text for call in self.calls for text in call]

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimensions, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "little") % self.dimensions] += 1.0 if digest[4] % 2 else -1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimensions), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return self._vector(text)


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch):
    """No real token, endpoint, model, proxy or index; a working directory without a .env."""
    for name in list(os.environ):
        if (
            name.startswith(("SEMSEARCH_", "OPENAI_"))
            or name == "IONOS_API_TOKEN"
            or name.lower() in {"http_proxy", "https_proxy", "all_proxy"}
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("SEMSEARCH_INDEX", str(tmp_path / "index"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    from semsearch import api
    from semsearch.embedding.remote.ratelimit import forget_shared_buckets

    # Embedders and rate limits shared within a process must not leak between tests.
    monkeypatch.setattr(api, "_shared", {})
    forget_shared_buckets()


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_model(monkeypatch) -> FakeEmbedder:
    """Make model id "fake" resolve to one shared FakeEmbedder, for CLI tests."""
    from semsearch import embedding

    embedder = FakeEmbedder()
    original = embedding.make_embedder

    def make(model_id, **options):
        return embedder if model_id == "fake" else original(model_id, **options)

    monkeypatch.setattr(embedding, "make_embedder", make)
    return embedder


@pytest.fixture
def docs(tmp_path) -> Path:
    """A small folder of documents in several formats."""
    root = tmp_path / "docs"
    (root / "pets").mkdir(parents=True)
    (root / "pets" / "cats.md").write_text(
        "# Cats\n\nCats purr when content and sleep most of the day.\n\n"
        "## Feeding\n\nAdult cats eat wet food twice a day; kittens eat more often.\n"
    )
    (root / "pets" / "dogs.txt").write_text("Dogs need a walk every morning and evening.\nThey bark at strangers.\n")
    (root / "garden.rst").write_text(
        "Garden\n======\n\nTomatoes need sun and water.\n\nPruning\n-------\n\nCut roses back in early spring.\n"
    )
    (root / "travel.html").write_text(
        "<html><head><title>Travel</title><style>p{}</style></head><body><nav>menu home</nav>"
        "<h1>Trains</h1><p>Night trains to Vienna leave at nine.</p><script>var secret=1</script></body></html>"
    )
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "junk.txt").write_bytes(b"\x00\x01\x02 binary junk")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text("hidden cats")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "lib.js").write_text("// cats library")
    return root


@pytest.fixture
def sample_docs(tmp_path) -> Path:
    """A private copy of sample_docs, so tests may change it."""
    target = tmp_path / "sample_docs"
    shutil.copytree(SAMPLE_DOCS, target)
    return target


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "errors.md").write_text("# Error codes\n\nError KX-4471 means the sync token expired; sign in again.\n")
    (folder / "tea.txt").write_text("Green tea should steep for two minutes in water below boiling.\n")
    (folder / "koeln.txt").write_text("Grüße aus Köln: the cathedral took six centuries to finish.\n")
    (folder / "beijing.txt").write_text("北京是中国的首都，有很多历史悠久的建筑。\n")
    (folder / "tokyo.txt").write_text("東京の地下鉄はとても便利です。\n")
    return folder


@pytest.fixture
def crowded(tmp_path):
    """Many strong matches in one folder, a few weak ones in another."""
    root = tmp_path / "crowded"
    (root / "main").mkdir(parents=True)
    (root / "side").mkdir()
    for i in range(40):
        (root / "main" / f"apple{i}.md").write_text(f"Apples apples apples: orchard report {i}.")
    for i in range(3):
        (root / "side" / f"fruit{i}.txt").write_text(f"A note that mentions apples once, number {i}.")
    return root


# .ci/run sets this: there, PostgreSQL failing to start fails the tests instead of skipping them.
REQUIRE_POSTGRES = os.environ.get("SEMSEARCH_REQUIRE_POSTGRES") == "1"
_databases = iter(range(1, 1_000_000))


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server with pgvector for the whole session, on a loopback port, with a
    template database that holds the index schema (so each test's database starts ready)."""
    try:
        from tests.pgserver import PostgresServer

        server = PostgresServer()
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported the same way
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"PostgreSQL could not be started: {exc}")
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as connection:
        connection.execute("CREATE DATABASE semsearch_template")
    from semsearch.storage.postgres.store import PostgresStore

    PostgresStore(server.url("semsearch_template")).close()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL (with its password) of a fresh database with the index schema."""
    return fresh_database(postgres_server)


def fresh_database(postgres_server) -> str:
    """The URL of a new database with the index schema on the session's server."""
    import psycopg

    name = f"test_{next(_databases)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name} TEMPLATE semsearch_template STRATEGY file_copy")
    return postgres_server.url(name)
