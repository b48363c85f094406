"""Queue mode against a real SQS-compatible server (moto_server over HTTP): 202 without GME,
message attributes, one message per event id however often it is delivered, 503 when the
queue cannot be reached."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from handler.bootstrap import app
from tests.conftest import Stack, load_event
from tests.servers import free_port
from tests.webhook.conftest import Queue, as_base64, call, gme_request


def test_room_event_is_queued_with_attributes_and_no_gme_call(stack: Stack, queue: Queue) -> None:
    status, body, _ = call(stack, stack.room_event_request(load_event("room-created.json")))
    assert status == 202
    assert body["status"] == "queued"
    assert body["event_id"] == "evt-0001-ranked-created"
    assert "duplicate" not in body
    [message] = queue.receive_all()
    assert message["MessageId"] == body["message_id"]
    attrs = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attrs == {"event_id": "evt-0001-ranked-created", "format": "room-event-v1"}
    queued = json.loads(message["Body"])
    assert (queued["room_id"], queued["session"], queued["kind"]) == (
        "ranked-eu-1042",
        "match-7f3a",
        "room.created",
    )
    assert stack.emulator.calls() == []


def test_duplicate_deliveries_are_acknowledged_but_enqueued_once(
    stack: Stack, queue: Queue
) -> None:
    doc = load_event("room-created.json")
    first = call(stack, stack.room_event_request(doc))
    # Redeliveries: new webhook-id and timestamp, base64 framing — the same event id.
    again = [call(stack, stack.room_event_request(doc)) for _ in range(3)]
    again.append(call(stack, as_base64(stack.room_event_request(doc))))
    assert first[0] == 202
    for status, body, _ in again:
        assert (status, body["duplicate"], body["message_id"]) == (
            202,
            True,
            first[1]["message_id"],
        )
    assert len(queue.receive_all()) == 1
    # A different event id is a different message.
    other = call(stack, stack.room_event_request({**doc, "id": "evt-0002", "session": "m-2"}))
    assert other[0] == 202
    assert "duplicate" not in other[1]
    assert len(queue.receive_all()) == 1
    assert stack.emulator.calls() == []


def test_concurrent_duplicates_enqueue_once(stack: Stack, queue: Queue) -> None:
    doc = load_event("room-created.json")
    requests = [stack.room_event_request(doc) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: call(stack, r), requests))
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) <= {202, 503}  # 503 = another delivery holds the lock: retry later
    assert statuses.count(202) >= 1
    assert len(queue.receive_all()) == 1


def test_trtc_callback_is_queued_and_gme_callback_acknowledged(stack: Stack, queue: Queue) -> None:
    doc = load_event("trtc-room-created.json")
    status, body, _ = call(stack, stack.trtc_request(doc))
    assert status == 202
    again = call(stack, stack.trtc_request(doc))  # TRTC retries: new CallbackTs, same event
    assert again[1]["duplicate"] is True
    status, body, _ = call(stack, gme_request(load_event("gme-recording-started.json")))
    assert (status, body["status"]) == (200, "ignored")
    [message] = queue.receive_all()
    assert message["MessageAttributes"]["format"]["StringValue"] == "trtc-room-callback"
    assert stack.emulator.calls() == []


def test_unreachable_queue_is_503_fast_and_not_remembered(
    stack: Stack, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", closed)
    monkeypatch.setenv("RECORD_QUEUE_URL", f"{closed}/123456789012/records")
    app.reset()
    doc = load_event("room-created.json")
    began = time.monotonic()
    status, body, headers = call(stack, stack.room_event_request(doc))
    elapsed = time.monotonic() - began
    assert (status, body["code"], headers["Retry-After"]) == (503, "queue_unavailable", "5")
    assert elapsed < 5
    # The failed attempt left no idempotency record: once the queue is back, it is enqueued.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", queue.client.meta.endpoint_url)
    monkeypatch.setenv("RECORD_QUEUE_URL", queue.url)
    app.reset()
    status, body, _ = call(stack, stack.room_event_request(doc))
    assert status == 202
    assert "duplicate" not in body
    assert len(queue.receive_all()) == 1
    assert stack.emulator.calls() == []
