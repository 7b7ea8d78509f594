"""`semsearch mcp`: the MCP server spoken to over stdio by the SDK's own client, the way a
desktop assistant launches it (a process of its own, its index embedded through a loopback
OpenAI-compatible server)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from semsearch import Index
from tests.openai_server import as_endpoint

TOKEN = "ionos-secret-7f3a2b91c4"


@pytest.fixture
def endpoint(monkeypatch):
    with as_endpoint(monkeypatch, TOKEN) as running:
        yield running


@pytest.fixture
def indexed(endpoint, sample_docs, tmp_path) -> Path:
    location = tmp_path / "index"
    with Index.open(location) as index:
        index.add([sample_docs])
    return location


def command(index: Path) -> StdioServerParameters:
    """`python -m semsearch --index INDEX mcp`, in the test's environment."""
    names = ("SEMSEARCH_BASE_URL", "IONOS_API_TOKEN", "SEMSEARCH_RPS", "SEMSEARCH_BURST", "HOME", "XDG_DATA_HOME")
    env = {name: os.environ[name] for name in names if name in os.environ}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "semsearch", "--index", str(index), "mcp"], env=env, cwd=os.getcwd()
    )


def talk(index: Path, tmp_path: Path, conversation) -> str:
    """Run `conversation(session)` against a fresh server process, spoken to by the SDK's
    stdio client; returns what the server wrote on stderr."""
    log = tmp_path / "mcp-stderr.log"
    with log.open("w") as errors:

        async def main():
            async with stdio_client(command(index), errlog=errors) as streams:
                async with ClientSession(*streams, read_timeout_seconds=60) as session:
                    await session.initialize()
                    await conversation(session)

        anyio.run(main)
    return log.read_text()


def test_lists_read_only_tools_that_say_when_they_help(indexed, tmp_path):
    found = {}

    async def conversation(session):
        found.update({tool.name: tool for tool in (await session.list_tools()).tools})

    talk(indexed, tmp_path, conversation)
    assert sorted(found) == ["index_status", "read_document", "read_passage", "search"]
    for tool in found.values():
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        assert len(tool.description) > 80 and "\n    " not in tool.description
    search = found["search"]
    parameters = search.input_schema["properties"]
    assert {"query", "mode", "limit", "per_file", "path", "ext", "after", "before"} <= set(parameters)
    assert search.input_schema["required"] == ["query"]
    assert parameters["mode"]["enum"] == ["hybrid", "dense", "keyword"]
    assert parameters["limit"]["maximum"] == 100
    hit = search.output_schema["$defs"]["Passage"]["properties"]
    assert {"path", "start_line", "end_line", "page", "section", "score", "text", "chunk_id"} <= set(hit)


def test_search_finds_the_document_that_answers(indexed, tmp_path, endpoint):
    answers = {}

    async def conversation(session):
        answers["hybrid"] = await session.call_tool("search", {"query": "renew the expired wildcard TLS certificate", "limit": 3})
        answers["filtered"] = await session.call_tool(
            "search", {"query": "renew the expired wildcard TLS certificate", "ext": ["md"], "mode": "keyword"}
        )
        answers["status"] = await session.call_tool("index_status", {})

    errors = talk(indexed, tmp_path, conversation)
    hybrid = answers["hybrid"]
    assert not hybrid.is_error
    results = hybrid.structured_content["results"]
    assert 1 <= len(results) <= 3
    first = results[0]
    assert first["path"].endswith("howto/renew-tls-certificates.txt")
    assert 1 <= first["start_line"] <= first["end_line"] and first["text"] and first["score"] > 0
    assert first["section"] and isinstance(first["chunk_id"], int)
    # Clients that read only text content get the same answer as JSON.
    assert json.loads(hybrid.content[0].text) == hybrid.structured_content
    filtered = answers["filtered"].structured_content["results"]
    assert filtered and all(hit["path"].endswith(".md") for hit in filtered)
    status = answers["status"].structured_content
    assert status["documents"] == 30 and status["model"] == "BAAI/bge-m3" and status["folders"][0].endswith("sample_docs")
    assert TOKEN not in errors + json.dumps(status) + hybrid.content[0].text


def test_bad_arguments_are_tool_errors_an_agent_can_act_on(indexed, tmp_path):
    answers = {}

    async def conversation(session):
        answers["date"] = await session.call_tool("search", {"query": "certificates", "after": "last week"})
        answers["empty"] = await session.call_tool("search", {"query": "   "})
        answers["long"] = await session.call_tool("search", {"query": "word " * 1000})
        answers["mode"] = await session.call_tool("search", {"query": "certificates", "mode": "fuzzy"})
        answers["after"] = await session.call_tool("search", {"query": "certificates"})

    talk(indexed, tmp_path, conversation)
    assert answers["date"].is_error and "after='last week' is not a date: use YYYY-MM-DD" in answers["date"].content[0].text
    assert answers["empty"].is_error and "The query is empty" in answers["empty"].content[0].text
    assert answers["long"].is_error and "at most 2000 characters" in answers["long"].content[0].text
    assert answers["mode"].is_error and "hybrid" in answers["mode"].content[0].text
    # The server is still there and answers.
    assert not answers["after"].is_error and answers["after"].structured_content["results"]


