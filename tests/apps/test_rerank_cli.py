"""`search --rerank`, `eval --rerank` and `models` against a loopback rerank endpoint."""

from __future__ import annotations

import json

import pytest

from tests.apps.test_remote_cli import run
from tests.openai_server import as_endpoint
from tests.test_evaluation import write_dataset

TOKEN = "rerank-cli-token-5e0a77"
MODEL = "Qwen/Qwen3-VL-Reranker-8B"


@pytest.fixture
def server(monkeypatch):
    with as_endpoint(monkeypatch, TOKEN) as running:
        yield running


@pytest.fixture
def orchard(tmp_path, fake_model):
    """An index where keyword search puts the answer second: its words are rarer."""
    folder = tmp_path / "orchard"
    folder.mkdir()
    (folder / "apples.txt").write_text("apple apple apple apple banana")
    (folder / "pie.txt").write_text("apple pie from the ORCHARD harvest")
    (folder / "pears.txt").write_text("pears and plums")
    assert run("index", str(folder), "--model", "fake").exit_code == 0
    return folder


def orchard_rule(query: str, document: str) -> float:
    return 1.0 if "ORCHARD" in document else 0.0


def test_search_rerank_follows_the_rerankers_rule_and_names_the_service(server, orchard):
    server.rerank_rule = orchard_rule
    plain = json.loads(run("search", "apple", "--mode", "keyword", "--json").stdout)
    assert plain[0]["path"].endswith("apples.txt") and plain[0]["reranked"] is None
    result = run("search", "apple", "--mode", "keyword", "--rerank", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert [hit["path"].rsplit("/", 1)[1] for hit in hits] == ["pie.txt", "apples.txt"]
    assert all(hit["reranked"] is True for hit in hits)
    host = server.url.split("/")[2]
    assert f"Reranking at {host} (IONOS_API_TOKEN in the environment)." in result.stderr
    assert TOKEN not in result.output
    text = run("search", "apple", "--mode", "keyword", "--rerank", "--explain")
    assert "  blend 0.981" in text.stdout  # 0.75 × (1 - 1/40) + 0.25 × 1
    assert "first stage rank 2, score" in text.stdout and "reranker score 1.0000" in text.stdout
    assert "blend 0.75 × rank 2 of 40 (0.9750) + 0.25 × relevance 1.0000 = 0.981" in text.stdout


def test_semsearch_rerank_model_turns_it_on_and_no_rerank_off(server, orchard, monkeypatch):
    server.rerank_rule = orchard_rule
    monkeypatch.setenv("SEMSEARCH_RERANK_MODEL", MODEL)
    result = run("search", "apple", "--mode", "keyword", "--json")
    assert json.loads(result.stdout)[0]["path"].endswith("pie.txt")
    assert f"Reranking with {MODEL} at" in result.stderr
    off = run("search", "apple", "--mode", "keyword", "--no-rerank", "--json")
    assert json.loads(off.stdout)[0]["path"].endswith("apples.txt") and len(server.reranks) == 1


def test_a_failing_reranker_keeps_the_first_stage_order_with_a_one_line_note(server, orchard, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_MAX_RETRIES", "1")
    server.rerank_script = [503, 503]
    result = run("search", "apple", "--mode", "keyword", "--rerank", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits[0]["path"].endswith("apples.txt") and all(hit["reranked"] is False for hit in hits)
    notes = [line for line in result.stderr.splitlines() if line.startswith("Not reranked")]
    assert notes == [
        f"Not reranked, results are in first-stage order: The rerank service at {server.url} kept failing "
        f"(HTTP 503) for model {MODEL} (2 attempts)."
    ]
    assert "Rerank request to" in result.stderr and "retry 1 of 1" in result.stderr


def test_a_wrong_token_is_the_same_clear_error_as_for_embedding(server, orchard, monkeypatch):
    monkeypatch.setenv("IONOS_API_TOKEN", "not-the-token")
    result = run("search", "apple", "--rerank")
    assert result.exit_code == 1
    assert "rejected the API token (HTTP 401)" in result.stderr and "IONOS_API_TOKEN" in result.stderr


def test_models_lists_the_rerank_models_the_endpoint_serves(server):
    server.rerank_models = [MODEL, "acme/tiny-reranker"]
    lines = run("models").stdout.splitlines()
    assert any(line.startswith(MODEL) and "[rerank]" in line for line in lines)
    assert any(line.startswith("acme/tiny-reranker") and "[rerank]" in line for line in lines)
    assert not any(line.startswith("BAAI/bge-m3") and "[rerank]" in line for line in lines)


def test_eval_rerank_measures_the_rerankers_effect(server, fake_model, tmp_path):
    server.rerank_rule = orchard_rule
    corpus = {
        "d1": ("", "apple apple apple apple banana"),
        "d2": ("", "apple pie from the ORCHARD harvest"),
        "d3": ("", "pears and plums"),
    }
    dataset = write_dataset(tmp_path / "fruit", corpus, {"q1": "apple"}, [("q1", "d2", 1)])
    index = tmp_path / "eval-index"
    plain = run("--index", str(index), "eval", str(dataset), "--model", "fake", "--mode", "keyword", "--json")
    reranked = run("--index", str(index), "eval", str(dataset), "--mode", "keyword", "--rerank", "--json")
    assert json.loads(plain.stdout)["mrr@10"] == 0.5 and json.loads(plain.stdout)["reranked"] == 0
    report = json.loads(reranked.stdout)
    assert report["mrr@10"] == 1.0 and report["reranked"] == 1 and report["reranker"] == MODEL
    text = run("--index", str(index), "eval", str(dataset), "--mode", "keyword", "--rerank")
    assert f"reranked by {MODEL} (1 of 1 queries)" in text.stdout
