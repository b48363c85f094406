"""GME misbehaving: errors, lost responses, timeouts and races, through the worker entry point.

Each case runs the delivery the way SQS would (a failed item comes back later) and checks the
emulator's ground truth: never a second task, never a permanent error retried against GME.
"""

from __future__ import annotations

from typing import Any

import pytest

from handler.adapters.gme_client import TencentGme
from handler.entrypoints import worker
from tests.conftest import BIZ_ID, Stack, load_event, sqs_event

ROOM = "ranked-eu-1042"
TASK_IN_USE = "ResourceInUse.TaskInUse"


def deliver(stack: Stack, doc: dict[str, Any]) -> dict[str, Any]:
    response, [item] = worker.process_batch(sqs_event(doc), stack.context("worker"))
    assert (response["batchItemFailures"] != []) == (not item["ok"])
    return item


@pytest.fixture
def created() -> dict[str, Any]:
    return load_event("room-created.json")


@pytest.mark.parametrize(
    "code",
    [
        "InternalError",
        "AuthFailure.SignatureExpire",
        "ServiceUnavailable",
    ],
)
def test_retryable_error_fails_the_item_then_the_retry_records_once(
    stack: Stack, created: dict[str, Any], code: str
) -> None:
    stack.emulator.fail_next("StartRecord", code)
    first = deliver(stack, created)
    assert not first["ok"]
    assert first["reason"].startswith(f"retry: {code}")
    second = deliver(stack, created)
    assert second["outcome"]["status"] == "started"
    assert len(stack.emulator.tasks(room_id=ROOM)) == 1


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded"])
def test_throttled_start_is_retried_in_the_same_delivery(
    stack: Stack, created: dict[str, Any], code: str
) -> None:
    """GME refused before doing anything, so repeating StartRecord after a backoff is safe."""
    stack.emulator.fail_next("StartRecord", code, count=2)
    first = deliver(stack, created)
    assert first["ok"]
    assert first["outcome"]["status"] == "started"
    assert stack.starts() == 3
    assert len(stack.emulator.tasks(room_id=ROOM)) == 1


@pytest.mark.parametrize(
    "code",
    [
        "UnsupportedOperation.ServiceNotOpened",
        "InvalidParameterValue.InvalidRoomId",
        "UnauthorizedOperation",
        "AuthFailure.SignatureFailure",
    ],
)
def test_permanent_error_is_never_retried_against_gme(
    stack: Stack, created: dict[str, Any], code: str
) -> None:
    stack.emulator.fail_next("StartRecord", code)
    first = deliver(stack, created)
    again = deliver(stack, created)  # SQS redelivers until maxReceiveCount, then the DLQ
    assert not first["ok"]
    assert not again["ok"]
    assert code in first["reason"]
    assert code in again["reason"]
    assert stack.starts() == 1
    assert stack.emulator.tasks() == []


def test_lost_response_after_the_task_was_created_is_adopted(
    stack: Stack, created: dict[str, Any]
) -> None:
    stack.emulator.drop_next("StartRecord")
    first = deliver(stack, created)
    assert first["reason"].startswith("retry: ClientNetworkError")
    second = deliver(stack, created)
    assert second["outcome"]["status"] == "adopted"
    [task] = stack.emulator.tasks(room_id=ROOM)
    assert second["outcome"]["task_id"] == str(task.task_id)
    assert start_answers(stack) == [None, TASK_IN_USE]  # the retry's start was refused


