"""The vector index: exact and approximate (IVF) layouts, compared with brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsearch import Index
from semsearch.settings import VectorSettings
from semsearch.storage.faiss.calibration import recall_at
from semsearch.storage.faiss.layout import Layout, planned_layout
from semsearch.storage.faiss.vectors import VectorIndex, read_note

DIMENSIONS = 32


def clustered(count: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors around random centres, as embeddings of documents on a few topics are;
    the centres are the same for every `seed`, so other seeds give queries on those topics."""
    centres = np.random.default_rng(0).standard_normal((clusters, DIMENSIONS))
    rng = np.random.default_rng(seed + 1000)
    matrix = centres[rng.integers(0, clusters, count)] + 0.6 * rng.standard_normal((count, DIMENSIONS))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def reader(ids: np.ndarray, matrix: np.ndarray):
    rows = {int(i): n for n, i in enumerate(ids)}

    def read(wanted):
        if wanted is None:
            for start in range(0, len(ids), 500):
                yield ids[start : start + 500], matrix[start : start + 500]
            return
        picked = [rows[int(i)] for i in wanted]
        yield ids[picked], matrix[picked]

    return read


def brute_force(matrix: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return ids[np.argsort(-(matrix @ query), kind="stable")[:k]].tolist()


@pytest.fixture(scope="module")
def corpus():
    ids = np.arange(1, 4001, dtype=np.int64) * 3  # sparse ids, like chunk ids after deletes
    return ids, clustered(len(ids))


@pytest.fixture(scope="module")
def ivf(corpus):
    ids, matrix = corpus
    layout = planned_layout(len(ids), VectorSettings(approximate_above=1000))
    return VectorIndex.build(DIMENSIONS, ids, reader(ids, matrix), layout, recall=0.95)


def queries(count: int = 100) -> np.ndarray:
    return clustered(count, seed=1)


def test_flat_search_matches_brute_force(corpus):
    ids, matrix = corpus
    index = VectorIndex.build(DIMENSIONS, ids, reader(ids, matrix), Layout())
    for query in queries(20):
        found, scores = index.search(query, 10)
        assert found.tolist() == brute_force(matrix, ids, query, 10)
        assert np.allclose(scores, np.sort(matrix @ query)[::-1][:10], atol=1e-5)


def test_ivf_layout_follows_faiss_guidance_and_records_its_calibration(ivf, corpus):
    assert ivf.layout.kind == "ivf"
    assert ivf.layout.nlist == int(4 * np.sqrt(len(corpus[0])))
    assert 1 <= ivf.layout.nprobe <= ivf.layout.nlist
    assert ivf.layout.recall >= 0.95
    assert ivf.count == len(corpus[0]) and np.array_equal(ivf.ids(), corpus[0])


def test_ivf_top_hits_match_exact_search_within_the_recall_bound(ivf, corpus):
    ids, matrix = corpus
    found = [ivf.search(query, 10)[0].tolist() for query in queries()]
    exact = [brute_force(matrix, ids, query, 10) for query in queries()]
    assert recall_at(found, exact) >= 0.95
    # The best hit is almost always the same one.
    assert np.mean([f[0] == e[0] for f, e in zip(found, exact)]) >= 0.95


def test_ivf_honours_deletes_and_filters(corpus):
    ids, matrix = corpus
    layout = planned_layout(len(ids), VectorSettings(approximate_above=1000))
    index = VectorIndex.build(DIMENSIONS, ids, reader(ids, matrix), layout)
    query = queries(1)[0]
    top = index.search(query, 10)[0]
    index.remove(top[:5])
    after = index.search(query, 10)[0]
    assert not set(top[:5].tolist()) & set(after.tolist())
    assert index.count == len(ids) - 5
    # A filter admitting 2% of the vectors still finds its best ones: more cells are probed.
    allowed = np.setdiff1d(ids[::50], top[:5])
    found = index.search(query, 10, allowed)[0]
    assert set(found.tolist()) <= set(allowed.tolist())
    kept = np.isin(ids, allowed)
    assert recall_at([found.tolist()], [brute_force(matrix[kept], ids[kept], query, 10)]) >= 0.9


def test_saved_ivf_is_mapped_and_copied_into_memory_before_a_change(tmp_path, ivf):
    ivf.save(tmp_path, generation=7)
    note = json.loads((tmp_path / "vectors.json").read_text())
    assert note["kind"] == "ivf" and note["nprobe"] == ivf.layout.nprobe and note["generation"] == 7
    loaded, read = VectorIndex.load(tmp_path)
    assert loaded.mapped and read.layout == ivf.layout
    query = queries(1)[0]
    assert loaded.search(query, 10)[0].tolist() == ivf.search(query, 10)[0].tolist()
    loaded.remove(loaded.search(query, 1)[0])
    assert not loaded.mapped and loaded.count == ivf.count - 1


@pytest.mark.parametrize("settings", [VectorSettings(), VectorSettings(approximate_above=1000), VectorSettings(approximate_above=1000, encoding="sq8")])
def test_a_mapped_file_is_searched_like_the_index_in_memory(tmp_path, corpus, settings, monkeypatch):
    # A mapped file is searched with its cells read ahead; the answers must not change.
    from semsearch.storage.faiss import readahead

    advised, refused = [], []
    real = readahead.read_ahead

    def recording(ranges):
        ranges = list(ranges)
        advised.extend(ranges)
        refused.append(real(ranges))
        return refused[-1]

    monkeypatch.setattr(readahead, "read_ahead", recording)
    ids, matrix = corpus
    built = VectorIndex.build(DIMENSIONS, ids, reader(ids, matrix), planned_layout(len(ids), settings))
    built.save(tmp_path, generation=1)
    loaded, _ = VectorIndex.load(tmp_path)
    assert loaded.mapped
    for number, query in enumerate(queries(20)):
        allowed = ids[number::7] if number % 2 else None
        found, scores = loaded.search(query, 10, allowed)
        expected, expected_scores = built.search(query, 10, allowed)
        assert found.tolist() == expected.tolist() and np.allclose(scores, expected_scores)
    assert advised and all(address > 0 and length > 0 for address, length in advised)
    assert sum(refused) == 0, "the kernel took every range as a part of the mapping"


def test_read_ahead_advises_each_part_once_in_a_while(monkeypatch):
    from semsearch.storage.faiss import readahead

    now = [100.0]
    advised = []
    monkeypatch.setattr(readahead.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(readahead, "read_ahead", lambda ranges: advised.append(list(ranges)))
    ahead = readahead.ReadAhead()
    ahead([1, 2], lambda due: [(part, 1) for part in due])
    now[0] += readahead.AGAIN_AFTER / 2
    ahead([2, 3], lambda due: [(part, 1) for part in due])
    now[0] += readahead.AGAIN_AFTER / 2
    ahead([1, 3], lambda due: [(part, 1) for part in due])
    assert advised == [[(1, 1), (2, 1)], [(3, 1)], [(1, 1)]]


def test_read_ahead_of_real_mapped_memory_is_harmless(tmp_path):
    import mmap

    from semsearch.storage.faiss.readahead import read_ahead

    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)) * 1000)
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        address = np.frombuffer(mapped, dtype=np.uint8).ctypes.data
        assert read_ahead([(address + 100, 50_000), (address, 0)]) == 0
        assert mapped[300] == 300 % 256
        assert read_ahead([(address + (1 << 40), 4096)]) == 1, "a range outside the mapping is refused"