def test_a_missing_index_is_explained_and_found_once_it_exists(endpoint, sample_docs, tmp_path):
    location = tmp_path / "later"
    answers = []

    async def conversation(session):
        answers.append(await session.call_tool("search", {"query": "certificates"}))
        with Index.open(location) as index:
            index.add([sample_docs / "howto"])
        answers.append(await session.call_tool("search", {"query": "certificates"}))

    talk(location, tmp_path, conversation)
    assert answers[0].is_error
    assert f"No index at {location}." in answers[0].content[0].text
    assert "semsearch index FOLDER" in answers[0].content[0].text
    assert not answers[1].is_error
    assert answers[1].structured_content["results"][0]["path"].endswith("renew-tls-certificates.txt")


def test_the_cli_loads_the_sdk_only_for_the_mcp_command():
    import subprocess

    code = "import sys, semsearch.apps.cli; print(sorted({'mcp', 'pydantic', 'starlette'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def test_reads_a_hit_in_context_and_a_range_of_its_document(indexed, tmp_path):
    answers = {}

    async def conversation(session):
        found = await session.call_tool("search", {"query": "renew the expired wildcard TLS certificate", "limit": 1})
        hit = found.structured_content["results"][0]
        answers["hit"] = hit
        answers["passage"] = await session.call_tool("read_passage", {"chunk_id": hit["chunk_id"], "context": 2})
        answers["range"] = await session.call_tool("read_document", {"path": hit["path"], "start_line": 1, "end_line": 4})
        answers["relative"] = await session.call_tool("read_document", {"path": "howto/renew-tls-certificates.txt"})
        answers["gone"] = await session.call_tool("read_passage", {"chunk_id": 10**9})

    talk(indexed, tmp_path, conversation)
    hit = answers["hit"]
    passage = answers["passage"].structured_content
    assert not answers["passage"].is_error
    assert (passage["chunk_id"], passage["path"], passage["start_line"], passage["end_line"]) == (
        hit["chunk_id"], hit["path"], hit["start_line"], hit["end_line"]
    )
    marked = [line["number"] for line in passage["lines"] if line["hit"]]
    assert marked == list(range(hit["start_line"], hit["end_line"] + 1))
    numbers = [line["number"] for line in passage["lines"]]
    assert numbers[0] == max(1, hit["start_line"] - 2) and numbers == list(range(numbers[0], numbers[-1] + 1))
    # Numbered as the library numbers lines: a final newline ends one more, empty, line.
    document = Path(hit["path"]).read_text().split("\n")
    assert [line["text"] for line in passage["lines"]] == document[numbers[0] - 1 : numbers[-1]]
    lines = answers["range"].structured_content
    assert [line["text"] for line in lines["lines"]] == document[:4]
    assert lines["total_lines"] == len(document) and lines["end_line"] == 4
    assert lines["notes"] == [f"Lines 1-4 of {len(document)}: ask for more from line 5."]
    relative = answers["relative"].structured_content
    assert relative["path"] == hit["path"] and relative["start_line"] == 1 and len(relative["lines"]) == len(document)
    assert answers["gone"].is_error and "No chunk 1000000000 in the index" in answers["gone"].content[0].text


def test_only_documents_in_the_index_are_read(endpoint, sample_docs, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the launch codes are 0000\n")
    (sample_docs / "leak.txt").symlink_to(secret)
    location = tmp_path / "index"
    with Index.open(location) as index:
        index.add([sample_docs])
    (sample_docs / "later.txt").write_text("written after indexing\n")
    attempts = [
        str(secret), "../secret.txt", "leak.txt", str(sample_docs / "leak.txt"), "howto/../../secret.txt",
        "%2e%2e/secret.txt", "/etc/passwd", "../../../../../../etc/passwd", str(sample_docs / "howto"), "later.txt",
    ]
    answers = {}

    async def conversation(session):
        for path in attempts:
            answers[path] = await session.call_tool("read_document", {"path": path})

    talk(location, tmp_path, conversation)
    for path, answer in answers.items():
        assert answer.is_error, path
        text = answer.content[0].text
        assert "Only documents in the index can be read" in text, path
        assert "launch codes" not in text and "root:" not in text and answer.structured_content is None


def test_a_running_server_sees_what_another_process_indexes(indexed, sample_docs, tmp_path):
    answers = []

    async def conversation(session):
        answers.append(await session.call_tool("search", {"query": "zanzibar quokka", "mode": "keyword"}))
        (sample_docs / "howto" / "quokkas.md").write_text("# Quokkas\n\nThe zanzibar quokka migration starts in May.\n")
        with Index.open(indexed) as index:
            index.add([sample_docs])
        answers.append(await session.call_tool("search", {"query": "zanzibar quokka", "limit": 1}))

    talk(indexed, tmp_path, conversation)
    assert answers[0].structured_content["results"] == []
    assert answers[1].structured_content["results"][0]["path"].endswith("howto/quokkas.md")
