"""Crash safety: a worker process SIGKILLed after GME accepted StartRecord but before the
idempotency record was completed. The retry must adopt the running task, never start another.

The emulator holds its StartRecord answer (the task already exists), the worker process is
killed while it waits, and its INPROGRESS record stays behind, exactly what a Lambda killed by a
timeout or an out-of-memory leaves. That record blocks duplicates only until the in-progress
expiry (the dead invocation's remaining time, kept short here); then a retry takes over: its
StartRecord is refused with ResourceInUse.TaskInUse and it finds the task with DescribeTaskInfo.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.conftest import ROOT, Stack, load_event, sqs_event

ROOM = "ranked-eu-1042"
TASK_IN_USE = "ResourceInUse.TaskInUse"
REMAINING_MS = 8000  # the dead invocation's remaining time: its in-progress lock lasts this long
# (long enough for a redelivery's new process to start on a loaded two-core machine: at 2.5 s
# the early redelivery sometimes came after the lock had expired)


def run_worker(event: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.crash_worker", str(REMAINING_MS)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(event))
    proc.stdin.close()
    return proc


def report(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(60)
    [line] = [line for line in out.splitlines() if line.startswith("REPORT ")]
    result: list[dict[str, Any]] = json.loads(line[len("REPORT ") :])
    return result


@pytest.mark.slow
def test_worker_killed_between_start_and_completion_is_adopted_by_the_retry(
    stack: Stack, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_STORE", store_url)
    monkeypatch.setenv("GME_TIMEOUT_SECONDS", "30")  # the worker waits for the held answer
    event = sqs_event(load_event("room-created.json"))
    stack.emulator.delay_next("StartRecord", 20, after_execute=True)  # task made, answer held

    victim = run_worker(event)
    deadline = time.monotonic() + 20
    while not [c for c in stack.emulator.calls("StartRecord") if c.task_id]:
        assert victim.poll() is None, "the worker ended before GME accepted StartRecord"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    killed_at = time.monotonic()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert victim.returncode == -signal.SIGKILL
    [task] = stack.emulator.tasks(room_id=ROOM)

    # While the dead invocation's lock lives, a redelivery is refused without touching GME.
    calls_before = len(stack.emulator.calls())
    [early] = report(run_worker(event))
    assert not early["ok"]
    assert early["reason"].startswith("retry: in_progress")
    assert len(stack.emulator.calls()) == calls_before

    time.sleep(max(0.0, killed_at + REMAINING_MS / 1000 + 0.3 - time.monotonic()))
    [late] = report(run_worker(event))
    assert late["ok"], late
    assert late["outcome"]["status"] == "adopted"
    assert late["outcome"]["task_id"] == str(task.task_id)  # exact: no float on the way
    assert [t.task_id for t in stack.emulator.tasks(room_id=ROOM)] == [task.task_id]
    # GME accepted one StartRecord; the retry's was refused (TaskInUse) and led to the adoption.
    assert [c.error_code for c in stack.emulator.calls("StartRecord")] == [None, TASK_IN_USE]

    [dup] = report(run_worker(event))  # and from now on, duplicates are served from the store
    assert dup["outcome"]["duplicate"] is True
    assert dup["outcome"]["task_id"] == str(task.task_id)
