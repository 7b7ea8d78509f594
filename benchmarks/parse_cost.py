"""CPU cost of turning one embeddings response (256 inputs × 1024 dimensions) into numpy.

    python benchmarks/parse_cost.py [--inputs 256] [--dimensions 1024] [--repeat 9]

At 5 requests a second the client has 200 ms per response for everything it does, on one
GIL. Each way of handling the same response is timed from the response body to a float32
matrix, median of `--repeat` runs, CPU and wall time:

- openai, floats: `client.embeddings.create(..., encoding_format="float")`, the parsed
  pydantic response, then `np.array` of its rows (what a straightforward client does);
- openai, base64: the same call without `encoding_format`, so that the openai client asks
  for base64 and decodes it into lists of floats itself;
- semsearch, floats: the raw float JSON parsed straight into numpy (`RemoteEmbedder`'s
  fallback for endpoints without base64);
- semsearch, base64: the raw base64 JSON decoded straight into numpy (what semsearch asks for);
- semsearch, whole request: `with_raw_response` plus that parsing, i.e. everything the
  client does per request except the network.

The openai calls go through a mock HTTP transport that answers with the prepared body, so
request building and response handling are timed and no socket is involved. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODEL = "BAAI/bge-m3"


def bodies(inputs: int, dimensions: int) -> tuple[bytes, bytes]:
    """The same response as float JSON and as base64 JSON."""
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((inputs, dimensions)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    usage = {"prompt_tokens": inputs * 300, "total_tokens": inputs * 300}
    # Floats as a service writes float32: the shortest decimal that reads back the same.
    floats = [[float(value) for value in row.astype(str)] for row in matrix]
    as_floats = {"object": "list", "model": MODEL, "usage": usage, "data": [
        {"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(floats)
    ]}
    as_base64 = {"object": "list", "model": MODEL, "usage": usage, "data": [
        {"object": "embedding", "index": i, "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode()}
        for i, row in enumerate(matrix)
    ]}
    return json.dumps(as_floats).encode(), json.dumps(as_base64).encode()


def mock_client(body: bytes):
    """An openai client whose every request is answered with `body`."""
    import openai

    try:
        import httpx2 as httpx  # what this openai release is built on
    except ImportError:
        import httpx

    def answer(request):
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return openai.OpenAI(
        api_key="benchmark", base_url="http://mock.invalid/v1", max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
    )


def measure(work: Callable[[], np.ndarray], repeat: int) -> tuple[float, float, np.ndarray]:
    """Median CPU and wall seconds of `work()` (after one warm-up call), and its result."""
    result = work()
    cpu, wall = [], []
    for _ in range(repeat):
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        work()
        cpu.append(time.thread_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return statistics.median(cpu), statistics.median(wall), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=256)
    parser.add_argument("--dimensions", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()

    from semsearch.embedding.remote.client import RemoteEmbedder

    float_body, base64_body = bodies(args.inputs, args.dimensions)
    texts = [f"input {i}" for i in range(args.inputs)]
    embedder = RemoteEmbedder(MODEL, api_key="benchmark", base_url="http://mock.invalid/v1")
    float_client, base64_client = mock_client(float_body), mock_client(base64_body)
    reference = embedder._parse_embeddings(base64_body, args.inputs, "base64")

    def openai_floats() -> np.ndarray:
        response = float_client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
        return np.array([item.embedding for item in response.data], dtype=np.float32)

    def openai_base64() -> np.ndarray:
        response = base64_client.embeddings.create(model=MODEL, input=texts)  # asks for base64, decodes it
        return np.array([item.embedding for item in response.data], dtype=np.float32)

    def semsearch_floats() -> np.ndarray:
        return embedder._parse_embeddings(float_body, args.inputs, "float")

    def semsearch_base64() -> np.ndarray:
        return embedder._parse_embeddings(base64_body, args.inputs, "base64")

    def semsearch_request() -> np.ndarray:
        raw = base64_client.embeddings.with_raw_response.create(model=MODEL, input=texts, encoding_format="base64")
        return embedder._parse_embeddings(raw.http_response.content, args.inputs, "base64")

    print(
        f"one response of {args.inputs} × {args.dimensions}: float JSON {len(float_body) / 1e6:.1f} MB, "
        f"base64 JSON {len(base64_body) / 1e6:.1f} MB; median of {args.repeat} runs (thread CPU time, wall time)"
    )
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, openai {__import__('openai').__version__}, "
          f"{threading.active_count()} thread(s)")
    for name, work in [
        ("openai, parsed float response → numpy", openai_floats),
        ("openai, parsed base64 response → numpy", openai_base64),
        ("semsearch, raw float JSON → numpy", semsearch_floats),
        ("semsearch, raw base64 JSON → numpy", semsearch_base64),
        ("semsearch, whole request without the network", semsearch_request),
    ]:
        cpu, wall, result = measure(work, args.repeat)
        same = result.shape == (args.inputs, args.dimensions) and np.allclose(result, reference, atol=1e-6)
        print(f"{name:48s} CPU {cpu * 1000:7.1f} ms   wall {wall * 1000:7.1f} ms{'' if same else '   (WRONG RESULT)'}")


if __name__ == "__main__":
    main()
