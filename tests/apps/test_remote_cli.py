"""The remote path end to end: CLI and library against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import semsearch
from semsearch.apps.cli import cli
from tests.openai_server import OpenAIServer, as_endpoint, vector_for

TOKEN = "ionos-secret-5d1c9e77a0"


@pytest.fixture
def server(monkeypatch):
    with as_endpoint(monkeypatch, TOKEN) as running:
        yield running


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_secret_kept(*places) -> None:
    for place in places:
        assert TOKEN not in place


def files_text(folder) -> str:
    return "".join(path.read_bytes().decode("latin-1") for path in folder.rglob("*") if path.is_file())


def test_default_model_with_a_token_indexes_through_the_endpoint(server, docs, tmp_path):
    result = run("index", str(docs))
    assert result.exit_code == 0, result.output
    assert "using model BAAI/bge-m3 (IONOS_API_TOKEN is set)" in result.output
    assert "Remote usage:" in result.output and "tokens" in result.output
    assert server.embedding_requests >= 1 and server.formats == ["base64"] * len(server.formats)
    result = run("search", "night trains to vienna", "--json")
    hits = json.loads(result.stdout)
    assert hits[0]["path"].endswith("travel.html")
    status = json.loads(run("status", "--json").stdout)
    assert status["model"] == "BAAI/bge-m3" and status["dimensions"] == 1024
    assert_secret_kept(result.output, files_text(tmp_path / "index"))


def test_search_uses_the_index_model_and_its_query_instruction(server, docs):
    run("index", str(docs), "--model", "BAAI/bge-large-en-v1.5")
    server.reset_counters()
    run("search", "kittens")
    assert server.texts == ["Represent this sentence for searching relevant passages: kittens"]


def test_unknown_model_learns_its_dimension(server, docs):
    server.models["acme/embedder-small"] = 256
    result = run("index", str(docs), "--model", "acme/embedder-small")
    assert result.exit_code == 0, result.output
    assert json.loads(run("status", "--json").stdout)["dimensions"] == 256


def test_models_lists_local_and_the_endpoints_embedding_models(server):
    server.models["meta-llama/Llama-3.3-70B-Instruct"] = 8
    result = run("models")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("local")
    assert f"Asking {server.url.split('/')[2]} (IONOS_API_TOKEN in the environment) for its models." in result.stderr
    assert any(line.startswith("BAAI/bge-m3") and "1024 dims" in line and server.url in line for line in lines)
    assert not any("Llama" in line for line in lines)


def test_embed_and_similarity_commands(server):
    result = run("embed", "Michael Jackson", "Metallica", "--model", "BAAI/bge-m3")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["model"] == "BAAI/bge-m3" and payload["dimensions"] == 1024
    assert np.allclose(payload["data"][1]["embedding"], vector_for("Metallica", 1024), atol=1e-6)
    assert payload["usage"]["requests"] == 1 and payload["usage"]["prompt_tokens"] > 0
    result = run("similarity", "Michael Jackson", "Michael Jackson sings", "--model", "BAAI/bge-m3")
    expected = float(vector_for("Michael Jackson", 1024) @ vector_for("Michael Jackson sings", 1024))
    assert abs(float(result.stdout) - expected) < 1e-3
    assert "Model BAAI/bge-m3 at 127.0.0.1:" in result.stderr and TOKEN not in result.stderr


def test_library_embed_and_similarity_go_through_the_same_client(server):
    vectors = semsearch.embed(["Michael Jackson", "Metallica"], model="BAAI/bge-m3")
    assert vectors.shape == (2, 1024)
    assert -1.0 <= semsearch.similarity("Michael Jackson", "Metallica", model="BAAI/bge-m3") <= 1.0


def test_library_calls_are_paced_and_retried_like_indexing(server, monkeypatch):
    from semsearch.api import get_embedder

    monkeypatch.setenv("SEMSEARCH_RPS", "5")
    monkeypatch.setenv("SEMSEARCH_BURST", "10")
    server.script, server.retry_after = [429, 500], 0.2
    vectors = semsearch.embed(["Michael Jackson", "Metallica"], model="BAAI/bge-m3")
    assert np.allclose(vectors[1], vector_for("Metallica", 1024), atol=1e-6)
    embedder = get_embedder("BAAI/bge-m3")
    assert (embedder.rps, embedder.burst) == (5.0, 10)
    assert (embedder.usage.rate_limited, embedder.usage.retries, embedder.usage.requests) == (1, 2, 3)


def test_wrong_token_is_explained_and_never_shown(server, docs, tmp_path, monkeypatch):
    server.leaky_errors = True  # the server echoes the Authorization header in its errors
    monkeypatch.setenv("IONOS_API_TOKEN", TOKEN + "-wrong")
    result = run("index", str(docs), "--model", "BAAI/bge-m3")
    assert result.exit_code == 1
    assert "IONOS_API_TOKEN" in result.output and "missing or wrong" in result.output
    assert server.statuses.count(401) == 1, "a rejected token is not retried"
    assert_secret_kept(result.output.replace(TOKEN + "-wrong", "!"), files_text(tmp_path))
    assert TOKEN + "-wrong" not in result.output


def test_missing_token_for_a_remote_model(server, docs, monkeypatch):
    monkeypatch.delenv("IONOS_API_TOKEN")
    result = run("index", str(docs), "--model", "BAAI/bge-m3")
    assert result.exit_code == 1
    assert "No API token" in result.output and "IONOS_API_TOKEN" in result.output
    assert server.requests == 0


def test_unknown_model_suggests_semsearch_models(server, docs):
    result = run("index", str(docs), "--model", "no/such-model")
    assert result.exit_code == 1
    assert "no/such-model" in result.output and "semsearch models" in result.output


def test_service_failure_keeps_what_was_indexed(server, docs, tmp_path, monkeypatch):
    first = tmp_path / "first"
    first.mkdir()
    (first / "boats.txt").write_text("Sailing boats need wind and a good keel.")
    assert run("index", str(first)).exit_code == 0
    server.error_rate = 1.0
    monkeypatch.setenv("SEMSEARCH_MAX_RETRIES", "2")
    result = run("index", str(docs))
    assert result.exit_code == 1
    assert "kept failing (HTTP 500)" in result.output and "(3 attempts)" in result.output
    assert "Nothing already embedded was lost" in result.output
    server.error_rate = 0.0
    assert "searchable by keyword" in result.output
    hits = json.loads(run("search", "sailing boats wind", "--json").stdout)
    assert hits[0]["path"].endswith("boats.txt")
    # The documents read meanwhile are written, their texts waiting for the service.
    status = json.loads(run("status", "--json").stdout)
    assert status["vectors"] == 1 and status["waiting_chunks"] == status["chunks"] - 1 > 0
    cats = json.loads(run("search", "cats purr", "--mode", "keyword", "--json").stdout)
    assert cats[0]["path"].endswith("cats.md")
    assert_secret_kept(result.output, files_text(tmp_path))


def test_a_search_that_cannot_reach_the_service_says_keyword_search_works_offline(server, docs, monkeypatch):
    assert run("index", str(docs)).exit_code == 0
    from tests.embedding.test_remote import closed_port_url

    url = closed_port_url()
    monkeypatch.setenv("SEMSEARCH_BASE_URL", url)
    result = run("search", "night trains to vienna")
    assert result.exit_code == 1
    assert f"Could not connect to the embedding service at {url} (3 attempts: connection refused)." in result.stderr
    assert "`--mode keyword` searches without the service, offline." in result.stderr
    assert "Nothing already embedded was lost" not in result.output
    # Each retry was announced on stderr as it happened.
    host = url.split("/")[2]
    assert f"Embedding request to {host} failed (connection refused); retry 1 of 2 in" in result.stderr
    assert f"Embedding request to {host} failed (connection refused); retry 2 of 2 in" in result.stderr
    assert_secret_kept(result.output)
    offline = run("search", "night trains to vienna", "--mode", "keyword", "--json")
    assert offline.exit_code == 0 and json.loads(offline.stdout)[0]["path"].endswith("travel.html")


def test_a_service_that_never_answers_gives_up_after_semsearch_timeout(server, docs, monkeypatch, tmp_path):
    from tests.openai_server import SilentServer

    monkeypatch.setenv("SEMSEARCH_TIMEOUT", "1")
    with SilentServer() as silent:
        monkeypatch.setenv("SEMSEARCH_BASE_URL", silent.url)
        result = run("index", str(docs))
    assert result.exit_code == 1
    assert f"The embedding service at {silent.url} did not answer within 1 s" in result.stderr
    assert "SEMSEARCH_TIMEOUT sets how many seconds to wait." in result.stderr
    assert "failed (no answer within 1 s); retry 1 of 1 in" in result.stderr
    assert "Nothing already embedded was lost" in result.stderr
    assert not (tmp_path / "index").exists(), "no index is set up for a model that never answered"
    assert_secret_kept(result.output)


@pytest.mark.parametrize("value", ["soon", "0"])
def test_a_bad_semsearch_timeout_is_one_clear_line(server, docs, monkeypatch, value):
    monkeypatch.setenv("SEMSEARCH_TIMEOUT", value)
    result = run("index", str(docs))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "SEMSEARCH_TIMEOUT" in result.stderr and "greater than zero" in result.stderr


def test_batches_are_paced_and_resized_through_the_index(server, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        (folder / f"n{i}.txt").write_text(f"note {i} about item{i} and topic{i % 17}")
    server.max_batch = 64
    result = run("index", str(folder), "--json")
    summary = json.loads(result.stdout)
    assert summary["new"] == 300 and summary["chunks_embedded"] == 300
    assert 1 <= server.statuses.count(413) <= 4, "two refusals teach the size: 256, 128, then 64"
    assert sorted(server.texts) == sorted(set(server.texts)), "no text embedded twice"
    assert summary["usage"]["inputs"] == 300


LONG_WORDS = (
    "Donaudampfschifffahrtsgesellschaftskapitän Rechtsschutzversicherungsgesellschaften "
    "internationalisation électroencéphalographie Überbrückungskredit naïveté "
    "x86_64-unknown-linux-gnu https://example.org/a/very/long/path?with=query&and=more 3.14159 "
    "the quick brown fox jumps over the lazy dog while Grüße aus Köln arrive"
).split()


def write_long_documents(folder) -> None:
    """Documents that cut into chunks near any model's limit: long titles and headings, long
    paragraphs of long words, German and French, code, and a line with no space at all."""
    folder.mkdir()
    words = [LONG_WORDS[(i * 7) % len(LONG_WORDS)] for i in range(3000)]
    sections = "".join(
        f"\n## Abschnitt {n}: {' '.join(words[n:n + 12])}\n\n" + " ".join(words[n * 100:n * 100 + 400]) + ".\n"
        for n in range(6)
    )
    (folder / "handbuch.md").write_text(f"# {' '.join(words[:20])}\n{sections}", encoding="utf-8")
    (folder / "notes.txt").write_text("\n\n".join(" ".join(words[i:i + 250]) for i in range(0, 3000, 250)))
    (folder / "tool.py").write_text(
        "".join(f"def function_{i}(argument_{i}, {', '.join(words[i:i + 8])}):\n    return {i}\n\n" for i in range(80))
    )
    (folder / "blob.txt").write_text("A blob follows.\n\n" + "QUJD" * 900 + "\n")


@pytest.mark.parametrize(
    ("model", "limit"),
    [("sentence-transformers/paraphrase-multilingual-mpnet-base-v2", 128), ("BAAI/bge-large-en-v1.5", 512)],
)
def test_no_input_over_the_models_limit_is_ever_sent(server, tmp_path, model, limit):
    from semsearch.embedding.local import xlmr_token_count

    # The server counts XLM-RoBERTa tokens, the vocabulary of mpnet; bge-large's BERT
    # vocabulary is not at hand, so for it the client's margin is checked as well.
    server.max_input_tokens, server.count_tokens = limit, xlmr_token_count
    folder = tmp_path / "long"
    write_long_documents(folder)
    result = run("index", str(folder), "--model", model, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new"] == 4 and summary["skipped"] == 0
    assert 400 not in server.statuses, "the service never had to refuse an input as too long"
    # The first text is the one a new index is set up with, to reach the model first.
    assert server.texts[0] == "semsearch"
    counts = [xlmr_token_count(text) for text in server.texts[1:]]
    assert max(counts) <= limit and len(counts) == summary["chunks_embedded"]
    if model == "BAAI/bge-large-en-v1.5":
        assert max(counts) <= (limit - 2) / 1.25
    assert max(counts) > limit // 2, "chunks are sized to the limit, not far below it"


def test_an_input_the_service_still_refuses_is_split_and_one_bad_chunk_does_not_stop_the_run(server, tmp_path):
    from tests.openai_server import token_count

    # The service is stricter than its model card says, and refuses one text outright.
    server.max_input_tokens = 60
    server.count_tokens = lambda text: 10**6 if "poison" in text else token_count(text)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.txt").write_text(" ".join(f"lighthouse{i % 9} keepers watch ships" for i in range(40)))
    (folder / "bad.txt").write_text("This note mentions poison, which this service will not embed at all.")
    for i in range(5):
        (folder / f"fine{i}.txt").write_text(f"Short note {i} about gardening and tomato{i}.")
    result = run("index", str(folder), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new"] == 6 and summary["skipped_by_reason"] == {"the model rejected a chunk even on its own": 1}
    assert max(token_count(text) for text in server.texts) <= 60
    fine = [text for text in server.texts if text.startswith("Short note")]
    assert sorted(fine) == sorted(set(fine)) and len(fine) == 5, "the good chunks were embedded once"
    hits = json.loads(run("search", "lighthouse keepers watch ships", "--json").stdout)
    assert hits[0]["path"].endswith("long.txt")


def test_an_interrupted_run_keeps_what_was_paid_for_and_the_next_run_resumes(server, tmp_path, monkeypatch):
    from semsearch.embedding.remote.endpoints import EndpointState

    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(120):
        (folder / f"n{i:03d}.txt").write_text(f"note {i} about item{i} and topic{i % 17}")
    EndpointState(None).remember_batch_size(server.url, "BAAI/bge-m3", 10)  # 12 batches
    monkeypatch.setenv("SEMSEARCH_MAX_RETRIES", "1")
    monkeypatch.setenv("SEMSEARCH_CONCURRENCY", "4")
    # The request that reaches the model before the index is set up, and three batches
    # succeed; then the service fails: with four workers, six failures in a row make some
    # batch fail twice, which ends the run; batches still on the wire finish.
    server.script = [None] * 4 + [500] * 6
    result = run("index", str(folder))
    assert result.exit_code == 1
    assert "kept failing (HTTP 500)" in result.output and "Nothing already embedded was lost" in result.output
    assert server.texts[0] == "semsearch"
    first = list(server.texts[1:])
    status = json.loads(run("status", "--json").stdout)
    assert 3 * 10 <= len(first) < 120 and len(set(first)) == len(first)
    assert status["vectors"] == len(first), "every chunk the service embedded was committed"
    assert status["documents"] == 120 and status["waiting_chunks"] == 120 - len(first)

    server.reset_counters()
    result = run("index", str(folder), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chunks_embedded"] == 120 - len(first)
    assert not set(server.texts) & set(first), "nothing committed is sent again"
    assert len(set(server.texts)) == len(server.texts) == 120 - len(first)
    assert json.loads(run("status", "--json").stdout)["documents"] == 120


def test_ctrl_c_stops_a_search_waiting_on_a_service_that_does_not_answer(server, docs, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    assert run("index", str(docs)).exit_code == 0
    server.reset_counters()
    server.script = [("sleep", 60)] * 20
    from tests.conftest import REPO as repo
    search = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "search", "night trains"], cwd=repo, env=dict(os.environ, PYTHONPATH=str(repo)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while not server.embedding_requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.embedding_requests, "the search never asked the service"
    started = time.monotonic()
    search.send_signal(signal.SIGINT)
    _, errors = search.communicate(timeout=90)
    assert time.monotonic() - started < 5, "it waited for the hung request"
    assert search.returncode == 130 and "Interrupted" in errors


def test_settings_that_cannot_work_are_refused_before_anything_is_made(server, docs, tmp_path, monkeypatch):
    index = tmp_path / "fresh"
    result = CliRunner().invoke(cli, ["--index", str(index), "index", str(docs), "--rps", "nan"])
    assert result.exit_code == 2 and "--rps" in result.output and not index.exists()
    result = CliRunner().invoke(cli, ["embed", "", "--model", "BAAI/bge-m3"])
    assert result.exit_code == 2 and "empty" in result.output and server.requests == 0
    monkeypatch.setenv("SEMSEARCH_BASE_URL", "127.0.0.1:8080/v1")
    result = CliRunner().invoke(cli, ["similarity", "a", "b", "--model", "BAAI/bge-m3"])
    assert result.exit_code == 1 and "not an http(s) URL" in result.output and server.requests == 0
    monkeypatch.setenv("SEMSEARCH_BASE_URL", server.url + " ")
    monkeypatch.setenv("IONOS_API_TOKEN", TOKEN + " \n")
    assert run("similarity", "a cat", "a dog", "--model", "BAAI/bge-m3").exit_code == 0, "spaces around them are dropped"
    monkeypatch.setenv("IONOS_API_TOKEN", "two words")
    result = CliRunner().invoke(cli, ["similarity", "a", "b", "--model", "BAAI/bge-m3"])
    assert result.exit_code == 1 and "IONOS_API_TOKEN" in result.output and "two words" not in result.output


@pytest.mark.parametrize("model", ["LOCAL", "locl"])
def test_a_mistyped_model_without_a_token_suggests_the_match_and_makes_no_index(tmp_path, docs, model):
    result = CliRunner().invoke(cli, ["index", str(docs), "--model", model])
    assert result.exit_code == 1 and f"Unknown model '{model}': did you mean 'local'?" in result.output
    assert not (tmp_path / "index").exists(), "nothing is left behind"


def test_a_model_the_endpoint_does_not_serve_makes_no_index_even_for_an_empty_folder(server, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["index", str(empty), "--model", "acme/nosuchmodel"])
    assert result.exit_code == 1 and "does not serve the model 'acme/nosuchmodel'" in result.output
    assert not (tmp_path / "index").exists()
    result = CliRunner().invoke(cli, ["index", str(empty), "--model", "BAAI/bge-m4"])
    assert result.exit_code == 1 and "Did you mean 'BAAI/bge-m3'?" in result.output
    assert run("index", str(empty), "--model", "BAAI/bge-m3").exit_code == 0
    assert json.loads(run("status", "--json").stdout)["model"] == "BAAI/bge-m3"


def test_a_dotenv_cannot_send_the_users_token_to_an_endpoint_it_names(tmp_path, monkeypatch, docs):
    # A downloaded folder's .env points semsearch at its own server; the user's token is in
    # the environment. Nothing may reach that server.
    with OpenAIServer(token=TOKEN) as trap:
        monkeypatch.setenv("IONOS_API_TOKEN", TOKEN)
        (tmp_path / "work" / ".env").write_text(f"SEMSEARCH_BASE_URL={trap.url}\n")
        result = CliRunner().invoke(cli, ["index", str(docs), "--model", "BAAI/bge-m3"])
        assert result.exit_code == 1 and "./.env names the endpoint" in result.output
        assert "same place" in result.output
        assert trap.authorizations == [] and trap.embedding_requests == 0
        assert not (tmp_path / "index").exists()
        # The other way round: a token from a folder's .env is not sent to the user's endpoint.
        monkeypatch.delenv("IONOS_API_TOKEN")
        monkeypatch.setenv("SEMSEARCH_BASE_URL", trap.url)
        (tmp_path / "work" / ".env").write_text(f"IONOS_API_TOKEN={TOKEN}\n")
        result = CliRunner().invoke(cli, ["embed", "hello", "--model", "BAAI/bge-m3"])
        assert result.exit_code == 1 and "./.env holds the token" in result.output
        assert trap.authorizations == []
        # Both from one place: that is what the user set up, and the host is named.
        monkeypatch.delenv("SEMSEARCH_BASE_URL")
        (tmp_path / "work" / ".env").write_text(f"IONOS_API_TOKEN={TOKEN}\nSEMSEARCH_BASE_URL={trap.url}\n")
        result = CliRunner().invoke(cli, ["embed", "hello", "--model", "BAAI/bge-m3"])
        assert result.exit_code == 0, result.output
        host = trap.url.split("/")[2]
        assert f"Model BAAI/bge-m3 at {host} (IONOS_API_TOKEN in ./.env)." in result.stderr
        assert trap.authorizations == [f"Bearer {TOKEN}"] and TOKEN not in result.stderr
