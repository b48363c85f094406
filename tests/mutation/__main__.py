"""Mutation testing of the core modules: `python -m tests.mutation [MODULE ...] [-j N]`.

Each mutant is one small change to one module's syntax tree — a flipped comparison, `and`/`or`
swapped, a `not` dropped, a constant changed, a call, raise or assignment deleted, a value
returned as None. It is written into a scratch copy of the repository and the module's tests run
against it: a failing test kills it; a mutant every test passes has *survived*, and either a
test is missing or the change is equivalent (listed in `equivalent.txt` with why).

Why a runner of our own (see docs/testing.md): the tests start the emulator, the local server
and worker processes that import `handler` from the working tree, which mutmut's trampolines in
a separate `mutants/` copy do not reach; cosmic-ray mutates in place like this, but runs one test
command for every module and its operator set (ten replacements per arithmetic operator) spends
most of the time on mutants these modules do not have. This runner is small, runs each module
against the tests that exercise it, and keeps the list of equivalent mutants next to it.

Not run in CI: a full run takes tens of minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.mutation.mutants import Mutant, mutants_of

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("equivalent.txt")

#: What a tick plans and a worker runs, end to end (the steps, the sweep, the tick's paging).
LIFECYCLE_TESTS = [
    "tests/e2e/test_lifecycle_commands.py",
    "tests/e2e/test_lifecycle_checks.py",
    "tests/e2e/test_lifecycle.py",
    "tests/e2e/test_lifecycle_renewal.py",
    "tests/e2e/test_lifecycle_tick.py",
    "tests/e2e/test_max_duration.py",
    "tests/e2e/test_follow_policy.py",
    "tests/e2e/test_lifecycle_scale.py",
    "tests/e2e/test_lifecycle_queue.py",
]
#: The policy's unit tests: the parts of `domain/policy` besides the engine and the matchers
#: (conditions, time windows, the document's validation, loading, quotas, explanations) are
#: reached only through them.
POLICY_TESTS = [
    "tests/unit/test_policy_deciding.py",
    "tests/unit/test_policy_refusals.py",
    "tests/unit/test_policy_documents.py",
    "tests/unit/test_policy_windows.py",
    "tests/unit/test_policy_edges.py",
    "tests/unit/test_policy_validation.py",
    "tests/unit/test_policy_engine.py",
    "tests/unit/test_policy_loading.py",
    "tests/unit/test_policy_quota.py",
    "tests/unit/test_policy_sampling.py",
    "tests/unit/test_policy_cases.py",
    "tests/unit/test_explain.py",
    "tests/unit/test_max_duration.py",
    "tests/unit/test_follow.py",
]

#: Each core module and the tests that exercise it, fastest first (pytest stops at the first
#: failure, so a mutant the unit tests kill never reaches the slower ones).
MODULES: dict[str, list[str]] = {
    "handler/domain/ledger_rules.py": [
        "tests/unit/test_ledger_rules.py",
        "tests/unit/test_ledger_rules_edges.py",
        "tests/integration/test_ledger.py",
        "tests/e2e/test_lifecycle.py",
        "tests/e2e/test_lifecycle_tick.py",
    ],
    "handler/service_layer/recorder.py": [
        "tests/integration/test_recorder_edges.py",
        "tests/integration/test_first_calls_at_once.py",
        "tests/e2e/test_entrypoints.py",
        "tests/e2e/test_gme_faults.py",
        "tests/e2e/test_replay_dlq.py",
        "tests/e2e/test_crash.py",
    ],
    "handler/domain/signatures.py": [
        "tests/unit/test_signatures.py",
        "tests/unit/test_signatures_edges.py",
        "tests/unit/test_ingest.py",
    ],
    "handler/domain/gme.py": ["tests/unit/test_gme_errors.py", "tests/e2e/test_gme_faults.py"],
    "handler/domain/policy/engine.py": [
        "tests/unit/test_policy_deciding.py",
        "tests/unit/test_policy_refusals.py",
        "tests/unit/test_policy_documents.py",
        "tests/unit/test_follow.py",
        "tests/unit/test_policy_edges.py",
        "tests/unit/test_policy_engine.py",
        "tests/unit/test_policy_quota.py",
        "tests/unit/test_policy_sampling.py",
        "tests/unit/test_policy_windows.py",
        "tests/unit/test_explain.py",
    ],
    "handler/domain/policy/matchers.py": [
        "tests/unit/test_policy_deciding.py",
        "tests/unit/test_policy_refusals.py",
        "tests/unit/test_policy_documents.py",
        "tests/unit/test_policy_edges.py",
        "tests/unit/test_policy_engine.py",
        "tests/unit/test_policy_windows.py",
        "tests/unit/test_explain.py",
    ],
    **dict.fromkeys(
        [
            f"handler/domain/policy/{name}.py"
            for name in ("conditions", "times", "document", "loader", "quota", "explain")
        ],
        POLICY_TESTS,
    ),
    "handler/domain/follow.py": ["tests/unit/test_follow.py", "tests/e2e/test_follow_policy.py"],
    "handler/domain/commands.py": [
        "tests/unit/test_commands.py",
        "tests/integration/test_lifecycle_plan.py",
        "tests/e2e/test_lifecycle_commands.py",
        "tests/e2e/test_lifecycle_queue.py",
    ],
    "handler/service_layer/lifecycle/plan.py": [
        "tests/integration/test_lifecycle_plan.py",
        "tests/integration/test_follow_plan.py",
        "tests/e2e/test_lifecycle_queue.py",
        "tests/e2e/test_lifecycle_tick.py",
    ],
    **dict.fromkeys(
        [f"handler/service_layer/lifecycle/{name}.py" for name in ("steps", "sweep", "tick")],
        LIFECYCLE_TESTS,
    ),
    "handler/domain/ratelimit.py": ["tests/unit/test_pacing.py", "tests/bench/test_scale_pace.py"],
    "handler/adapters/ratelimited_gme.py": [
        "tests/unit/test_pacing.py",
        "tests/unit/test_pace_jitter.py",
        "tests/integration/test_rate_limit.py",
        "tests/bench/test_scale_pace.py",  # the pace that slows for the jitter it sees
    ],
    "handler/adapters/buckets.py": [
        "tests/unit/test_pacing.py",
        "tests/integration/test_rate_limit.py",
        "tests/integration/test_slot_requests.py",
        "tests/integration/test_stores.py",  # each family's schedule: SQLite, DynamoDB, Redis
    ],
}


def _copy_repo(into: Path) -> Path:
    """A scratch copy of the tracked tree (mutants never touch the real one)."""
    tree = into / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in files:
        src = ROOT / name
        if src.is_file():
            dst = tree / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return tree


def _run_tests(tree: Path, tests: list[str], timeout: float, show: bool = False) -> str:
    """'killed', 'survived' or 'timeout' for the tree as it is now (`show`: print the end of
    pytest's output when the tests fail)."""
    present = [t for t in tests if (tree / t).exists()]
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *present]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HYPOTHESIS_PROFILE": "mutation"}
    # Its own process group: on a timeout the servers pytest's fixtures started (moto_server,
    # redis-server, the emulator) go with it instead of running on, orphaned, for the rest of
    # the run.
    proc = subprocess.Popen(
        cmd,
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout"  # counted as killed: the change made a test hang
    done = subprocess.CompletedProcess(cmd, proc.returncode, stdout)
    if done.returncode == 5:
        raise SystemExit(f"no tests collected from {present}")
    if show and done.returncode != 0:
        print(done.stdout.decode(errors="replace")[-2000:])
    return "survived" if done.returncode == 0 else "killed"


def _equivalents() -> set[str]:
    if not EQUIVALENT.exists():
        return set()
    lines = EQUIVALENT.read_text(encoding="utf-8").splitlines()
    return {line.split(" # ")[0].strip() for line in lines if line.strip() and line[0] != "#"}


def run_module(tree: Path, module: str, timeout: float, log: list[str]) -> tuple[int, int, int]:
    """(killed, survived, equivalent) for one module; survivors are appended to `log`."""
    path = tree / module
    original = path.read_text(encoding="utf-8")
    tests = MODULES[module]
    start = time.monotonic()
    if _run_tests(tree, tests, timeout, show=True) != "survived":
        print(f"{module}: its tests fail before any mutation; skipped (fix them first)")
        return 0, 0, 0
    equivalent = _equivalents()
    killed = survived = skipped = 0
    mutants: list[Mutant] = list(mutants_of(original, module))
    for mutant in mutants:
        if mutant.ident in equivalent:
            skipped += 1
            continue
        path.write_text(mutant.source, encoding="utf-8")
        try:
            verdict = _run_tests(tree, tests, timeout)
        finally:
            path.write_text(original, encoding="utf-8")
        if verdict == "survived":
            survived += 1
            log.append(f"{mutant.ident}  (line {mutant.line})")
            print(f"  survived: {mutant.ident}  (line {mutant.line})", flush=True)
        else:
            killed += 1
    took = time.monotonic() - start
    rate = 100.0 * killed / max(1, killed + survived)
    print(
        f"{module}: {killed}/{killed + survived} killed ({rate:.0f} %), "
        f"{skipped} equivalent, {took:.0f} s",
        flush=True,
    )
    return killed, survived, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all core)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per test run")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"not a core module: {', '.join(unknown)} (known: {', '.join(MODULES)})")
        return 2
    if args.list:
        for module in modules:
            source = (ROOT / module).read_text(encoding="utf-8")
            for mutant in mutants_of(source, module):
                print(f"{mutant.ident}  (line {mutant.line})")
        return 0
    survivors: list[str] = []
    totals = [0, 0, 0]
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        tree = _copy_repo(Path(scratch))
        for module in modules:
            for i, n in enumerate(run_module(tree, module, args.timeout, survivors)):
                totals[i] += n
    killed, survived, skipped = totals
    print(f"=> mutants killed = {killed}/{killed + survived} ({skipped} equivalent, not run)")
    if survivors:
        print("survivors (add a test, or list them in tests/mutation/equivalent.txt with why):")
        for line in survivors:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
