"""End to end through the Lambda entry points, with the real SDK over HTTP to the emulator and a
real SQLite idempotency file. The emulator's task list is the ground truth: one task per room
session the policy wants, none for the rest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler.entrypoints import scheduler, webhook, worker
from tests.conftest import BIZ_ID, EVENTS, Stack, load_event, sqs_event


def call_webhook(stack: Stack, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = webhook.handler(request, stack.context("webhook"))
    return result["statusCode"], json.loads(result["body"])


def run_worker(stack: Stack, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return worker.process_batch(event, stack.context("worker"))


def test_webhook_room_event_starts_one_recording(stack: Stack) -> None:
    status, body = call_webhook(stack, stack.room_event_request(load_event("room-created.json")))
    assert status == 200
    assert body["status"] == "started"
    [task] = stack.emulator.tasks(room_id="ranked-eu-1042")
    assert body["task_id"] == str(task.task_id)
    assert task.task_id > 2**53  # kept exact end to end, never through a float
    assert task.record_mode == 2
    assert tuple(task.unsubscribe_user_ids) == ("observer-bot",)
    assert body["rule"] == "ranked-mixed"
    assert body["policy_version"].startswith("sha256:")


def test_duplicate_webhook_deliveries_leave_one_task(stack: Stack) -> None:
    doc = load_event("room-created.json")
    first = call_webhook(stack, stack.room_event_request(doc))
    second = call_webhook(stack, stack.room_event_request(doc))
    assert first[0] == second[0] == 200
    assert second[1]["duplicate"] is True
    assert second[1]["task_id"] == first[1]["task_id"]
    assert len(stack.emulator.tasks(room_id="ranked-eu-1042")) == 1
    assert stack.starts() == 1


def test_same_room_event_via_webhook_and_queue_leaves_one_task(stack: Stack) -> None:
    doc = load_event("room-created.json")
    status, body = call_webhook(stack, stack.room_event_request(doc))
    response, report = run_worker(stack, sqs_event(doc, doc))
    assert status == 200
    assert response == {"batchItemFailures": []}
    assert [r["outcome"]["task_id"] for r in report] == [body["task_id"]] * 2
    assert all(r["outcome"]["duplicate"] for r in report)
    assert len(stack.emulator.tasks()) == 1
    assert stack.starts() == 1


def test_sample_sqs_events_start_recordings(stack: Stack) -> None:
    response = worker.handler(load_event("sqs-room-created.json"), stack.context("worker"))
    assert response == {"batchItemFailures": []}
    response = worker.handler(load_event("sqs-trtc-room-created.json"), stack.context("worker"))
    assert response == {"batchItemFailures": []}
    response = worker.handler(
        load_event("sqs-wrapped-sns-eventbridge.json"), stack.context("worker")
    )
    assert response == {"batchItemFailures": []}
    rooms = sorted(t.room_id for t in stack.emulator.tasks())
    assert rooms == ["ranked-eu-1042", "ranked-eu-2001", "ranked-eu-3001", "support-1001"]
    [support] = stack.emulator.tasks(room_id="support-1001")
    assert support.record_mode == 1


def test_trtc_room_created_via_webhook_and_retry(stack: Stack) -> None:
    doc = load_event("trtc-room-created.json")
    status, body = call_webhook(stack, stack.trtc_request(doc))
    again = call_webhook(stack, stack.trtc_request(doc))  # TRTC retries the same callback
    assert status == 200
    assert body["status"] == "started"
    assert again[1]["duplicate"] is True
    assert len(stack.emulator.tasks(biz_id=BIZ_ID, room_id="support-1001")) == 1


def test_mixed_batch_fails_only_bad_items_with_reasons(stack: Stack) -> None:
    event = load_event("sqs-mixed-batch.json")
    response, report = run_worker(stack, event)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {"msg-0002", "msg-0003", "msg-0004"}
    reasons = {r["message_id"]: r.get("reason", "") for r in report}
    assert reasons["msg-0002"].startswith("invalid_json")
    assert reasons["msg-0003"].startswith("invalid_field: biz_id")
    assert reasons["msg-0004"].startswith("unknown_format")
    assert [t.room_id for t in stack.emulator.tasks()] == ["ranked-eu-4001"]
    assert stack.starts() == 1


@pytest.mark.parametrize("path", sorted((EVENTS / "invalid").iterdir()), ids=lambda p: p.name)
def test_invalid_room_events_get_4xx_and_never_reach_gme(stack: Stack, path: Any) -> None:
    status, body = call_webhook(stack, stack.room_event_request(path.read_bytes()))
    assert status in (400, 422)
    assert body["code"] in {"invalid_json", "invalid_field", "invalid_body"}
    assert "Traceback" not in json.dumps(body)
    assert stack.emulator.calls() == []


@pytest.mark.parametrize("path", sorted((EVENTS / "invalid").iterdir()), ids=lambda p: p.name)
def test_invalid_room_events_fail_their_batch_item(stack: Stack, path: Any) -> None:
    response, report = run_worker(stack, sqs_event(path.read_text()))
    assert len(response["batchItemFailures"]) == 1
    assert report[0]["reason"].split(":")[0] in {"invalid_json", "invalid_field", "invalid_body"}
    assert stack.emulator.calls() == []


def test_forged_signature_is_refused_before_anything_else(stack: Stack) -> None:
    request = stack.room_event_request(load_event("room-created.json"))
    request["headers"]["webhook-signature"] = "v1,AAAA"
    status, body = call_webhook(stack, request)
    assert (status, body["code"]) == (401, "bad_signature")
    assert WEBHOOK_SECRET_FRAGMENT not in json.dumps(body)
    assert stack.emulator.calls() == []


WEBHOOK_SECRET_FRAGMENT = "dGVzdC1zdWl0ZS13ZWJob29rLWtleQ"


def test_skipped_room_makes_no_gme_call(stack: Stack) -> None:
    doc = load_event("room-created-practice.json")
    status, body = call_webhook(stack, stack.room_event_request(doc))
    assert (status, body["status"], body["rule"]) == (200, "skipped", "practice-rooms-never")
    assert body["reason"] == "practice and test rooms are not recorded"
    assert stack.emulator.calls() == []


def test_room_closed_stops_the_task_and_a_second_close_is_harmless(stack: Stack) -> None:
    call_webhook(stack, stack.room_event_request(load_event("room-created.json")))
    status, body = call_webhook(stack, stack.room_event_request(load_event("room-closed.json")))
    again = call_webhook(stack, stack.room_event_request(load_event("room-closed.json")))
    assert (status, body["status"]) == (200, "stopped")
    assert again[1]["status"] == "stopped"
    assert stack.emulator.tasks(running_only=True) == []
    assert len(stack.emulator.calls("StopRecord")) == 1


def test_scheduler_tick_with_nothing_to_do_calls_no_gme(stack: Stack) -> None:
    result = scheduler.handler(load_event("schedule.json"), stack.context("scheduler"))
    assert result["status"] == "ok"
    assert result["time"] == "2026-11-23T21:05:00+00:00"
    assert stack.emulator.calls() == []


def test_health_and_unknown_route(stack: Stack) -> None:
    from handler.tools.local import http_event

    assert call_webhook(stack, http_event("GET", "/health", {}, b""))[0] == 200
    status, body = call_webhook(stack, http_event("POST", "/v1/nope", {}, b"{}"))
    assert (status, body["code"]) == (404, "not_found")
