"""`python -m handler room BIZ ROOM`: the files GME's callbacks named, from the ledger, and with
`--live` GME's own DescribeRecordInfo for the open task, over the real SDK to the emulator."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from handler.bootstrap import app
from handler.entrypoints import webhook, worker
from handler.tools.cli import main
from tests.conftest import BIZ_ID, Stack, load_event, sqs_event

ROOM = "ranked-eu-1042"


def start(stack: Stack, body: dict[str, Any] | None = None) -> str:
    body = body or load_event("room-created.json")
    response = webhook.handler(stack.room_event_request(body), stack.context("webhook"))
    assert response["statusCode"] == 200, response
    task_id: str = json.loads(response["body"])["task_id"]
    return task_id


def uploaded(task_id: str, seq: int) -> dict[str, Any]:
    return {
        "BizID": BIZ_ID,
        "RoomID": ROOM,
        "UserID": "0",
        "TaskID": int(task_id),
        "RecordMode": 2,
        "Timestamp": int(time.time()),
        "EventType": 3,
        "Detail": {"SeqNo": seq, "FileName": f"{ROOM}/seg{seq}_{task_id}.mp3"},
    }


def room(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what the setup printed (logs, metrics) is not the command's
    code = main(["room", str(BIZ_ID), ROOM, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_room_shows_the_files_gme_called_back_with(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = start(stack)
    response, _ = worker.process_batch(
        sqs_event(uploaded(task_id, 0), uploaded(task_id, 1)), stack.context("worker")
    )
    assert response == {"batchItemFailures": []}
    code, out, _ = room(capsys)
    assert code == 0
    # A batch's records run side by side: the files are listed in the order they arrived.
    [line] = [x for x in out.splitlines() if x.startswith("  files (from GME callbacks): ")]
    listed = set(line.split(": ", 1)[1].split(", "))
    assert listed == {f"{ROOM}/seg0_{task_id}.mp3", f"{ROOM}/seg1_{task_id}.mp3"}
    assert "DescribeRecordInfo" not in out
    assert stack.emulator.calls("DescribeRecordInfo") == []  # without --live, GME is not asked


def test_live_asks_gme_for_the_running_tasks_streams(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = start(stack)
    code, out, _ = room(capsys, "--live")
    assert code == 0, out
    assert "  live (GME DescribeRecordInfo): 1 stream(s)" in out
    assert "    user 0 (the room's mix): recording since " in out
    assert f"file {BIZ_ID}_{ROOM}_0_" in out
    [call] = stack.emulator.calls("DescribeRecordInfo")
    assert call.task_id == int(task_id)  # the exact TaskId, above 2^53
    code, out, _ = room(capsys, "--live", "--json")
    [doc] = json.loads(out)
    assert doc["live"]["task_id"] == task_id
    assert [(s["user_id"], s["status"], s["status_text"]) for s in doc["live"]["streams"]] == [
        ("0", 2, "recording")
    ]


def test_live_shows_what_gme_says_when_it_differs_from_the_ledger(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    start(stack)
    stack.emulator.advance(25 * 3600)  # GME ends every task after 24 hours
    code, out, _ = room(capsys, "--live")
    assert code == 0
    assert "session match-7f3a: recording" in out  # the ledger has not swept it yet
    assert "    user 0 (the room's mix): upload finished since " in out


def test_a_gme_error_is_shown_and_exits_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    start(stack)
    stack.emulator.fail_next("DescribeRecordInfo", "ResourceNotFound.TaskNotFound", "gone")
    code, out, _ = room(capsys, "--live")
    assert code == 1
    assert "  live (GME DescribeRecordInfo): ResourceNotFound.TaskNotFound: gone" in out
    assert "session match-7f3a: recording" in out  # the ledger's view is printed all the same


def test_live_without_an_open_task_asks_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    start(stack)
    webhook.handler(
        stack.room_event_request(load_event("room-closed.json")), stack.context("webhook")
    )
    code, out, _ = room(capsys, "--live")
    assert code == 0
    assert "live: no open session with a task in this room; nothing asked of GME" in out
    assert stack.emulator.calls("DescribeRecordInfo") == []


def test_live_without_credentials_is_one_line_and_prints_nothing_else(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    start(stack)
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID")
    app.reset()
    code, out, err = room(capsys, "--live")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "TENCENTCLOUD_SECRET_ID" in err
