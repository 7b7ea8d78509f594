"""MCP search calls: latency of one client after another, and with many clients at once.

    python benchmarks/mcp_search.py [--chunks 100000] [--calls 300] [--clients 16] [--stdio]

The index is the synthetic one of benchmarks/synthetic.py (built and cached on first use).
Over streamable HTTP, a server process of its own serves the tools at /mcp (`semsearch
serve`'s application, behind its checks), with an embedder that costs nothing (the queries' vectors worked out before the clock
starts), so what is timed is the MCP call: the client's request, the transport's checks, the
tool's validation, the search and the structured answer. The load comes from this process:
the SDK's own client (what an agent pays for a call), one session and then `--clients`
sessions at once; then plain JSON-RPC POSTs from an async HTTP client, one and then
`--clients` at a time (what the server can take).
`--stdio` also times `semsearch mcp` over stdio, a process that embeds each query with the
bundled local model (what a desktop assistant waits for).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402

REPO = synthetic.REPO


def percentiles(seconds: list[float]) -> str:
    return f"p50 {np.percentile(seconds, 50) * 1e3:6.2f} ms  p95 {np.percentile(seconds, 95) * 1e3:6.2f} ms"


def serve(directory: Path, port: int, count: int) -> None:
    """The server process: the index warm, the benchmark's queries embedded in advance."""
    import uvicorn

    from semsearch import Index

    embedder = synthetic.WordVectorEmbedder()
    texts = benchmark_queries(count)
    embedder.query_vectors = dict(zip(texts, embedder.embed_documents(texts)))
    index = Index.open(directory, embedder=embedder, create=False)
    index.search("warm up", mode="dense")
    app, kind = application(index)
    print(f"serving {kind}", file=sys.stderr, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def application(index):
    """`semsearch serve`'s application with the tools at /mcp, as the command makes it."""
    from semsearch.apps.http.settings import ServeSettings
    from semsearch.apps.mcp import serve_app

    return serve_app(index, ServeSettings(host="127.0.0.1", port=0)), "semsearch serve's application"


def benchmark_queries(count: int) -> list[str]:
    return synthetic.queries(count, seed=11)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(url: str, queries: list[str], clients: int, server: int) -> tuple[list[float], list[float], float, str]:
    """Per-call seconds one client after another; then with `clients` at once, their wall
    time, and the CPU time the server and this process (the clients) took meanwhile."""
    import anyio
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def session_calls(texts: list[str], times: list[float]) -> None:
        async with httpx2.AsyncClient(timeout=60) as http, streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(*streams) as session:
                await session.initialize()
                await session.call_tool("search", {"query": "warm up"})
                for text in texts:
                    started = time.perf_counter()
                    answer = await session.call_tool("search", {"query": text})
                    times.append(time.perf_counter() - started)
                    if answer.is_error or not answer.structured_content["results"]:
                        raise SystemExit(f"the search for {text!r} failed: {answer.content}")

    async def main() -> tuple[list[float], list[float], float]:
        alone: list[float] = []
        await session_calls(queries, alone)
        together: list[float] = []
        share = [queries[number::clients] for number in range(clients)]
        started, serving, calling = time.perf_counter(), cpu_seconds(server), time.process_time()
        async with anyio.create_task_group() as group:
            for texts in share:
                group.start_soon(session_calls, texts, together)
        wall = time.perf_counter() - started
        used = f"server CPU {cpu_seconds(server) - serving:.1f} s, clients' CPU {time.process_time() - calling:.1f} s in {wall:.1f} s"
        return alone, together, wall, used

    return anyio.run(main)


def raw_calls(url: str, queries: list[str], clients: int, server: int) -> tuple[list[float], list[float], float, str]:
    """As `over_http`, but each call one JSON-RPC POST from a plain async HTTP client (the
    endpoint is stateless, so no session is set up): what the server can take, without the
    SDK client's own cost per call."""
    import anyio
    import httpx2

    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    async def calls(http, texts: list[str], times: list[float]) -> None:
        for text in texts:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": text}}}
            started = time.perf_counter()
            answer = await http.post(url, json=body, headers=headers)
            times.append(time.perf_counter() - started)
            if answer.status_code != 200 or not answer.json()["result"]["structuredContent"]["results"]:
                raise SystemExit(f"the search for {text!r} failed: {answer.status_code} {answer.text[:200]}")

    async def main() -> tuple[list[float], list[float], float, str]:
        async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=clients)) as http:
            alone: list[float] = []
            await calls(http, queries, alone)
            together: list[float] = []
            started, serving, calling = time.perf_counter(), cpu_seconds(server), time.process_time()
            async with anyio.create_task_group() as group:
                for number in range(clients):
                    group.start_soon(calls, http, queries[number::clients], together)
            wall = time.perf_counter() - started
            used = f"server CPU {cpu_seconds(server) - serving:.1f} s, clients' CPU {time.process_time() - calling:.1f} s in {wall:.1f} s"
        return alone, together, wall, used

    return anyio.run(main)


def over_stdio(directory: Path, queries: list[str]) -> tuple[list[float], float]:
    """Per-call seconds against `semsearch mcp`, and how long its first call took."""
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    command = StdioServerParameters(
        command=sys.executable, args=["-m", "semsearch", "--index", str(directory), "mcp"], cwd=str(REPO),
        env={"PYTHONPATH": str(REPO)},
    )

    async def main() -> tuple[list[float], float]:
        times = []
        async with stdio_client(command) as streams, ClientSession(*streams) as session:
            await session.initialize()
            started = time.perf_counter()
            await session.call_tool("search", {"query": "warm up"})
            first = time.perf_counter() - started
            for text in queries:
                started = time.perf_counter()
                answer = await session.call_tool("search", {"query": text})
                times.append(time.perf_counter() - started)
                if answer.is_error:
                    raise SystemExit(f"the search for {text!r} failed: {answer.content}")
        return times, first

    return anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300, help="Search calls per measurement.")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--stdio", action="store_true", help="Also time `semsearch mcp` over stdio with the local model.")
    parser.add_argument("--serve", nargs=2, metavar=("INDEX", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.calls)
        return
    directory = synthetic.build(args.chunks)
    print(f"{synthetic.machine()}; index {directory.name}", flush=True)
    queries = benchmark_queries(args.calls)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(directory), str(port), "--calls", str(args.calls)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        for label, measure in (("SDK client", over_http), ("plain POSTs", raw_calls)):
            with synthetic.quiet_machine():
                alone, together, wall, used = measure(f"http://127.0.0.1:{port}/mcp", queries, args.clients, server.pid)
            print(f"HTTP, {label}, one client:  {len(alone)} search calls  {percentiles(alone)}", flush=True)
            print(
                f"HTTP, {label}, {args.clients} clients:  {len(together)} search calls  {percentiles(together)}  "
                f"{len(together) / wall:,.0f} calls/s  ({used})", flush=True,
            )
    finally:
        server.terminate()
        server.wait(30)
    if args.stdio:
        with synthetic.quiet_machine():
            times, first = over_stdio(directory, queries)
        print(f"stdio, local model: {len(times)} search calls  {percentiles(times)}  (first call {first * 1e3:.0f} ms)", flush=True)


if __name__ == "__main__":
    main()