def test_sq8_keeps_recall_and_takes_a_quarter_of_the_memory(corpus):
    ids, matrix = corpus
    settings = VectorSettings(approximate_above=1000, encoding="sq8")
    index = VectorIndex.build(DIMENSIONS, ids, reader(ids, matrix), planned_layout(len(ids), settings))
    plain = VectorIndex.build(DIMENSIONS, ids, reader(ids, matrix), planned_layout(len(ids), VectorSettings(approximate_above=1000)))
    found = [index.search(query, 10)[0].tolist() for query in queries()]
    assert recall_at(found, [brute_force(matrix, ids, q, 10) for q in queries()]) >= 0.9
    assert index.memory_bytes() < plain.memory_bytes() / 2


def test_layout_changes_only_outside_its_range():
    settings = VectorSettings(approximate_above=1000)
    flat = planned_layout(900, settings)
    assert flat.kind == "flat" and planned_layout(1000, settings, flat) == flat
    ivf = planned_layout(1001, settings, flat)
    assert ivf.kind == "ivf" and ivf.trained_for == 1001
    assert planned_layout(600, settings, ivf) == ivf  # hysteresis: still IVF above half the threshold
    assert planned_layout(499, settings, ivf).kind == "flat"
    assert planned_layout(4004, settings, ivf) == ivf
    assert planned_layout(4005, settings, ivf).trained_for == 4005  # grown 4×: cells resized


# -- through the Index ------------------------------------------------------------------------


def texts(count: int, seed: int = 0, topics: int = 12) -> list[str]:
    """Texts on a few topics (each its own words), so that their vectors form clusters as
    documents' do; `topics=0`: words drawn from one vocabulary, vectors without clusters."""
    rng = np.random.default_rng(seed)
    if not topics:
        vocabulary = [f"word{i}" for i in range(400)]
        return [" ".join(rng.choice(vocabulary, 12)) for _ in range(count)]
    words = [[f"topic{t}word{i}" for i in range(12)] for t in range(topics)]
    return [" ".join(rng.choice(words[rng.integers(topics)], 12)) + f" item{n}" for n in range(count)]


def exact_ranking(index: Index, query: str, k: int) -> list[int]:
    """Brute force over the vectors in SQLite, through the same embedder."""
    stored = list(index._backend.store.chunk_vectors(index.dimensions))
    ids = np.concatenate([i for i, _ in stored])
    matrix = np.concatenate([m for _, m in stored])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return brute_force(matrix, ids, index.embedder.embed_query(query), k)


