"""Observability through the real entry points: what an on-call engineer reads must be useful
(one decision line with the room's keys, correlation ids, EMF metrics) and must never carry a
secret, a signature or an Authorization header, even with event logging switched on."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from handler.bootstrap import app, observability
from handler.bootstrap.observability import logger
from handler.domain.signatures import sign_trtc
from handler.entrypoints import webhook, worker
from handler.tools.local import http_event
from tests.conftest import BIZ_ID, GME_KEY, TRTC_KEY, WEBHOOK_SECRET, Stack, load_event, sqs_event
from tests.e2e.conftest import emf, metric_counts

SECRETS = [
    WEBHOOK_SECRET,
    WEBHOOK_SECRET.removeprefix("whsec_"),
    TRTC_KEY,
    GME_KEY,
    DEFAULT_SECRET_ID,
    DEFAULT_SECRET_KEY,
]
BEARER = "Bearer top-secret-bearer-value-123"


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_full_run_logs_no_secret_signature_or_authorization(
    stack: Stack, logs: io.StringIO
) -> None:
    # Event logging on, as an operator would switch it on at 3 a.m. to see what arrives.
    logged_webhook = logger.inject_lambda_context(webhook.handler, log_event=True)
    logged_worker = logger.inject_lambda_context(worker.handler, log_event=True)
    request = stack.room_event_request(load_event("room-created.json"))
    request["headers"]["authorization"] = BEARER
    signature = request["headers"]["webhook-signature"]
    trtc = stack.trtc_request(load_event("trtc-room-created.json"))

    assert logged_webhook(request, stack.context("webhook"))["statusCode"] == 200
    assert logged_webhook(trtc, stack.context("webhook"))["statusCode"] == 200
    bad = stack.room_event_request(load_event("room-created.json"))
    bad["headers"]["webhook-signature"] = "v1," + "A" * 44
    assert logged_webhook(bad, stack.context("webhook"))["statusCode"] == 401
    response = logged_worker(sqs_event(load_event("room-created.json")), stack.context("worker"))
    assert response == {"batchItemFailures": []}

    text = logs.getvalue()
    docs = lines(logs)
    assert any(d["message"] == "recording decision" for d in docs)
    # The event was logged (so the test can fail), with its credentials masked.
    logged_events = [d["message"] for d in docs if isinstance(d["message"], dict)]
    assert any(e.get("headers", {}).get("authorization") == "***" for e in logged_events)
    assert any(e.get("headers", {}).get("webhook-signature") == "***" for e in logged_events)
    assert any(e.get("headers", {}).get("sign") == "***" for e in logged_events)
    for secret in [*SECRETS, signature, trtc["headers"]["sign"], BEARER, "A" * 44]:
        assert secret not in text


def test_decision_line_has_keys_and_correlation_ids(stack: Stack, logs: io.StringIO) -> None:
    request = stack.room_event_request(load_event("room-created.json"))
    webhook.handler(request, stack.context("webhook"))
    worker.handler(sqs_event(load_event("room-created-practice.json")), stack.context("worker"))
    decisions = [d for d in lines(logs) if d["message"] == "recording decision"]
    [recorded, skipped] = decisions
    assert recorded["correlation_id"] == request["requestContext"]["requestId"]
    assert recorded["biz_id"] == 1400000000
    assert recorded["room_id"] == "ranked-eu-1042"
    assert recorded["task_id"]
    assert recorded["rule"] == "ranked-mixed"
    assert recorded["policy_version"].startswith("sha256:")
    assert recorded["decision"] == "record"
    assert skipped["correlation_id"] == "evt-0002-practice-created"  # the event id
    assert skipped["decision"] == "skip"
    assert skipped["reason"] == "practice and test rooms are not recorded"


def test_a_secret_value_is_masked_anywhere_in_a_line(stack: Stack, logs: io.StringIO) -> None:
    webhook.handler(  # builds and registers the configuration's secrets
        stack.room_event_request(load_event("room-created.json")), stack.context("webhook")
    )
    try:
        raise RuntimeError(f"cannot sign with {DEFAULT_SECRET_KEY}")
    except RuntimeError:
        logger.exception("oops", extra={"detail": {"note": f"key={TRTC_KEY}"}, "sign": "abc"})
    [line] = [d for d in lines(logs) if d["message"] == "oops"]
    assert line["detail"] == {"note": "key=***"}
    assert line["sign"] == "***"
    assert DEFAULT_SECRET_KEY not in json.dumps(line)
    assert "cannot sign with ***" in line["exception"]


def test_a_bound_trtc_key_is_masked_without_its_app_prefix(
    stack: Stack, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "test-suite-key-bound-to-its-app"  # registered by no other test: this one can fail
    monkeypatch.setenv("TRTC_CALLBACK_KEY", f"{BIZ_ID}:{key}")
    app.reset()
    doc = {**load_event("trtc-room-created.json"), "CallbackTs": int(time.time() * 1000)}
    raw = json.dumps(doc).encode()
    headers = {"content-type": "application/json", "sign": sign_trtc(key, raw)}
    request = http_event(
        "POST", "/v1/trtc/room-callbacks", {**headers, "sdkappid": str(BIZ_ID)}, raw
    )
    assert webhook.handler(request, stack.context("webhook"))["statusCode"] == 200
    logger.warning("oops", extra={"detail": f"used {key} for {BIZ_ID}"})
    [line] = [d for d in lines(logs) if d["message"] == "oops"]
    assert line["detail"] == f"used *** for {BIZ_ID}"
    assert key not in logs.getvalue()


def test_metrics_for_each_outcome(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    created = load_event("room-created.json")
    webhook.handler(stack.room_event_request(created), stack.context("webhook"))
    webhook.handler(stack.room_event_request(created), stack.context("webhook"))  # duplicate
    bad = stack.room_event_request(created)
    bad["headers"]["webhook-signature"] = "v1," + "A" * 44
    webhook.handler(bad, stack.context("webhook"))
    worker.handler(sqs_event(load_event("room-created-practice.json")), stack.context("worker"))
    other = {**created, "id": "evt-x", "room_id": "ranked-eu-9", "session": "s-9"}
    stack.emulator.fail_next("StartRecord", "RequestLimitExceeded")
    worker.handler(sqs_event(other), stack.context("worker"))  # throttled, backed off, started
    stack.emulator.fail_next("StartRecord", "UnsupportedOperation.ServiceNotOpened")
    third = {**other, "id": "evt-y", "room_id": "ranked-eu-10"}
    worker.handler(sqs_event(third), stack.context("worker"))  # permanent

    docs = emf(capsys.readouterr().out)
    counts = metric_counts(docs)
    counts.pop(("GmePacingWait", None), None)  # whether a call waited depends on timing here
    assert counts == {
        ("RecordingStarted", None): 2,
        ("DuplicateSuppressed", None): 1,
        ("WebhookRejected", "bad_signature"): 1,
        ("PolicySkipped", None): 1,
        ("GmeError", "RequestLimitExceeded"): 1,
        ("Throttled", None): 1,
        ("GmeError", "UnsupportedOperation.ServiceNotOpened"): 1,
        # What the ledger recorded, by rule: the duplicate and the retried start count nothing.
        ("RecordingOutcome", "ranked-mixed/started"): 2,
        ("RecordingOutcome", "practice-rooms-never/skipped"): 1,
        ("RecordingOutcome", "ranked-mixed/failed"): 1,
        ("TimeToRecord", None): 2,
    }
    # Each with exactly the dimensions the dashboard's widgets and searches expect.
    for doc in docs:
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        for metric in directive["Metrics"]:
            assert metric["Name"] in observability.METRIC_NAMES
            extra = observability.DIMENSIONS.get(metric["Name"], ())
            assert set(directive["Dimensions"][0]) == {"service", *extra}, metric["Name"]


def pacing_waits(docs: list[dict[str, Any]]) -> list[float]:
    waits: list[float] = []
    for doc in docs:
        value = doc.get("GmePacingWait")
        if value is not None:
            units = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
            assert units["GmePacingWait"] == "Milliseconds"
            waits += value if isinstance(value, list) else [value]
    return waits


def test_time_waiting_for_a_gme_slot_is_a_metric(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One call per second per action: the second room's StartRecord waits for its slot.
    monkeypatch.setenv("GME_RATE_LIMIT_PER_SECOND", "1")
    monkeypatch.setenv("GME_RATE_LIMIT_BURST", "1")
    created = load_event("room-created.json")
    for i in (1, 2):
        room = {**created, "id": f"evt-pace-{i}", "room_id": f"ranked-pace-{i}"}
        assert worker.handler(sqs_event(room), stack.context("worker")) == {"batchItemFailures": []}
    waits = pacing_waits(emf(capsys.readouterr().out))
    assert waits, "no GmePacingWait datapoint"
    assert 500 < waits[0] <= 1000, waits
    assert all(0 <= w <= 1000 for w in waits), waits  # a wait under 0.05 ms shows as 0.0


def metric_values(docs: list[dict[str, Any]], name: str, unit: str) -> list[float]:
    values: list[float] = []
    for doc in docs:
        if name in doc:
            units = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
            assert units[name] == unit
            values += doc[name] if isinstance(doc[name], list) else [doc[name]]
    return values


def test_time_to_record_from_the_event_time_to_gmes_answer(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # The room was created 3 s before it reached us (queue age, sender retries): that counts.
    created = {**load_event("room-created.json"), "time": _iso(time.time() - 3)}
    before = time.time()
    webhook.handler(stack.room_event_request(created), stack.context("webhook"))
    spent = time.time() - before
    webhook.handler(stack.room_event_request(created), stack.context("webhook"))  # duplicate
    closed = {**created, "id": "evt-close", "type": "room.closed"}
    webhook.handler(stack.room_event_request(closed), stack.context("webhook"))
    docs = emf(capsys.readouterr().out)
    [value] = metric_values(docs, "TimeToRecord", "Milliseconds")  # the start only
    assert 3000 <= value <= (3 + spent) * 1000 + 1000, value
    directive = next(d for d in docs if "TimeToRecord" in d)["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["service"]]  # what the p99 alarm watches
    counts = metric_counts(docs)
    assert counts[("RecordingOutcome", "ranked-mixed/started")] == 1
    assert counts[("RecordingOutcome", "ranked-mixed/stopped")] == 1


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=UTC).isoformat().replace("+00:00", "Z")


def test_tracing_is_off_outside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    assert not observability.tracing_enabled()
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    assert observability.tracing_enabled()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not observability.tracing_enabled()


def test_a_retried_start_still_logs_its_decision(stack: Stack, logs: io.StringIO) -> None:
    stack.emulator.fail_next("StartRecord", "InternalError")
    response = worker.handler(sqs_event(load_event("room-created.json")), stack.context("worker"))
    assert len(response["batchItemFailures"]) == 1
    [line] = [d for d in lines(logs) if d["message"] == "recording decision"]
    assert line["status"] == "retry"
    assert line["error_code"] == "InternalError"
    assert line["room_id"] == "ranked-eu-1042"
    assert line["correlation_id"] == "evt-0001-ranked-created"
    [failed] = [d for d in lines(logs) if d["message"] == "message failed"]
    assert failed["reason"].startswith("retry: InternalError")


def test_adopted_after_a_lost_answer_counts_once(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.emulator.drop_next("StartRecord")  # GME starts the task, the answer is lost
    event = sqs_event(load_event("room-created.json"))
    worker.handler(event, stack.context("worker"))
    worker.handler(event, stack.context("worker"))  # redelivery adopts the running task
    counts = metric_counts(emf(capsys.readouterr().out))
    counts.pop(("GmePacingWait", None), None)  # whether a call waited depends on timing here
    assert counts == {
        ("GmeError", "ClientNetworkError"): 1,
        ("RecordingAdopted", None): 1,
        ("RecordingOutcome", "ranked-mixed/adopted"): 1,  # no TimeToRecord: GME's answer was lost
    }


def test_an_unexpected_fault_is_logged_with_its_traceback(
    stack: Stack, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("LEDGER_STORE", f"sqlite:///{blocker}/ledger.db")  # cannot be opened
    response = worker.handler(sqs_event(load_event("room-created.json")), stack.context("worker"))
    assert len(response["batchItemFailures"]) == 1
    [line] = [d for d in lines(logs) if d["message"] == "message failed"]
    assert line["reason"].startswith("error: ")
    assert "Traceback" in line["exception"]  # what the operator needs to find the fault
    assert stack.emulator.tasks() == []


def test_an_expected_failure_is_logged_without_a_traceback(stack: Stack, logs: io.StringIO) -> None:
    stack.emulator.fail_next("StartRecord", "InternalError")
    worker.handler(sqs_event(load_event("room-created.json")), stack.context("worker"))
    [line] = [d for d in lines(logs) if d["message"] == "message failed"]
    assert line["reason"].startswith("retry: InternalError")
    assert "exception" not in line
