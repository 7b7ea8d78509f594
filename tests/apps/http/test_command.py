"""`semsearch serve` as a command: a process of its own, and nothing heavy imported before it runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_serves_the_index_until_interrupted(indexed):
    port = _free_port()
    environment = {**os.environ, "SEMSEARCH_INDEX": str(indexed.path)}
    indexed.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "serve", "--port", str(port)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode() if process.stderr else ""
                time.sleep(0.2)
        assert status.status_code == 200 and status.json()["documents"] == 4
        hits = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": "strangers", "mode": "keyword"}).json()["results"]
        assert hits[0]["path"].endswith("dogs.txt")
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    said = err.decode()
    assert f"at http://127.0.0.1:{port}/ (read-only, no token)" in said


def test_the_cli_imports_no_web_stack():
    code = "import sys; import semsearch.apps.cli; print(sorted({'starlette', 'uvicorn', 'anyio'} & set(sys.modules)))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"
