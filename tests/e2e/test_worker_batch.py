"""A batch's records run side by side in the worker: none waits behind another's GME round trip,
and each keeps its own outcome, failure reason and correlation id.

GME's answers are held back by the emulator (the task is made first, then the answer waits), so
the order in which GME *received* the calls shows whether the records overlapped.
"""

from __future__ import annotations

import io
import json
from typing import Any

from handler.entrypoints import worker
from tests.conftest import Stack, load_event, sqs_event

HELD = 0.5  # seconds each StartRecord answer is held


def rooms(count: int, tag: str) -> list[dict[str, Any]]:
    created = load_event("room-created.json")
    return [
        {**created, "id": f"evt-{tag}-{i}", "room_id": f"ranked-{tag}-{i}", "session": f"s-{i}"}
        for i in range(count)
    ]


def test_records_of_a_batch_do_not_wait_for_each_other(stack: Stack) -> None:
    stack.emulator.delay_next("StartRecord", HELD, count=5, after_execute=True)
    response, report = worker.process_batch(sqs_event(*rooms(5, "side")), stack.context("worker"))
    assert response == {"batchItemFailures": []}
    assert [item["outcome"]["status"] for item in report] == ["started"] * 5
    arrivals = sorted(c.at for c in stack.emulator.calls("StartRecord"))
    # One after another, the fifth would reach GME 4 x 0.5 s after the first; side by side they
    # all arrive within the pace's spacing (4 / 19 s), long before the first answer comes back.
    assert arrivals[-1] - arrivals[0] < HELD


def test_each_failed_item_keeps_its_own_reason(stack: Stack) -> None:
    """Failures complete in any order; each is reported against its own message."""
    good, skipped = rooms(2, "mixed")
    skipped = {**skipped, "room_id": "practice-mixed-1"}
    stack.emulator.delay_next("StartRecord", HELD, after_execute=True)  # the good one finishes last
    bodies: list[Any] = [good, "{not json", skipped, {"hello": "world"}]
    event = sqs_event(*bodies)
    response, report = worker.process_batch(event, stack.context("worker"))
    ids = [r["messageId"] for r in event["Records"]]
    assert [item["message_id"] for item in report] == ids  # the batch's order
    assert report[0]["outcome"]["status"] == "started"
    assert report[1]["reason"].startswith("invalid_json")
    assert report[2]["outcome"]["status"] == "skipped"
    assert report[3]["reason"].startswith("unknown_format")
    assert response == {
        "batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[3]}]
    }


def test_each_record_logs_with_its_own_correlation_id(stack: Stack, logs: io.StringIO) -> None:
    stack.emulator.delay_next("StartRecord", HELD, count=4, after_execute=True)
    worker.process_batch(sqs_event(*rooms(4, "corr")), stack.context("worker"))
    decisions = [
        doc
        for doc in map(json.loads, logs.getvalue().splitlines())
        if doc["message"] == "recording decision"
    ]
    assert len(decisions) == 4
    for doc in decisions:
        assert doc["correlation_id"] == doc["event_id"], doc
    # Nothing lingers on the threads for the next invocation's lines.
    worker.process_batch(sqs_event("{not json"), stack.context("worker"))
    [failed] = [
        doc
        for doc in map(json.loads, logs.getvalue().splitlines())
        if doc["message"] == "message failed"
    ]
    assert failed["correlation_id"].startswith("m-0-")
