"""The eval command and its metrics, checked against a hand-computed example."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from semsearch.apps.cli import cli
from semsearch.errors import DatasetError
from semsearch.evaluation import load_dataset, mrr_at, ndcg_at, recall_at


def test_metrics_match_a_hand_computed_example():
    ranked = ["d3", "d1", "d9", "d2"]
    relevant = {"d1": 1, "d2": 2}
    # DCG  = 0/log2(2) + 1/log2(3) + 0/log2(4) + 2/log2(5) = 0.6309298 + 0.8613531 = 1.4922829
    # IDCG = 2/log2(2) + 1/log2(3) = 2.6309298
    assert ndcg_at(ranked, relevant) == pytest.approx(1.4922829 / 2.6309298, abs=1e-6)
    assert ndcg_at(ranked, relevant, k=2) == pytest.approx(0.6309298 / 2.6309298, abs=1e-6)
    assert mrr_at(ranked, relevant) == 0.5
    assert mrr_at(ranked, relevant, k=1) == 0.0
    assert recall_at(ranked, relevant, 2) == 0.5
    assert recall_at(ranked, relevant, 10) == 1.0
    assert ndcg_at(["d2", "d1"], relevant) == pytest.approx(1.0)
    assert ndcg_at([], relevant) == 0.0


def write_dataset(folder, corpus, queries, qrels, split="test"):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in corpus.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": x}) + "\n" for k, x in queries.items()))
    (folder / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in qrels)
    )
    return folder


@pytest.fixture
def dataset(tmp_path):
    corpus = {
        "d1": ("Cats", "Cats purr and sleep in the sun."),
        "d2": ("Dogs", "Dogs bark at the postman."),
        "d3": ("Birds", "Birds sing at dawn."),
        "d4": ("Fish", "Fish swim in cold rivers."),
    }
    queries = {"q1": "purring cats", "q2": "barking dogs postman", "q3": "singing birds", "q4": "unjudged"}
    return write_dataset(tmp_path / "animals", corpus, queries, [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 2), ("q3", "d1", 0)])


def test_load_dataset_keeps_judged_queries(dataset):
    data = load_dataset(dataset)
    assert set(data.queries) == {"q1", "q2", "q3"}
    assert data.qrels["q3"] == {"d3": 2}
    assert data.corpus["d2"] == ("Dogs", "Dogs bark at the postman.")
    with pytest.raises(DatasetError, match="train"):
        load_dataset(dataset, "train")
    with pytest.raises(DatasetError, match="corpus.jsonl"):
        load_dataset(dataset.parent)


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("queries.jsonl", '{"_id": "q9"}', r"queries.jsonl:5 is not an object with _id and text"),
        ("corpus.jsonl", '{"text": "no id"}', r"corpus.jsonl:5 is not an object with _id"),
        ("corpus.jsonl", '["an", "array"]', r"corpus.jsonl:5 is not an object"),
        ("qrels/test.tsv", "q1\td2\tyes", r"test.tsv:6: the score 'yes' is not a whole number"),
    ],
)
def test_a_malformed_dataset_is_a_dataset_error_naming_the_line(dataset, name, line, message):
    with (dataset / name).open("a") as file:
        file.write(line + "\n")
    with pytest.raises(DatasetError, match=message):
        load_dataset(dataset)


def test_an_empty_corpus_is_a_dataset_error(dataset):
    (dataset / "corpus.jsonl").write_text("")
    with pytest.raises(DatasetError, match="holds no documents"):
        load_dataset(dataset)


def test_a_dataset_file_that_is_not_utf8_is_a_dataset_error(dataset):
    (dataset / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(dataset)


def test_eval_command_json(dataset, fake_model):
    result = CliRunner().invoke(cli, ["eval", str(dataset), "--model", "fake", "--mode", "keyword", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"ndcg@10", "mrr@10", "recall@10", "recall@100", "queries", "index_seconds", "latency_p50_ms"} <= set(report)
    assert report["queries"] == 3
    assert report["ndcg@10"] == 1.0 and report["mrr@10"] == 1.0 and report["recall@100"] == 1.0


def test_eval_command_text_and_a_reused_index(dataset, fake_model, tmp_path):
    index = tmp_path / "eval-index"
    first = CliRunner().invoke(cli, ["--index", str(index), "eval", str(dataset), "--model", "fake"])
    assert first.exit_code == 0, first.output
    assert "nDCG@10" in first.output and "(test, 3 queries)" in first.output
    embedded = len(fake_model.embedded)
    second = CliRunner().invoke(cli, ["--index", str(index), "eval", str(dataset), "--json"])
    assert json.loads(second.output)["queries"] == 3
    assert len(fake_model.embedded) == embedded, "the corpus was not embedded again"


def test_eval_with_queries_from_another_dataset(dataset, tmp_path, fake_model):
    other = write_dataset(
        tmp_path / "other", {"x": ("", "unused")}, {"q1": "cats purr", "q2": "postman dogs"}, [("q1", "d1", 1), ("q2", "d2", 1)]
    )
    result = CliRunner().invoke(cli, ["eval", str(dataset), "--queries", str(other), "--model", "fake", "--json"])
    report = json.loads(result.output)
    assert report["queries"] == 2 and report["ndcg@10"] == 1.0
