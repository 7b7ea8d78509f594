"""Do the snippets answer? The twenty sample questions of tests/sample_queries.json on the
bundled sample_docs/ with the local model: for each, whether its first hit is the expected
document, whether that hit's snippet holds the answer (the question's `answer`, a regular
expression written from the document), and the section the hit is labelled with.

    python benchmarks/snippets.py [--index DIR]

The index is built in benchmarks/.cache/sample-docs-local (about a minute; kept for later
runs, and brought up to date by each run). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from semsearch import Index  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=HERE / ".cache" / "sample-docs-local")
    args = parser.parse_args()
    questions = json.loads((REPO / "tests" / "sample_queries.json").read_text())
    with Index.open(args.index, model="local") as index:
        started = time.perf_counter()
        index.add([REPO / "sample_docs"])
        print(f"index up to date in {time.perf_counter() - started:.1f} s: {index.status().chunks} chunks")
        first = answered = 0
        for question in questions:
            hit = index.search(question["query"], limit=1)[0]
            right = hit.path.endswith(question["expected"])
            holds = bool(re.search(question["answer"], hit.snippet or "", re.IGNORECASE))
            first += right
            answered += right and holds
            mark = "ok " if right and holds else ("doc" if right else "   ")
            print(f"{mark} {question['query'][:60]:<60} › {hit.section}")
            if not holds:
                print(f"      snippet: {(hit.snippet or '')[:150]!r}")
    print(f"{first} of {len(questions)} first hits are the expected document; {answered} of them show the answer in the snippet")


if __name__ == "__main__":
    main()
