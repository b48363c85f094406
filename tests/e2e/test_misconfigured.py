"""A configuration error is the operator's to fix, not the sender's: the webhook answers 503
`misconfigured` (the sender keeps the event and retries), the worker fails the item with a
`retry: misconfigured` reason (SQS brings it back), the log names the variable and never its
value, nothing reaches GME, and once the configuration is fixed the event records once."""

from __future__ import annotations

import io
import json
import os

import pytest

from handler.bootstrap import app
from handler.entrypoints import webhook, worker
from handler.ingress import receiver
from tests.conftest import Stack, load_event, sqs_event
from tests.e2e.conftest import emf, metric_counts

REDIS_PASSWORD = "do-not-log-this-password"
BROKEN = {
    "WEBHOOK_SECRETS": "whsec_this is not base64!",
    "IDEMPOTENCY_STORE": f"redis://user:{REDIS_PASSWORD}/host",  # password parsed as a port
}


def _break(monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    good = os.environ[name]
    monkeypatch.setenv(name, BROKEN[name])
    app.reset()
    return good


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_webhook_answers_503_names_the_variable_and_keeps_the_value_out(
    stack: Stack, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    request = stack.room_event_request(load_event("room-created.json"))  # signed with a good key
    good = _break(monkeypatch, name)
    response = webhook.handler(request, stack.context("webhook"))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "5"
    assert json.loads(response["body"])["code"] == "misconfigured"
    assert name not in response["body"]  # the sender learns nothing about the configuration
    [line] = [json.loads(x) for x in logs.getvalue().splitlines() if "configuration error" in x]
    assert name in line["error"]
    assert BROKEN[name] not in logs.getvalue()
    assert REDIS_PASSWORD not in logs.getvalue()
    assert stack.emulator.tasks() == []

    monkeypatch.setenv(name, good)  # the operator fixes it; the sender's retry records once
    app.reset()
    assert webhook.handler(request, stack.context("webhook"))["statusCode"] == 200
    assert len(stack.emulator.tasks()) == 1


def test_worker_fails_the_item_for_a_retry_and_records_once_fixed(
    stack: Stack, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sqs_event(load_event("room-created.json"))
    good = _break(monkeypatch, "IDEMPOTENCY_STORE")
    response, report = worker.process_batch(event, stack.context("worker"))
    assert len(response["batchItemFailures"]) == 1
    assert report[0]["reason"].startswith("retry: misconfigured: ")
    assert "IDEMPOTENCY_STORE" in report[0]["reason"]
    assert REDIS_PASSWORD not in logs.getvalue()
    [line] = [json.loads(x) for x in logs.getvalue().splitlines() if "message failed" in x]
    assert "exception" not in line  # an expected failure: its reason says it all
    assert stack.emulator.tasks() == []

    monkeypatch.setenv("IDEMPOTENCY_STORE", good)
    app.reset()
    assert worker.handler(event, stack.context("worker")) == {"batchItemFailures": []}
    assert len(stack.emulator.tasks()) == 1


def test_webhook_failures_are_counted_for_the_alarm(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both 5xx of ours (a setting it cannot use, a crash) are answered by the resolver, so
    Lambda's Errors never sees them: `WebhookFailed` is what the webhook-errors alarm adds."""
    request = stack.room_event_request(load_event("room-created.json"))
    good = _break(monkeypatch, "IDEMPOTENCY_STORE")
    assert webhook.handler(request, stack.context("webhook"))["statusCode"] == 503
    monkeypatch.setenv("IDEMPOTENCY_STORE", good)
    app.reset()

    def crash(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(receiver, "ingest", crash)  # a bug past the configuration
    assert webhook.handler(request, stack.context("webhook"))["statusCode"] == 500
    counts = metric_counts(emf(capsys.readouterr().out))
    assert counts[("WebhookFailed", "local")] == 2  # function_name: this stage's webhook
