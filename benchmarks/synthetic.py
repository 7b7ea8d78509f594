"""Synthetic documents, queries and a zero-cost embedder for the speed-at-scale benchmarks.

Text: a Zipfian vocabulary of 30,000 made-up words; every document belongs to one of 2,000
topics and draws a third of its words from that topic's own (Zipfian) vocabulary, so
keyword search meets the long posting lists of common words and the short ones of rare
words, as in real text. Vectors: `WordVectorEmbedder` sums a fixed random vector per word
(weighted like IDF), so documents of a topic cluster as real embeddings do, a query finds
the documents that share its words, and approximate search is measured on data with
structure rather than on uniform noise (its worst case). It costs microseconds per text.

Indexes are built through the real library (`Index.add_texts`) and cached under
benchmarks/.cache/scale/, so re-runs are quick.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CACHE = Path(__file__).resolve().parent / ".cache" / "scale"
DIMENSIONS = 384
VOCABULARY = 30_000
TOPICS = 200
TOPIC_WORDS = 140  # each topic owns its words, as fields own their terms
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["qu", "sh", "th", "ch"]
_WORD = re.compile(r"[a-z]+")


def _words() -> list[str]:
    rng = np.random.default_rng(7)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        length = int(rng.integers(2, 5))
        word = "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), length))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


WORDS = _words()
RANK = {word: rank for rank, word in enumerate(WORDS)}


def _zipf(n: int, s: float = 1.07) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(weights / weights.sum())


_GLOBAL = _zipf(VOCABULARY)
_TOPIC = _zipf(TOPIC_WORDS, 0.9)
# Topic words come from outside the 200 commonest, like the names and terms of a field;
# a word belongs to at most one topic (and, rarer, turns up anywhere through the Zipf tail).
TOPIC_VOCABULARY = (200 + np.arange(TOPICS * TOPIC_WORDS)).reshape(TOPICS, TOPIC_WORDS)
WORD_TOPIC = np.full(VOCABULARY + 1, TOPICS)
WORD_TOPIC[TOPIC_VOCABULARY.ravel()] = np.repeat(np.arange(TOPICS), TOPIC_WORDS)


def _draw(rng: np.random.Generator, topic: int, count: int) -> list[str]:
    own = rng.random(count) < 0.35
    general = np.searchsorted(_GLOBAL, rng.random(count))
    specific = TOPIC_VOCABULARY[topic][np.minimum(np.searchsorted(_TOPIC, rng.random(count)), TOPIC_WORDS - 1)]
    ids = np.where(own, specific, np.minimum(general, VOCABULARY - 1))
    return [WORDS[i] for i in ids]


def document(number: int, paragraphs: int = 4) -> tuple[str, str, dict]:
    """The `number`th synthetic document: (id, text, metadata with a title)."""
    rng = np.random.default_rng(number + 1_000_003)
    topic = int(rng.integers(0, TOPICS))
    parts = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(int(rng.integers(3, 7))):
            words = _draw(rng, topic, int(rng.integers(8, 20)))
            sentences.append(" ".join(words).capitalize() + ".")
        parts.append(" ".join(sentences))
    title = " ".join(_draw(rng, topic, 4)).title()
    return f"doc-{number:07d}", "\n\n".join(parts), {"title": title, "topic": topic}


def queries(count: int, seed: int = 5) -> list[str]:
    """Short queries: mostly a topic's words, one or two common ones."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(count):
        topic = int(rng.integers(0, TOPICS))
        words = [WORDS[TOPIC_VOCABULARY[topic][int(np.searchsorted(_TOPIC, rng.random()))]] for _ in range(int(rng.integers(2, 5)))]
        words += [WORDS[int(np.searchsorted(_GLOBAL, rng.random()))] for _ in range(int(rng.integers(1, 3)))]
        found.append(" ".join(words))
    return found


# How strongly a topic's words pull a text towards the topic's direction, against the
# words' own hashed dimensions.
TOPIC_STRENGTH = 0.5


