"""The README's promises about the local commands, run as a user would run them."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TENCENTCLOUD_", "GME_", "WEBHOOK_", "TRTC_", "RECORD_"))
    }
    env["IDEMPOTENCY_STORE"] = f"sqlite:///{tmp_path}/idempotency.db"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handler", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def local_runner(env: dict[str, str]) -> Iterator[queue.Queue[str]]:
    """`python -m handler run --port 0` (what `make run` starts) with ``env``; yields its
    stderr line by line, and stops it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "handler", "run", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        stderr = proc.stderr
        assert stderr is not None
        threading.Thread(target=lambda: [lines.put(x) for x in stderr], daemon=True).start()
        yield lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[tuple[str, str, list[str], dict[str, str]]]:
    env = _env(tmp_path)
    seen: list[str] = []
    with local_runner(env) as lines:
        url = emulator = None
        while url is None:
            line = lines.get(timeout=30)
            seen.append(line)
            if m := re.search(r"EMULATOR at (http://\S+)", line):
                emulator = m.group(1)
            if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
        assert emulator is not None
        yield url, emulator, seen, env


def test_run_says_it_uses_the_emulator_first_and_records_a_curl(local_stack) -> None:  # type: ignore[no-untyped-def]
    url, emulator, seen, env = local_stack
    gme_line = next(i for i, line in enumerate(seen) if "GME:" in line)
    assert gme_line <= 4, seen  # among the first lines, before the server is up
    assert "no TENCENTCLOUD_SECRET_ID set" in seen[gme_line]

    first = _cli("send", "events/room-created.json", "--url", url, env=env)
    again = _cli("send", "events/room-created.json", "--url", url, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("HTTP 200 /v1/room-events")
    assert json.loads(first.stdout.split("\n", 1)[1])["status"] == "started"
    assert json.loads(again.stdout.split("\n", 1)[1])["duplicate"] is True
    with urllib.request.urlopen(f"{emulator}/_emulator/tasks", timeout=5) as resp:
        tasks = json.loads(resp.read())
    assert [t["room_id"] for t in tasks["tasks"]] == ["ranked-eu-1042"]
    with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
        assert resp.status == 200


def test_invoke_worker_on_a_sample_prints_the_lambda_result(tmp_path: Path) -> None:
    result = _cli("invoke", "worker", "events/sqs-mixed-batch.json", env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert len(out["response"]["batchItemFailures"]) == 3
    assert "EMULATOR" in result.stderr
    assert "message failed message_id=" in result.stderr  # logs on stderr, one line a failure


def test_invoke_webhook_resigned_sample(tmp_path: Path) -> None:
    result = _cli(
        "invoke", "webhook", "events/http-trtc-room-created.json", "--sign", env=_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["statusCode"] == 200
    assert out["body"]["status"] == "started"


def test_invoke_webhook_resigns_with_the_key_bound_to_the_app(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "TRTC_CALLBACK_KEY": "1400000001:other-app-key,1400000000:app-key"}
    result = _cli("invoke", "webhook", "events/http-trtc-room-created.json", "--sign", env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["statusCode"], out["body"]["status"]) == (200, "started")


def test_check_policy_exit_codes(tmp_path: Path) -> None:
    env = _env(tmp_path)
    ok = _cli("check-policy", "policies/default.yaml", env=env)
    assert ok.returncode == 0
    assert ok.stdout.startswith("ok: policies/default.yaml: 4 rules")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - name: big\n    action: record\n    record_mode: loud\n")
    refused = _cli("check-policy", str(bad), env=env)
    assert refused.returncode == 1
    assert "rules[0] ('big') field record_mode" in refused.stderr


def _tour() -> list[str]:
    """The commands of the README's five-minute tour, as a user would paste them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A five-minute tour", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line[:1] not in "#"]


# What each tour command must print, besides exiting 0 (a command not listed here still runs).
TOUR_EXPECTS = {
    ".venv/bin/python -m handler tasks": "ranked-eu-1042",
    ".venv/bin/python -m handler explain events/room-created.json": "yes   ranked-mixed",
    ".venv/bin/python -m handler recordings": "ranked-eu-1042",
    ".venv/bin/python -m handler room 1400000000 ranked-eu-1042": "started",
    ".venv/bin/python -m handler send events/room-closed.json": '"status": "stopped"',
}


def test_every_command_of_the_readme_tour_runs_against_the_local_stack(local_stack) -> None:  # type: ignore[no-untyped-def]
    _, emulator, _, env = local_stack
    commands = _tour()
    assert len(commands) >= 7, commands
    assert all(commands), commands
    sends = []
    for command in commands:
        argv = command.split()  # exactly as written: the commands find the stack themselves
        if argv[0] == ".venv/bin/python":
            argv[0] = sys.executable
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert TOUR_EXPECTS.get(command, "") in done.stdout, (command, done.stdout)
        if argv[3:4] == ["send"]:
            sends.append(json.loads(done.stdout.split("\n", 1)[1]))
    created = [s for s in sends if s["status"] != "stopped"]
    assert [s["status"] for s in created] == ["started", "started"]
    assert created[1]["duplicate"] is True
    assert created[1]["task_id"] == created[0]["task_id"]
    with urllib.request.urlopen(f"{emulator}/_emulator/tasks", timeout=5) as resp:
        tasks = json.loads(resp.read())["tasks"]
    assert [(t["task_id_str"], t["running"]) for t in tasks] == [(created[0]["task_id"], False)]
