"""`semsearch serve` under load, measured from a second process over HTTP.

    python benchmarks/serve.py latency            # warm HTTP search at 100k chunks, local model
    python benchmarks/serve.py concurrent         # 16 clients at once, an embedder that costs nothing
    python benchmarks/serve.py soak --seconds 600 # RSS of the server after 1 minute and at the end

The index is the synthetic one of benchmarks/synthetic.py (built once, cached). The server
runs in a process of its own (`semsearch serve` for the local model; for the free embedder
the same server with `synthetic.WordVectorEmbedder`), and this process is the client
(httpx; asyncio for concurrent clients). Both share the machine's cores, as they would on a
laptop. Latency is end to end: the request, the query's embedding, the search with every
hit's snippet, the JSON and the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import synthetic  # benchmarks/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent
FREE_SERVER = """
import os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `semsearch serve` does
sys.path.insert(0, {benchmarks!r})
import synthetic
from semsearch import Index
from semsearch.apps.http.server import Server
from semsearch.apps.http.settings import ServeSettings
with Index.open({directory!r}, embedder=synthetic.WordVectorEmbedder(), create=False) as index:
    Server(index, ServeSettings(port={port}, threads={threads}), log_level="warning").run()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(directory: Path, free: bool, threads: int = 8) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    if free:
        code = FREE_SERVER.format(benchmarks=str(HERE), directory=str(directory), port=port, threads=threads)
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, "-m", "semsearch", "--index", str(directory), "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url + "/api/status", timeout=5).raise_for_status()
            return process, url
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start") from None
            time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(30)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1e3)


def _conditions() -> str:
    load = os.getloadavg()
    return f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {os.cpu_count()} cores"


def latency(args) -> None:
    directory = synthetic.build(args.size)
    process, url = _start(directory, free=False)
    try:
        queries = synthetic.queries(args.queries + 20, seed=11)
        with httpx.Client(base_url=url, timeout=30) as client:
            for text in queries[:20]:  # the model and the cache warm up
                client.get("/api/search", params={"q": text}).raise_for_status()
            chunks = client.get("/api/status").json()["chunks"]
            for mode in ("hybrid", "dense", "keyword"):
                times = []
                for text in queries[20:]:
                    started = time.perf_counter()
                    response = client.get("/api/search", params={"q": text, "mode": mode})
                    response.raise_for_status()
                    times.append(time.perf_counter() - started)
                print(f"{chunks:,} chunks, local model, {mode:<6} one client: p50 {_ms(times, 50):.1f} ms  p95 {_ms(times, 95):.1f} ms"
                      f"  ({len(times)} queries; {_conditions()})", flush=True)
    finally:
        _stop(process)


async def _load(url: str, clients: int, seconds: float, queries: list[str], on_tick=None) -> tuple[int, list[float], int]:
    times: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=clients)) as client:

        async def worker(number: int) -> None:
            nonlocal errors
            position = number
            while time.monotonic() < stop:
                text = queries[position % len(queries)]
                position += clients
                started = time.perf_counter()
                response = await client.get("/api/search", params={"q": text})
                times.append(time.perf_counter() - started)
                errors += response.status_code != 200

        async def ticker() -> None:
            while on_tick and time.monotonic() < stop:
                await asyncio.sleep(1)
                on_tick()

        await asyncio.gather(*(worker(n) for n in range(clients)), ticker())
    return len(times), times, errors


def concurrent(args) -> None:
    directory = synthetic.build(args.size)
    process, url = _start(directory, free=True, threads=args.threads)
    try:
        queries = synthetic.queries(2_000, seed=13)
        asyncio.run(_load(url, args.clients, 5, queries))  # warm up
        chunks = httpx.get(url + "/api/status").json()["chunks"]
        count, times, errors = asyncio.run(_load(url, args.clients, args.seconds, queries))
        print(f"{chunks:,} chunks, free embedder, {args.clients} clients at once for {args.seconds:.0f} s: "
              f"{count / args.seconds:.0f} queries/s, p50 {_ms(times, 50):.1f} ms, p95 {_ms(times, 95):.1f} ms, {errors} errors"
              f"  (server threads {args.threads}; {_conditions()})", flush=True)
    finally:
        _stop(process)


def soak(args) -> None:
    directory = synthetic.build(args.size)
    process, url = _start(directory, free=True, threads=args.threads)
    try:
        queries = synthetic.queries(5_000, seed=17)
        started = time.monotonic()
        samples: list[tuple[float, float]] = []

        def tick() -> None:
            samples.append((time.monotonic() - started, _rss_mib(process.pid)))

        count, times, errors = asyncio.run(_load(url, args.clients, args.seconds, queries, tick))
        first = next((rss for at, rss in samples if at >= 60), samples[-1][1])
        last = samples[-1][1]
        print(f"soak: {args.clients} clients for {args.seconds:.0f} s, {count:,} queries ({count / args.seconds:.0f}/s), {errors} errors; "
              f"server RSS {samples[0][1]:.0f} MiB after 1 s, {first:.0f} MiB after 1 min, {last:.0f} MiB at the end "
              f"({(last - first) / first * 100:+.1f}% from 1 min); p95 {_ms(times, 95):.1f} ms  ({_conditions()})", flush=True)
    finally:
        _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["latency", "concurrent", "soak"])
    parser.add_argument("--size", type=int, default=100_000, help="chunks in the synthetic index")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="the server's worker threads")
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 600.0 if args.what == "soak" else 30.0
    {"latency": latency, "concurrent": concurrent, "soak": soak}[args.what](args)


if __name__ == "__main__":
    main()