class WordVectorEmbedder:
    """Zero-cost stand-in for a model: a topic direction plus IDF-weighted word hashing.

    Each word adds its weight, with a fixed random sign, to 8 fixed random dimensions, so
    texts sharing (rare) words have similar vectors; a topic's words also add its fixed
    random direction, so texts on one subject cluster as they do under a real model, and a
    short query on a subject lands near its documents. `query_vectors` may be filled in
    advance so that search timings exclude embedding.
    """

    # Recorded as the bundled model's id, so `semsearch search` in a fresh process embeds its
    # query with the real local model: what is timed is what a user waits for.
    model_id = "local"
    dimensions = DIMENSIONS
    batch_size = 256
    _SPREAD = 8

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.word_dims = rng.integers(0, DIMENSIONS, (VOCABULARY + 1, self._SPREAD))
        weights = np.log(np.arange(VOCABULARY + 1) + 2.0)  # like IDF under Zipf: rare words weigh more
        signs = rng.choice([-1.0, 1.0], (VOCABULARY + 1, self._SPREAD))
        self.word_values = signs * weights[:, None]
        self.word_values[VOCABULARY] = 0  # a word not in the vocabulary
        self.word_weights = weights
        self.word_weights[VOCABULARY] = 0
        directions = rng.standard_normal((TOPICS + 1, DIMENSIONS))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        directions[TOPICS] = 0  # words of no topic
        self.topic_directions = (directions * TOPIC_STRENGTH * np.sqrt(self._SPREAD)).astype(np.float32)
        self.query_vectors: dict[str, np.ndarray] = {}
        self.calls = 0
        self.seconds = 0.0

    def _ids(self, text: str) -> list[int]:
        return [RANK.get(word, VOCABULARY) for word in _WORD.findall(text.lower())] or [VOCABULARY]

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        lists = [self._ids(text) for text in texts]
        flat = np.fromiter((i for ids in lists for i in ids), dtype=np.int64)
        rows = np.repeat(np.arange(len(texts)), [len(ids) for ids in lists])
        cells = (rows[:, None] * DIMENSIONS + self.word_dims[flat]).ravel()
        matrix = np.bincount(cells, self.word_values[flat].ravel(), minlength=len(texts) * DIMENSIONS)
        matrix = matrix.reshape(len(texts), DIMENSIONS).astype(np.float32)
        topics = np.bincount(rows * (TOPICS + 1) + WORD_TOPIC[flat], self.word_weights[flat], minlength=len(texts) * (TOPICS + 1))
        matrix += topics.reshape(len(texts), TOPICS + 1).astype(np.float32) @ self.topic_directions
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)
        self.calls += 1
        self.seconds += time.perf_counter() - started
        return matrix

    def embed_query(self, text: str) -> np.ndarray:
        cached = self.query_vectors.get(text)
        return cached if cached is not None else self.embed_documents([text])[0]


class ConstantEmbedder:
    """Truly zero-cost: the same unit vector for every text (the pipeline's overhead alone)."""

    model_id = "synthetic-constant"
    dimensions = DIMENSIONS
    batch_size = 256

    def __init__(self) -> None:
        self.vector = np.full(DIMENSIONS, DIMENSIONS**-0.5, dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.broadcast_to(self.vector, (len(texts), DIMENSIONS)).copy()

    def embed_query(self, text: str) -> np.ndarray:
        return self.vector


def documents_for(chunks: int) -> int:
    """How many synthetic documents make about `chunks` chunks (each makes ~2.04)."""
    return max(1, round(chunks / 2.04))


def build(chunks: int, *, log=print) -> Path:
    """The cached synthetic index of about `chunks` chunks, built through `Index.add_texts`."""
    from semsearch import Index

    directory = CACHE / f"synthetic-{chunks}"
    done = directory / "complete"
    if done.exists():
        return directory
    embedder = WordVectorEmbedder()
    started = time.perf_counter()
    total = documents_for(chunks)
    # Large steps: each `add_texts` call ends by saving the FAISS file.
    step = 100_000
    with Index.open(directory, embedder=embedder) as index:
        have = index.status().documents
        for first in range(have, total, step):
            numbers = range(first, min(first + step, total))
            records = (document(n) for n in numbers)
            ids, texts, metadata = zip(*records)
            index.add_texts(list(ids), list(texts), list(metadata))
            log(f"  {directory.name}: {first + len(numbers):,} of {total:,} documents after {time.perf_counter() - started:.0f} s", flush=True)
        status = index.status()
    done.write_text(json.dumps({"chunks": status.chunks, "documents": status.documents, "seconds": time.perf_counter() - started}))
    return directory


def chunk_texts(directory: Path, limit: int | None = None) -> list[str]:
    """Chunk texts of a built index (for measuring what the pipeline embeds)."""
    import sqlite3

    connection = sqlite3.connect(directory / "index.db")
    sql = "SELECT text FROM chunks ORDER BY id" + (f" LIMIT {int(limit)}" if limit else "")
    return [row[0] for row in connection.execute(sql)]


def digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@contextmanager
def quiet_machine():
    """Pause the long SciFact embedding job (benchmarks/retrieval.py) while measuring, and
    always resume it; report any other process busy on the CPU, as it skews the figures."""
    own = os.getpid()
    found = [int(pid) for pid in subprocess.run(["pgrep", "-f", "benchmarks/retrieval.py"], capture_output=True, text=True).stdout.split()]
    # One already stopped was paused by someone else's measurement: theirs to resume.
    paused = [pid for pid in found if pid != own and _state(pid) not in ("T", "t", "?")]
    already = [pid for pid in found if pid != own and pid not in paused]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.5)
        busy = _busy_processes(exclude={own, *paused})
        print(f"  (paused benchmarks/retrieval.py: {paused or 'none'}{f', already paused: {already}' if already else ''};"
              f" other busy processes: {busy or 'none'})", flush=True)
        yield
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _busy_processes(exclude: set[int]) -> list[str]:
    """Processes that used more than 20% of a core over one second."""
    def ticks() -> dict[int, tuple[int, str]]:
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in exclude:
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    continue
                found[int(entry.name)] = (int(fields[11]) + int(fields[12]), command)
        return found

    before = ticks()
    time.sleep(1.0)
    after = ticks()
    hertz = os.sysconf("SC_CLK_TCK")
    return [
        f"{' '.join(command.split())[:70]} ({(used - before[pid][0]) / hertz:.0%})"
        for pid, (used, command) in after.items()
        if pid in before and (used - before[pid][0]) / hertz > 0.2
    ]


def machine() -> str:
    """CPU model, cores and memory, as in benchmarks/README.md."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return f"{model}, {os.cpu_count()} cores, {memory / 1024**2:.0f} GiB"
