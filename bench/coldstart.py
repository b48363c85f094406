"""Import time of each Lambda entry module, as a multiple of the third-party imports it needs.

Each sample is a fresh interpreter (``subprocess.run([sys.executable, "-c", ...])``) timing one
import statement from inside, so interpreter start-up is excluded. Entry modules and their
baselines are sampled round-robin, R times each, so that machine noise spreads evenly; the
medians are compared. One untimed round first makes sure every ``.pyc`` is fresh.

Baselines, the packages each entry needs anyway:
  webhook   Powertools Logger + event_handler + idempotency, pydantic with one model built
  worker    Powertools Logger + batch + idempotency, pydantic with one model built
  scheduler Powertools Logger

Like for like: every entry module runs its init phase with the cyclic collector paused and
frozen at the end (`handler.bootstrap.init_phase`), so the baselines are timed under the same
policy, the same statements wrapped in `gc.disable()` ... `gc.freeze(); gc.enable()`; the policy
takes a few young collections out of the baselines too, which makes the ratio stricter, not looser.
The ratio against the baselines with the collector on (each package imported as it would be
on its own) is printed for information.

Stack depth. CPython 3.12 keeps frames in 16 KiB chunks and frees a chunk as soon as its first
frame returns, so code that keeps calling across a chunk boundary maps and unmaps memory on
every call. Where the boundaries fall depends on how deep the import starts: measured here,
urllib3's regular expressions (loaded by Powertools idempotency through boto3) took 7.6 ms at
most depths and 20-50 ms at a few (strace: 2,400 extra mmap/munmap pairs). A one-line import at
module level of `-c` happens to hit one of those for the webhook and not for its baseline. So
each sample runs its statements inside a function called 0 .. DEPTHS-1 frames down, sample i
at depth i mod DEPTHS, the same for entry and baseline, and the median is taken over them.

The handler builds the GME client lazily, on the first event, so an entry module's import may
not load the SDK at all; the output says which baseline packages each import really loaded, and
prints (for information, not as a verdict) the cost of the import plus the SDK, which the first
event then pays.

    .venv/bin/python -m bench.coldstart [-r RUNS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from bench._common import ROOT, Result, env_int, header, median, ms, report

TARGET = 1.15

POWERTOOLS_LOGGER = "from aws_lambda_powertools import Logger"
IDEMPOTENCY = (
    "from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function"
)
SDK = "from tencentcloud.gme.v20180711 import gme_client, models"
# Building the first model is what loads most of pydantic (its internals, annotated_types and
# pydantic.types load lazily), so the pydantic baseline is "import it and build one model with a
# constrained field and a SecretStr" (the configuration must hold keys as SecretStr so they never
# reach a log): any entry pays that much before any model of ours.
PYDANTIC = (
    "import typing, pydantic; pydantic.create_model('Probe', "
    "x=(typing.Annotated[int, pydantic.Field(ge=1)], ...), key=(pydantic.SecretStr, ...))"
)
# The SDK and yaml are not in the entry baselines: the entries load them only on first use.
COMMON = [IDEMPOTENCY, PYDANTIC]
BASELINES = {
    "handler.entrypoints.webhook": [
        POWERTOOLS_LOGGER,
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver",
        *COMMON,
    ],
    "handler.entrypoints.worker": [
        POWERTOOLS_LOGGER,
        "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType",
        *COMMON,
    ],
    "handler.entrypoints.scheduler": [POWERTOOLS_LOGGER],
}
#: What `handler.bootstrap.init_phase.end()` does; the paused baselines end with it too.
END = "gc.freeze(); gc.enable()"
#: Top-level names reported as "loaded by the import" (a baseline package the import skipped).
WATCHED = {
    "aws_lambda_powertools.utilities.idempotency": "idempotency",
    "aws_lambda_powertools.utilities.batch": "batch",
    "aws_lambda_powertools.event_handler": "event_handler",
    "pydantic": "pydantic",
    "yaml": "yaml",
    "tencentcloud.gme.v20180711.gme_client": "tencentcloud",
    "boto3": "boto3",
}


#: Stack depths the samples rotate over (see the module docstring, "Stack depth").
DEPTHS = 8


def snippet(statements: str, depth: int = 0) -> str:
    """The timed program: the statements inside a function called `depth` frames down, plus a
    line naming what got loaded."""
    watched = json.dumps(WATCHED)
    return (
        "import time\n"
        f"def timed():\n    t = time.perf_counter(); {statements}; return time.perf_counter() - t\n"
        "def at(depth):\n    return at(depth - 1) if depth else timed()\n"
        f"print(at({depth}))\n"
        f"import sys, json; w = {watched}\n"
        "print(json.dumps([v for k, v in w.items() if k in sys.modules]))"
    )


#: Bytecode is written (the untimed round needs to), as a deployed artifact ships it compiled.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(statements: str, depth: int = 0) -> tuple[float, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", snippet(statements, depth)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"`{statements}` failed in a fresh interpreter:\n{done.stderr}")
    first, second = done.stdout.strip().splitlines()[-2:]
    return float(first), json.loads(second)


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("-r", "--runs", type=int, default=env_int("BENCH_COLDSTART_RUNS", DEPTHS))
    args = parser.parse_args(argv)

    programs: dict[str, str] = {}
    for module, baseline in BASELINES.items():
        programs[module] = f"import {module}"
        programs[f"baseline:{module}"] = f"import gc; gc.disable(); {'; '.join(baseline)}; {END}"
        programs[f"collector-on:{module}"] = "; ".join(baseline)
    header(f"coldstart: import time in fresh interpreters, median of {args.runs}")
    for statements in programs.values():  # untimed: compile any stale .pyc first
        run_once(statements)
    loaded: dict[str, list[str]] = {}
    for module in BASELINES:
        if (
            "tencentcloud" not in run_once(programs[module])[1]
            and module != "handler.entrypoints.scheduler"
        ):
            programs[f"with-sdk:{module}"] = f"import {module}; {SDK}"

    samples: dict[str, list[float]] = {name: [] for name in programs}
    for run in range(args.runs):
        for name, statements in programs.items():
            seconds, names = run_once(statements, depth=run % DEPTHS)
            samples[name].append(seconds)
            loaded[name] = names

    results = []
    for module, baseline in BASELINES.items():
        own = median(samples[module])
        base = median(samples[f"baseline:{module}"])
        skipped = [
            WATCHED[k]
            for k in WATCHED
            if WATCHED[k] in loaded[f"baseline:{module}"] and WATCHED[k] not in loaded[module]
        ]
        print(f"  {module}: import {ms(own)}; baseline {ms(base)}")
        print(f"    baseline: {'; '.join(baseline)}")
        if skipped:
            print(
                f"    not loaded by `import {module}` (deferred to first use): {', '.join(skipped)}"
            )
        collector_on = median(samples[f"collector-on:{module}"])
        print(
            f"    info: baseline with the collector on {ms(collector_on)}, "
            f"ratio {own / collector_on:.3f}"
        )
        with_sdk = samples.get(f"with-sdk:{module}")
        if with_sdk:
            print(
                f"    info: import + GME SDK (paid by the first event) {ms(median(with_sdk))} = "
                f"{median(with_sdk) / base:.2f} x baseline"
            )
        results.append(
            report(
                Result(
                    "coldstart",
                    f"import {module} / baseline",
                    own / base,
                    TARGET,
                    "<=",
                    f"{ms(own)} vs {ms(base)}",
                )
            )
        )
    return results


if __name__ == "__main__":
    main()