def test_slow_answer_past_the_client_timeout_is_adopted(
    stack: Stack, created: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GME_TIMEOUT_SECONDS", "1")
    from handler.bootstrap import app

    app.reset()
    stack.emulator.delay_next("StartRecord", 1.5)
    first = deliver(stack, created)
    assert first["reason"].startswith("retry: ClientNetworkError")
    second = deliver(stack, created)
    assert second["outcome"]["status"] == "adopted"
    assert len(stack.emulator.tasks(room_id=ROOM)) == 1


def test_error_hidden_by_a_wrong_content_type_is_not_a_success(
    stack: Stack, created: dict[str, Any]
) -> None:
    stack.emulator.fail_next("StartRecord", "InternalError")
    stack.emulator.bad_content_type_next("StartRecord")
    first = deliver(stack, created)
    assert first["reason"].startswith("retry: EmptyResponse")
    assert stack.emulator.tasks() == []
    assert deliver(stack, created)["outcome"]["status"] == "started"


def test_task_already_running_is_adopted_without_start(
    stack: Stack, created: dict[str, Any]
) -> None:
    other = TencentGme(stack.emulator.url, *_credentials())
    from handler.domain.decision import RecordMode, RecordPlan

    task_id = other.start_record(BIZ_ID, ROOM, RecordPlan(record_mode=RecordMode.SINGLE))
    item = deliver(stack, created)
    assert item["outcome"]["status"] == "adopted"
    assert item["outcome"]["task_id"] == task_id
    assert item["outcome"]["record_mode"] == 1
    assert start_answers(stack) == [None, TASK_IN_USE]  # only the other party's was accepted
    assert len(stack.emulator.tasks(room_id=ROOM)) == 1


def test_start_race_lost_to_another_worker_adopts_its_task(
    stack: Stack, created: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker starts the room while our StartRecord is on its way."""
    from handler.bootstrap import app
    from handler.domain.decision import RecordMode, RecordPlan

    rival = TencentGme(stack.emulator.url, *_credentials())
    real_start = TencentGme.start_record
    raced: list[str] = []

    def lose_race_then_start(self: TencentGme, biz_id: int, room_id: str, plan: Any) -> str:
        if not raced:
            raced.append(
                real_start(rival, biz_id, room_id, RecordPlan(record_mode=RecordMode.BOTH))
            )
        return real_start(self, biz_id, room_id, plan)

    monkeypatch.setattr(TencentGme, "start_record", lose_race_then_start)
    app.reset()
    item = deliver(stack, created)
    assert item["outcome"]["status"] == "adopted"
    assert item["outcome"]["task_id"] == raced[0]
    assert item["outcome"]["record_mode"] == 3  # what GME runs, not what we asked for
    assert item["outcome"]["reason"] == "StartRecord answered TaskInUse"
    assert len(stack.emulator.tasks(room_id=ROOM)) == 1
    assert start_answers(stack) == [None, TASK_IN_USE]


def test_task_in_use_but_not_visible_yet_is_retried(stack: Stack, created: dict[str, Any]) -> None:
    """GME refuses the start, yet DescribeTaskInfo shows no task (the rival's task not visible
    yet, or just ended): nothing is stored, the queue brings the message back."""
    stack.emulator.fail_next("StartRecord", TASK_IN_USE)
    first = deliver(stack, created)
    assert first["reason"] == f"retry: {TASK_IN_USE}: task in use but not visible yet"
    assert stack.emulator.tasks() == []
    assert deliver(stack, created)["outcome"]["status"] == "started"
    assert len(stack.emulator.tasks(room_id=ROOM)) == 1


def test_room_not_found_is_retried_while_new_and_final_when_old(
    stack: Stack, created: dict[str, Any]
) -> None:
    import datetime as dt

    stack.emulator.missing_rooms.add((BIZ_ID, ROOM))
    fresh = {**created, "time": dt.datetime.now(dt.UTC).isoformat()}
    assert deliver(stack, fresh)["reason"].startswith("retry: ResourceNotFound.RoomNotFound")
    old = {**created, "session": "old-session"}  # the sample's time is long past the grace
    item = deliver(stack, old)
    assert item["reason"].startswith("failed: ResourceNotFound.RoomNotFound")


def start_answers(stack: Stack) -> list[str | None]:
    """The error code of every StartRecord GME saw, in order (None: accepted, a task made)."""
    return [c.error_code for c in stack.emulator.calls("StartRecord")]


def _credentials() -> tuple[str, str]:
    from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

    return DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
