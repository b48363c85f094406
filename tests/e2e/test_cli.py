"""The command line as a user meets it: every mistake is one line and exit 2, `--help` lists
every command, `explain` and `send` take every sample, and commands act on the running stack."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from handler.tools import stack
from tests.e2e.test_local_run import ROOT, _cli, _env, local_runner, local_stack  # noqa: F401

SAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "events").glob("*.json"))


def _bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No AWS settings from this machine (region, profile, credentials files)."""
    env = {k: v for k, v in _env(tmp_path).items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        LOCAL_TICK_SECONDS="0",
        PORT="0",
    )
    env.update(extra)
    return env


NOBODY = "http://127.0.0.1:9"
QUEUES = {"RECORD_DLQ_URL": "http://127.0.0.1:9/1", "RECORD_QUEUE_URL": "http://127.0.0.1:9/2"}
MISTAKES = [
    # (what, argv, extra environment, words the line must hold)
    ("PORT=abc", ["run"], {"PORT": "abc"}, "PORT"),
    ("--port abc", ["run", "--port", "abc"], {}, "PORT"),
    ("PORT=70000", ["run"], {"PORT": "70000"}, "PORT"),
    ("LOCAL_TICK_SECONDS=abc", ["run"], {"LOCAL_TICK_SECONDS": "abc"}, "LOCAL_TICK_SECONDS"),
    ("LOCAL_TICK_SECONDS=nan", ["run"], {"LOCAL_TICK_SECONDS": "nan"}, "LOCAL_TICK_SECONDS"),
    ("read timeout 0", ["run"], {"LOCAL_READ_TIMEOUT_SECONDS": "0"}, "LOCAL_READ_TIMEOUT"),
    ("LOG_FORMAT=xml", ["run"], {"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ("LEDGER_STORE=foo://x", ["run"], {"LEDGER_STORE": "foo://x"}, "LEDGER_STORE"),
    ("redis, no ledger", ["run"], {"IDEMPOTENCY_STORE": "redis://127.0.0.1:1/0"}, "LEDGER_STORE"),
    ("schedules nowhere", ["run"], {"RECORDING_SCHEDULES": "/nowhere.yaml"}, "RECORDING_SCHEDULES"),
    ("policy nowhere", ["run"], {"RECORDING_POLICY": "/nowhere.yaml"}, "RECORDING_POLICY"),
    ("dynamodb, no region", ["run"], {"IDEMPOTENCY_STORE": "dynamodb://t-1"}, "AWS_DEFAULT_REGION"),
    ("GME_TIMEOUT_SECONDS=abc", ["run"], {"GME_TIMEOUT_SECONDS": "abc"}, "GME_TIMEOUT_SECONDS"),
    ("bad whsec_ key", ["run"], {"WEBHOOK_SECRETS": "whsec_!!"}, "WEBHOOK_SECRETS"),
    ("send, no file", ["send", "events/nope.json"], {}, "events/nope.json"),
    ("send, nobody up", ["send", "events/room-created.json", "--url", NOBODY], {}, "reach"),
    ("send a tick", ["send", "events/schedule.json"], {}, "invoke scheduler"),
    ("explain, no file", ["explain", "events/nope.json"], {}, "events/nope.json"),
    ("invoke, no file", ["invoke", "worker", "nope.json"], {}, "nope.json"),
    ("tasks, no stack", ["tasks"], {}, "make run"),
    ("room BIZ not a number", ["room", "abc", "r"], {}, "biz_id"),
    ("unknown command", ["recrodings"], {}, "recrodings"),
    ("replay-dlq, no region", ["replay-dlq"], QUEUES, "AWS_DEFAULT_REGION"),
    ("replay-dlq, no credentials", ["replay-dlq"], {**QUEUES, "AWS_REGION": "x-1"}, "credentials"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "argv", "extra", "named"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, what: str, argv: list[str], extra: dict[str, str], named: str
) -> None:
    done = _cli(*argv, env=_bare_env(tmp_path, **extra))
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert named in lines[0], lines


def test_port_in_use_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = _cli("run", env=_bare_env(tmp_path, PORT=port))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"PORT {port} is in use" in done.stderr
    assert "PORT=" in done.stderr


@pytest.mark.parametrize("argv", [["recordings", "--json"], ["--help"]])
def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, argv: list[str]) -> None:
    """`recordings --json | head`: the reader went away; no traceback, no noise."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "handler", *argv],
        cwd=ROOT,
        env=_bare_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # before the command writes anything
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, stderr
    assert stderr == ""


def test_help_lists_every_command_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "handler", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    from handler.tools.cli import main

    commands = re.findall(r"^    ([a-z-]+) {2,}\S.*$", done.stdout, re.M)
    expected = {
        "run", "invoke", "send", "check-policy", "explain", "check-schedules", "recordings",
        "room", "stop", "tasks", "replay-dlq",
    }  # fmt: skip
    assert set(commands) == expected, done.stdout
    with pytest.raises(SystemExit):
        main(["no-such-command"])


@pytest.mark.parametrize("sample", SAMPLES)
def test_explain_takes_every_sample(sample: str, tmp_path: Path) -> None:
    done = _cli("explain", sample, env=_bare_env(tmp_path))
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 1), done.stderr  # 1: a sample holding an invalid message
    assert done.stdout.strip()
    if "trtc" in sample:
        assert "missing_app_id" not in done.stdout, done.stdout
        assert "room.created" in done.stdout or "room.closed" in done.stdout, done.stdout


def test_explain_takes_the_app_id_of_a_trtc_body(tmp_path: Path) -> None:
    done = _cli(
        "explain", "events/trtc-room-created.json", "--app-id", "1400000123", "--json",
        env=_bare_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"]["biz_id"] == 1400000123


def test_every_sample_is_sent_and_commands_act_on_the_running_stack(local_stack) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    url, emulator, _seen, env = local_stack
    running = stack.running()
    assert running is not None
    assert running.url == url
    assert running.emulator_url == emulator
    for sample in SAMPLES:
        done = _cli("send", sample, env=env)  # no --url: the running stack's
        assert "Traceback" not in done.stderr, (sample, done.stderr)
        if sample == "events/schedule.json":
            assert done.returncode == 2
            assert "invoke scheduler" in done.stderr
            continue
        assert done.stdout.startswith("HTTP "), (sample, done.stdout, done.stderr)
    # The task ids the stack's stores hold are the emulator's, and `tasks` lists them.
    tasks = json.loads(_cli("tasks", "--json", env=env).stdout)
    with urllib.request.urlopen(f"{emulator}/_emulator/tasks", timeout=5) as resp:
        assert tasks == json.loads(resp.read())["tasks"]
    known = {t["task_id_str"] for t in tasks}
    recordings = json.loads(_cli("recordings", "--json", env=env).stdout)
    assert recordings
    assert {r["task_id"] for r in recordings if r["task_id"]} <= known


def test_stop_and_invoke_use_the_stack_emulator_no_phantom_task_ids(local_stack) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    _url, _emulator, _, env = local_stack
    bare = {k: v for k, v in env.items() if k != "IDEMPOTENCY_STORE"}  # all from the stack file
    started = json.loads(
        _cli("send", "events/room-created.json", env=bare).stdout.split("\n", 1)[1]
    )
    done = _cli("stop", "1400000000", "ranked-eu-1042", env=bare)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "stopped"
    tasks = json.loads(_cli("tasks", "--json", env=bare).stdout)
    assert [(t["task_id_str"], t["running"]) for t in tasks] == [(started["task_id"], False)]
    room = _cli("room", "1400000000", "ranked-eu-1042", env=bare)
    assert "stopped by an operator" in room.stdout, room.stderr
    # invoke on the stack: its stores and its emulator, so a later send sees the same task.
    invoked = _cli("invoke", "webhook", "events/http-room-created.json", "--sign", env=bare)
    assert invoked.returncode == 0, invoked.stderr
    assert "running stack's EMULATOR" in invoked.stderr
    again = _cli("send", "events/room-created.json", env=bare)
    task = json.loads(again.stdout.split("\n", 1)[1]).get("task_id")
    assert task is None or task in {
        t["task_id_str"] for t in json.loads(_cli("tasks", "--json", env=bare).stdout)
    }


def test_stop_without_a_stack_or_credentials_changes_nothing(tmp_path: Path) -> None:
    """A session left open by a stack that stopped; `stop` cannot reach GME: nothing written."""
    from handler.adapters.ledger_sqlite import SQLiteLedger

    env = _bare_env(tmp_path)
    with local_runner(env) as lines:
        while "listening on" not in lines.get(timeout=30):
            pass
        sent = _cli("send", "events/room-created.json", env=env)
        assert sent.returncode == 0, sent.stderr
    assert stack.running() is None  # the stopped stack withdrew its file
    ledger = SQLiteLedger(str(tmp_path / "ledger.db"), 3600)
    before = ledger.by_room(1400000000, "ranked-eu-1042")
    assert [e.state.value for e in before] == ["recording"]
    done = _cli("stop", "1400000000", "ranked-eu-1042", env=env)
    assert done.returncode == 2, done.stderr
    assert "TENCENTCLOUD_SECRET_ID" in done.stderr
    assert "nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert ledger.by_room(1400000000, "ranked-eu-1042") == before


def test_a_stale_state_file_is_detected_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stack.publish(stack.Stack(pid=int(dead.stdout), url="http://127.0.0.1:1"), path)
    assert stack.running(path) is None
    assert not path.exists()
    stack.publish(stack.Stack(pid=os.getpid(), url="http://127.0.0.1:1"), path)
    found = stack.running(path)
    assert found is not None
    assert found.url == "http://127.0.0.1:1"


def _started(env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Start a stack, send one room event; the banner lines and the lines printed after."""
    with local_runner(env) as lines:
        banner: list[str] = []
        while not any("act on this stack" in s for s in banner):
            banner.append(lines.get(timeout=30))
        banner.append(lines.get(timeout=30))  # the banner's last line
        sent = _cli("send", "events/room-created.json", env=env)
        assert sent.returncode == 0, sent.stderr
        after = [lines.get(timeout=30)]
        while True:
            try:
                after.append(lines.get(timeout=1))
            except queue.Empty:
                return banner, after


def test_make_run_prints_one_short_line_per_event(tmp_path: Path) -> None:
    banner, after = _started(_bare_env(tmp_path))
    assert any("LOG_FORMAT=json" in s for s in banner)  # the banner says how to get JSON
    assert any("emulator tasks: http://127.0.0.1:" in s for s in banner)
    line = re.compile(
        r"^\d\d:\d\d:\d\d POST /v1/room-events 200 1400000000/ranked-eu-1042 started"
        r" rule=ranked-mixed task=\d+$"
    )
    # ...and the recording event the stack would send (no NOTIFY_WEBHOOK_URL here).
    event = re.compile(
        r"^\d\d:\d\d:\d\d event recording\.started 1400000000/ranked-eu-1042"
        r" session=match-7f3a task=\d+ reason=new id=msg_[0-9a-f]{32}"
        r" -> not sent \(no NOTIFY_WEBHOOK_URL\)$"
    )
    shown = [x.rstrip("\n") for x in after if x.strip()]
    assert len(shown) == 2, after
    assert event.match(shown[0]), after
    assert line.match(shown[1]), after


def test_log_format_json_prints_the_deployed_json_lines(tmp_path: Path) -> None:
    _, after = _started(_bare_env(tmp_path, LOG_FORMAT="json"))
    decisions = [json.loads(x) for x in after if '"recording decision"' in x]
    assert [d["rule"] for d in decisions] == ["ranked-mixed"], after
    assert all(x.startswith("{") for x in after if x.strip()), after  # JSON only


def test_deployed_functions_log_json_whatever_log_format_says(tmp_path: Path) -> None:
    """LOG_FORMAT is read by the local runner only; an entry point imported as Lambda does
    logs Powertools JSON."""
    program = (
        "import handler.entrypoints.scheduler, json\n"
        "class C:\n function_name='f'; memory_limit_in_mb=128; aws_request_id='r'\n"
        " invoked_function_arn='arn:aws:lambda:eu-west-1:0:function:f'\n"
        " def get_remaining_time_in_millis(self): return 20000\n"
        "handler.entrypoints.scheduler.handler({'id': 't', 'time': '2026-12-01T10:00:00Z'}, C())\n"
    )
    env = _bare_env(tmp_path, LOG_FORMAT="short", POWERTOOLS_METRICS_DISABLED="true")
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    tick = [json.loads(x) for x in done.stdout.splitlines() if '"scheduler tick"' in x]
    assert tick, done.stdout


def _run_in(folder: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "handler", "run"],
        cwd=folder,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _send_in(folder: Path, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "handler", "send", str(ROOT / "events" / "room-created.json")],
        cwd=folder, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    answer: dict[str, object] = json.loads(done.stdout.split("\n", 1)[1])
    return answer


def test_a_new_emulator_starts_with_fresh_default_stores_no_phantom_task_id(tmp_path: Path) -> None:
    """Restarting `make run` starts a new emulator; the room's task from the last run is not
    answered as a duplicate with a task id the new emulator never had. A second stack in the
    same folder is refused (it would take the first one's stores)."""
    env = {k: v for k, v in _bare_env(tmp_path).items() if k not in ("IDEMPOTENCY_STORE",)}
    answers = []
    for _ in range(2):
        proc = _run_in(tmp_path, env)
        try:
            assert proc.stderr is not None
            while "act on this stack" not in proc.stderr.readline():
                pass
            if not answers:
                second = _run_in(tmp_path, env)
                _, err = second.communicate(timeout=60)
                assert second.returncode == 2
                assert "already up here" in err
            answers.append(_send_in(tmp_path, env))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    first, again = answers
    assert first["status"] == again["status"] == "started"
    assert "duplicate" not in again
    assert first["task_id"] != again["task_id"]
    assert (tmp_path / ".local" / "previous" / "idempotency.db").exists()
    assert not (tmp_path / ".local" / "stack.json").exists()  # each run withdrew it
