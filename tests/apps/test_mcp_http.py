"""The MCP tools over streamable HTTP, spoken to by the SDK's own client on a free loopback port."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from semsearch import Index
from tests.conftest import FakeEmbedder


@contextlib.contextmanager
def running(app):
    """`app` served by uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def index(sample_docs, tmp_path):
    with Index.open(tmp_path / "index", embedder=FakeEmbedder()) as opened:
        opened.add([sample_docs])
        yield opened


def minimal_app(index: Index):
    """The endpoint in an application of its own, as a server mounts it."""
    from starlette.applications import Starlette

    from semsearch.apps.mcp import http_endpoint

    routes, lifespan = http_endpoint(index, hosts=["127.0.0.1", "localhost", "::1"])
    return Starlette(routes=routes, lifespan=lambda app: lifespan())


def converse(url: str, conversation, headers: dict[str, str] | None = None):
    async def main():
        async with httpx2.AsyncClient(headers=headers or {}, timeout=30) as http:
            async with streamable_http_client(f"{url}/mcp", http_client=http) as streams:
                async with ClientSession(*streams, read_timeout_seconds=30) as session:
                    await session.initialize()
                    return await conversation(session)

    return anyio.run(main)


def test_lists_tools_searches_and_reads_over_http(index):
    async def conversation(session):
        tools = [tool.name for tool in (await session.list_tools()).tools]
        found = await session.call_tool("search", {"query": "renew the expired wildcard TLS certificate", "limit": 2})
        hit = found.structured_content["results"][0]
        passage = await session.call_tool("read_passage", {"chunk_id": hit["chunk_id"], "context": 0})
        refused = await session.call_tool("read_document", {"path": "../../etc/passwd"})
        return tools, found, passage, refused

    with running(minimal_app(index)) as url:
        tools, found, passage, refused = converse(url, conversation)
    assert sorted(tools) == ["index_status", "read_document", "read_passage", "search"]
    hit = found.structured_content["results"][0]
    assert not found.is_error and hit["path"].endswith("howto/renew-tls-certificates.txt")
    lines = passage.structured_content["lines"]
    assert [line["number"] for line in lines] == list(range(hit["start_line"], hit["end_line"] + 1))
    assert all(line["hit"] for line in lines)
    text = Path(hit["path"]).read_text().split("\n")
    assert [line["text"] for line in lines] == text[hit["start_line"] - 1 : hit["end_line"]]
    assert refused.is_error and "Only documents in the index can be read" in refused.content[0].text


def test_a_foreign_host_or_origin_is_refused(index):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with running(minimal_app(index)) as url:
        foreign = httpx2.post(f"{url}/mcp", json=body, headers={**headers, "Host": "evil.example:80"})
        rebinding = httpx2.post(f"{url}/mcp", json=body, headers={**headers, "Host": "127.0.0.1.evil.example"})
        page = httpx2.post(f"{url}/mcp", json=body, headers={**headers, "Origin": "https://evil.example"})
        own = httpx2.post(f"{url}/mcp", json=body, headers={**headers, "Origin": url})
    assert foreign.status_code == 421 and rebinding.status_code == 421
    assert page.status_code == 403
    # The server's own page gets past the checks; stateless, the endpoint answers at once.
    assert own.status_code == 200 and own.json()["result"]["tools"]


TOKEN = "serve-token-3c9d1e"


@pytest.fixture
def served(index):
    """`semsearch serve`'s server with a token, on a free loopback port, with /mcp mounted."""
    from semsearch.apps.http.server import Server
    from semsearch.apps.http.settings import ServeSettings
    from semsearch.apps.mcp import serve_app

    settings = ServeSettings(host="127.0.0.1", port=0, token=TOKEN)
    with Server(index, settings, serve_app(index, settings), log_level="warning") as server:
        yield server.url


def test_serve_answers_mcp_at_its_mcp_path_with_the_token(served):
    async def conversation(session):
        tools = [tool.name for tool in (await session.list_tools()).tools]
        found = await session.call_tool("search", {"query": "renew the expired wildcard TLS certificate", "ext": ["txt"]})
        hit = found.structured_content["results"][0]
        passage = await session.call_tool("read_passage", {"chunk_id": hit["chunk_id"]})
        status = await session.call_tool("index_status", {})
        return tools, hit, passage, status

    tools, hit, passage, status = converse(served, conversation, {"Authorization": f"Bearer {TOKEN}"})
    assert sorted(tools) == ["index_status", "read_document", "read_passage", "search"]
    assert hit["path"].endswith("howto/renew-tls-certificates.txt")
    lines = passage.structured_content["lines"]
    assert [line["number"] for line in lines if line["hit"]] == list(range(hit["start_line"], hit["end_line"] + 1))
    assert status.structured_content["documents"] == 30 and TOKEN not in json.dumps(status.structured_content)


def test_serve_refuses_mcp_without_the_token_or_from_a_foreign_host(served):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    missing = httpx2.post(f"{served}/mcp", json=body, headers=headers)
    wrong = httpx2.post(f"{served}/mcp", json=body, headers={**headers, "Authorization": "Bearer not-the-token"})
    foreign = httpx2.post(f"{served}/mcp", json=body, headers={**headers, **bearer, "Host": "evil.example"})
    page = httpx2.post(f"{served}/mcp", json=body, headers={**headers, **bearer, "Origin": "http://evil.example"})
    allowed = httpx2.post(f"{served}/mcp", json=body, headers={**headers, **bearer})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert TOKEN not in missing.text + wrong.text
    assert foreign.status_code == 421 and page.status_code == 403
    assert allowed.status_code == 200 and len(allowed.json()["result"]["tools"]) == 4
    # The SDK's client without the token gets nowhere either.
    with pytest.raises(Exception) as refused:
        converse(served, lambda session: session.list_tools())
    assert "Server returned an error response" in repr(refused.value)


def test_the_serve_command_mounts_the_tools(index, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    location = str(index.path)
    index.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "--index", location, "serve", "--port", str(port)],
        env={**os.environ, "SEMSEARCH_SERVE_TOKEN": TOKEN}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

        async def conversation(session):
            # Keyword search: this process has no model behind the fake one the index was built with.
            return await session.call_tool("search", {"query": "wildcard certificate", "mode": "keyword", "limit": 1})

        found = converse(url, conversation, {"Authorization": f"Bearer {TOKEN}"})
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    assert found.structured_content["results"][0]["path"].endswith("renew-tls-certificates.txt")
    said = errors.decode()
    assert "MCP tools at /mcp" in said and TOKEN not in said
