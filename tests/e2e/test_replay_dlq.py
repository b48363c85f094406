"""`python -m handler replay-dlq` against SQS on a real moto_server: a room whose start failed
permanently (recording service not enabled yet) is recorded after the fix and the replay."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from handler.entrypoints import worker
from handler.tools.cli import main
from tests.conftest import Stack, load_event, sqs_event
from tests.servers import moto_env


@pytest.fixture
def sqs(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    moto_env(monkeypatch, moto_url, "sqs")
    return boto3.client("sqs")


def test_replay_after_fix_records_the_room(stack: Stack, sqs: Any, capsys: Any) -> None:
    suffix = uuid.uuid4().hex[:8]  # the session's moto_server is shared: queues of our own
    queue = sqs.create_queue(QueueName=f"record-{suffix}")["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"record-dlq-{suffix}")["QueueUrl"]
    doc = load_event("room-created.json")
    stack.emulator.fail_next("StartRecord", "UnsupportedOperation.ServiceNotOpened")
    response, _ = worker.process_batch(sqs_event(doc), stack.context("worker"))
    assert len(response["batchItemFailures"]) == 1
    response, _ = worker.process_batch(sqs_event(doc), stack.context("worker"))
    assert len(response["batchItemFailures"]) == 1  # the stored failure answers, no GME call
    assert stack.starts() == 1
    # SQS moved the message to the DLQ after maxReceiveCount; the operator fixed GME.
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(doc))
    sqs.send_message(QueueUrl=dlq, MessageBody="not json")
    assert main(["replay-dlq", "--dlq-url", dlq, "--queue-url", queue]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts == {"moved": 1, "failures_cleared": 1, "unparsable": 1}
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    response, report = worker.process_batch(sqs_event(message["Body"]), stack.context("worker"))
    assert response == {"batchItemFailures": []}
    assert report[0]["outcome"]["status"] == "started"
    assert len(stack.emulator.tasks(running_only=True)) == 1


def test_replay_needs_its_queues(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECORD_DLQ_URL", raising=False)
    assert main(["replay-dlq"]) == 2
