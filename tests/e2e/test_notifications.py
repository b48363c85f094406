"""Recording events out, through the real entry points against the emulator: a local HTTP
receiver verifies each delivery with the official `standardwebhooks` library, EventBridge is
moto_server's (a rule on the stack's bus forwards to an SQS queue the test reads back)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from standardwebhooks.webhooks import Webhook

from handler.adapters.outbox_sqlite import SQLiteOutbox
from handler.bootstrap import app
from handler.entrypoints import scheduler, webhook, worker
from handler.tools import contract
from handler.tools.local import LocalContext, http_event
from tests.conftest import GME_KEY, Stack, load_event, sqs_event
from tests.servers import free_port

NOTIFY_SECRET = "whsec_" + "dGVzdC1zdWl0ZS1ub3RpZnkta2V5LTEyMzQ="  # "test-suite-notify-key-1234"


class Receiver:
    """A customer's endpoint on a loopback port: it can be down (nothing listens) and come
    back on the same port. Every delivery is verified before it is kept."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/gme-events"
        self.deliveries: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self._server: HTTPServer | None = None

    def up(self) -> None:
        receiver = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body = Webhook(NOTIFY_SECRET).verify(raw, headers)
                except Exception as exc:
                    receiver.refused.append(repr(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.deliveries.append({"headers": headers, "body": body, "raw": raw})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", self.port), Handle)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [d["body"] for d in self.deliveries if d["body"]["type"] == kind]


@pytest.fixture
def receiver(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    r = Receiver()
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", r.url)
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", NOTIFY_SECRET)
    app.reset()
    yield r
    r.down()


def tick(at: float) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(at, tz=UTC).isoformat().replace("+00:00", "Z")
    result: dict[str, Any] = scheduler.handler({"time": stamp}, LocalContext("scheduler"))
    return result


def test_start_duplicate_and_close_arrive_signed_once_per_fact(
    stack: Stack, receiver: Receiver
) -> None:
    receiver.up()
    created = load_event("room-created.json")
    assert webhook.handler(stack.room_event_request(created), stack.context())["statusCode"] == 200
    # The same room event again, by the queue this time: a duplicate, no new fact.
    assert worker.handler(sqs_event(created), stack.context("worker")) == {"batchItemFailures": []}
    closed = load_event("room-closed.json")
    assert webhook.handler(stack.room_event_request(closed), stack.context())["statusCode"] == 200

    assert receiver.refused == []
    [started] = receiver.of_type("recording.started")
    [stopped] = receiver.of_type("recording.stopped")
    [task] = stack.emulator.tasks()
    task_id = str(task.task_id)
    assert int(task_id) > 2**53
    assert started["task_id"] == stopped["task_id"] == task_id  # exact, as a decimal string
    assert f'"task_id":"{task_id}"'.encode() in receiver.deliveries[0]["raw"]
    assert started["adopted"] is False
    assert started["reason"] == "new"
    assert (started["biz_id"], started["room_id"], started["session"]) == (
        created["biz_id"],
        created["room_id"],
        created["session"],
    )
    assert started["rule"] == "ranked-mixed"
    assert started["policy_version"].startswith("sha256:")
    assert stopped["reason"] == "close"
    assert started["id"] != stopped["id"]
    schema = Draft202012Validator(contract.recording_event_schema())
    for delivery in receiver.deliveries:
        assert delivery["headers"]["webhook-id"] == delivery["body"]["id"]
        schema.validate(delivery["body"])  # what docs/ publishes
    assert len(receiver.deliveries) == 2


def test_a_receiver_that_was_down_gets_the_event_from_later_ticks(
    stack: Stack, receiver: Receiver, tmp_path: Any
) -> None:
    created = load_event("room-created.json")
    response = worker.handler(sqs_event(created), stack.context("worker"))
    assert response == {"batchItemFailures": []}  # the recording did not fail
    assert len(stack.emulator.tasks()) == 1
    outbox = SQLiteOutbox(tmp_path / "ledger.db")
    [kept] = outbox.due(time.time(), 10)
    assert kept.sink == "webhook"

    now = time.time()
    counts = tick(now)  # still down: kept, tried again later
    assert counts["events_retry_later"] == 1
    receiver.up()
    assert tick(now + 60).get("events_delivered") is None  # not due yet: backing off
    counts = tick(now + 400)
    assert counts["events_delivered"] == 1
    [started] = receiver.of_type("recording.started")
    assert started["id"] == kept.event_id
    assert started["task_id"] == str(stack.emulator.tasks()[0].task_id)
    assert outbox.due(now + 10_000, 10) == []
    # The receiver is back: the next fact goes straight out, no tick needed.
    worker.handler(sqs_event(load_event("room-closed.json")), stack.context("worker"))
    assert [d["body"]["type"] for d in receiver.deliveries] == [
        "recording.started",
        "recording.stopped",
    ]
    assert tick(now + 800).get("events_delivered") is None  # nothing delivered twice


def test_an_unverifiable_or_hanging_receiver_never_slows_or_fails_the_recording(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    hang = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hang.wait(10)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/")
        monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", NOTIFY_SECRET)
        monkeypatch.setenv("NOTIFY_TIMEOUT_SECONDS", "0.5")
        app.reset()
        rooms = [
            {**load_event("room-created.json"), "id": f"e-{i}", "room_id": f"r-{i}"}
            for i in range(4)
        ]
        began = time.monotonic()
        response = worker.handler(sqs_event(*rooms), stack.context("worker"))
        spent = time.monotonic() - began
    finally:
        hang.set()
        server.shutdown()
        server.server_close()
    assert response == {"batchItemFailures": []}
    assert len(stack.emulator.tasks()) == 4
    # One timeout (0.5 s), then the sink is paused and the rest go straight to the outbox;
    # four timeouts would take 2 s.
    assert spent < 1.4
    assert len(SQLiteOutbox(stack.store_path.parent / "ledger.db").due(time.time(), 10)) == 4


def test_eventbridge_gets_each_fact_on_the_stacks_bus(
    stack: Stack, moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.servers import moto_env

    moto_env(monkeypatch, moto.url, "eventbridge", "sqs")
    bus = f"gme-autorecord-test-{int(time.time() * 1000)}"
    events, sqs = moto.client("events"), moto.client("sqs")
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName=bus)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name="all", EventBusName=bus, EventPattern='{"source": ["gme-autorecord"]}')
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])
    monkeypatch.setenv("NOTIFY_EVENT_BUS", bus)
    app.reset()

    created = load_event("room-created.json")
    webhook.handler(stack.room_event_request(created), stack.context())
    webhook.handler(stack.room_event_request(load_event("room-closed.json")), stack.context())

    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    delivered = [json.loads(m["Body"]) for m in got.get("Messages", [])]
    assert sorted(d["detail-type"] for d in delivered) == ["recording.started", "recording.stopped"]
    [started] = [d for d in delivered if d["detail-type"] == "recording.started"]
    assert started["source"] == "gme-autorecord"
    assert started["detail"]["task_id"] == str(stack.emulator.tasks()[0].task_id)
    assert started["detail"]["id"].startswith("msg_")


HOUR = 3600.0


def test_renewal_and_a_max_duration_end_are_events_too(
    stack: Stack, receiver: Receiver, policy_limits: Any
) -> None:
    policy_limits(**{"ranked-mixed": "30h"})  # renewed at 24 h, ended at 30 h
    receiver.up()
    t0 = time.time()
    created = load_event("room-created.json")
    assert webhook.handler(stack.room_event_request(created), stack.context())["statusCode"] == 200
    stack.emulator.advance(23 * HOUR + 50 * 60)
    assert tick(t0 + 23 * HOUR + 50 * 60)["renewed"] == 1
    stack.emulator.advance(6 * HOUR + 20 * 60)  # its room.closed never came
    assert tick(t0 + 30 * HOUR + 10 * 60)["max_duration_ended"] == 1

    assert receiver.refused == []
    assert [d["body"]["type"] for d in receiver.deliveries] == [
        "recording.started",
        "recording.renewed",
        "recording.stopped",
    ]
    started, renewed, stopped = (d["body"] for d in receiver.deliveries)
    old, new = sorted(stack.emulator.tasks(), key=lambda t: t.started_at)
    assert (renewed["previous_task_id"], renewed["task_id"]) == (str(old.task_id), str(new.task_id))
    assert (renewed["reason"], renewed["generation"]) == ("renewal", 1)
    assert (stopped["reason"], stopped["task_id"], stopped["generation"]) == (
        "max_duration",
        str(new.task_id),
        1,
    )
    assert len({started["id"], renewed["id"], stopped["id"]}) == 3


def gme_uploaded(task_id: str, room_id: str, file_name: str, seq: int) -> dict[str, Any]:
    body = {
        "BizID": 1400000000,
        "RoomID": room_id,
        "TaskID": int(task_id),
        "EventType": 3,
        "Timestamp": int(time.time()),
        "Detail": {"SeqNo": seq, "FileName": file_name},
    }
    raw = json.dumps(body).encode()
    sign = base64.b64encode(hmac.new(GME_KEY.encode(), raw, hashlib.sha1).digest()).decode()
    headers = {"content-type": "application/json", "signature": sign}
    return http_event("POST", "/v1/gme/recording-callbacks", headers, raw)


def test_a_new_file_from_gmes_callback_is_an_event_once(stack: Stack, receiver: Receiver) -> None:
    receiver.up()
    created = load_event("room-created.json")
    answer = webhook.handler(stack.room_event_request(created), stack.context())
    task_id = json.loads(answer["body"])["task_id"]
    upload = gme_uploaded(task_id, created["room_id"], "rec/ranked-eu-1042/mix-1.m4a", 1)
    for _ in range(2):  # GME repeats its callbacks
        assert webhook.handler(upload, stack.context())["statusCode"] == 200
    [file] = receiver.of_type("recording.file")
    assert (file["file_name"], file["task_id"], file["reason"]) == (
        "rec/ranked-eu-1042/mix-1.m4a",
        task_id,
        "uploaded",
    )
    assert len(receiver.deliveries) == 2  # started, file
