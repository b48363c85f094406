"""Run every benchmark, each in its own interpreter, then print one summary table.

    .venv/bin/python -m bench [overhead|throughput|coldstart|receiver|policy|scale ...] [--strict]

Sizes come from the environment (see bench/README.md). The exit status is non-zero when a
benchmark crashed, or, with --strict, when any target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench._common import MACHINE_ENV, RESULT_PREFIX, ROOT, Result

BENCHES = ("overhead", "throughput", "coldstart", "receiver", "policy", "scale")


def run(name: str) -> tuple[list[Result], float, int]:
    env = {**os.environ, MACHINE_ENV: "1", "PYTHONUNBUFFERED": "1"}
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    results: list[Result] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            results.append(Result(**json.loads(line[len(RESULT_PREFIX) :])))
        else:
            print(line, end="", flush=True)
    code = proc.wait()
    return results, time.perf_counter() - began, code


def fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 10 else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHES))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHES)
    unknown = [name for name in names if name not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")

    rows: list[Result] = []
    crashed: list[str] = []
    timings: dict[str, float] = {}
    for name in names:
        results, seconds, code = run(name)
        timings[name] = seconds
        rows.extend(results)
        if code != 0 or not results:
            crashed.append(f"{name} (exit {code})")

    head = ("benchmark", "metric", "value", "target", "result")
    table = [
        (r.bench, r.metric, fmt(r.value), f"{r.op} {r.target:g}", "PASS" if r.passed else "MISS")
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [head, *table]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print("\n== summary (" + ", ".join(f"{n} {s:.0f} s" for n, s in timings.items()) + ")")
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for row in table:
        print(line.format(*row))
    print()
    for r in rows:
        if r.detail:
            print(f"  {r.bench} / {r.metric}: {r.detail}")
    if crashed:
        print("CRASHED: " + ", ".join(crashed))
        return 2
    if args.strict and not all(r.passed for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