def test_index_switches_to_ivf_past_the_threshold_and_back(tmp_path, fake):
    settings = VectorSettings(approximate_above=300)
    corpus = texts(700)
    with Index.open(tmp_path / "ix", embedder=fake, vectors=settings) as index:
        index.add_texts([f"t{i}" for i in range(250)], corpus[:250])
        assert read_note(index.path).kind == "flat"
        assert index.status().index_type == "flat"
        index.add_texts([f"t{i}" for i in range(250, 700)], corpus[250:])
        note = read_note(index.path)
        assert note.kind == "ivf" and note.count == 700 and note.recall >= 0.95
        status = index.status()
        assert status.index_type.startswith("ivf (nlist") and status.index_vectors == 700
        assert status.index_memory_bytes > 700 * 64 * 4 and status.index_disk_bytes > 0
        query = corpus[123]
        found = [hit.chunk_id for hit in index.search(query, mode="dense", limit=10, per_file=0)]
        assert recall_at([found], [exact_ranking(index, query, 10)]) >= 0.9
        removed = index.remove([f"t{i}" for i in range(0, 700, 2)])
        assert removed == 350 and read_note(index.path).kind == "ivf"  # 350 > 300 / 2: hysteresis
        hits = index.search(corpus[124], mode="dense", limit=20, per_file=0)
        assert hits and all(int(hit.path[1:]) % 2 == 1 for hit in hits)  # deletes honoured
        index.remove([f"t{i}" for i in [*range(1, 700, 4), *range(3, 300, 4)]])
        assert read_note(index.path).kind == "flat" and read_note(index.path).count == 100  # < 300 / 2
    # A fresh process finds the recorded layout and searches the mapped file.
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert index.vector_settings == settings
        assert index.search(corpus[303], mode="dense", limit=1, per_file=0)[0].path == "t303"


def test_a_rebuilt_cache_takes_the_layout_its_size_calls_for(tmp_path, fake):
    corpus = texts(500)
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts([f"t{i}" for i in range(500)], corpus)
        assert read_note(index.path).kind == "flat"
    (tmp_path / "ix" / "vectors.faiss").unlink()
    # New settings rebuild the cache on next use, approximate now.
    with Index.open(tmp_path / "ix", embedder=fake, vectors=VectorSettings(approximate_above=100, encoding="sq8")) as index:
        hits = index.search(corpus[42], mode="dense", limit=5, per_file=0)
        assert hits[0].path == "t42"
        note = read_note(index.path)
        assert (note.kind, note.encoding) == ("ivf", "sq8")
        assert index.check().problems == []


# -- approximate search only where it beats exact ----------------------------------------------


def test_vectors_without_clusters_keep_exact_search_and_say_why():
    """Random vectors have no cells to skip: the recall target needs most of an IVF's cells,
    so exact search is kept; vectors on a few topics get an IVF that probes few of them."""
    settings = VectorSettings(approximate_above=1000)
    ids = np.arange(1, 3001, dtype=np.int64)
    scattered = np.random.default_rng(5).standard_normal((len(ids), DIMENSIONS)).astype(np.float32)
    layout = planned_layout(len(ids), settings)
    assert layout.kind == "ivf"
    built = VectorIndex.build(DIMENSIONS, ids, reader(ids, scattered), layout, recall=0.95)
    assert built.layout.kind == "flat" and built.layout.trained_for == 3000
    assert f"of its {layout.nlist} cells" in built.layout.reason and "exact search kept" in built.layout.describe()
    query = scattered[17]
    found, _ = built.search(query, 10)
    assert list(found) == brute_force(scattered / np.linalg.norm(scattered, axis=1, keepdims=True), ids, query / np.linalg.norm(query), 10)
    topical = VectorIndex.build(DIMENSIONS, ids, reader(ids, clustered(len(ids))), layout, recall=0.95)
    assert topical.layout.kind == "ivf" and topical.layout.reason is None
    assert topical.layout.nprobe <= layout.nlist // 2
    # Not measured again at about the same size; again once the index has grown well past it.
    assert planned_layout(3500, settings, built.layout) == built.layout
    assert planned_layout(12_001, settings, built.layout).kind == "ivf"


def test_status_shows_why_exact_search_was_kept(tmp_path, fake):
    settings = VectorSettings(approximate_above=300)
    corpus = texts(700, topics=0)
    with Index.open(tmp_path / "ix", embedder=fake, vectors=settings) as index:
        index.add_texts([f"t{i}" for i in range(700)], corpus)
        note = read_note(index.path)
        assert note.kind == "flat" and note.reason and note.count == 700
        status = index.status()
        assert status.index_type.startswith("flat (exact search kept: an IVF needed")
        assert status.index_layout["reason"] == note.reason
        assert index.search(corpus[42], mode="dense", limit=1, per_file=0)[0].path == "t42"
        index.add_texts(["t700"], ["one more text"])  # the decision stands: no new measurement
        assert read_note(index.path).reason == note.reason
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert index.status().index_type == status.index_type
