"""The functions configured exactly as the generated template configures them (each function's
environment, secret references and all), against moto_server for SSM, SQS and DynamoDB and the
GME emulator: webhook -> queue -> worker -> one GME task, secrets fetched at run time.

This catches what the template tests cannot: a function missing a variable it needs, a secret
reference that does not resolve, or the webhook needing GME credentials it is not granted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from handler.bootstrap import app
from handler.entrypoints import webhook, worker
from handler.tools.local import http_event
from tests.conftest import GME_KEY, TRTC_KEY, WEBHOOK_SECRET, Stack, load_event
from tests.deploy.helpers import NEEDS_NODE, TEMPLATE, props
from tests.servers import moto_env

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
PARAMETERS = {
    "tencentcloud-secret-id": DEFAULT_SECRET_ID,
    "tencentcloud-secret-key": DEFAULT_SECRET_KEY,
    "webhook-secrets": WEBHOOK_SECRET,
    "trtc-callback-key": TRTC_KEY,
    "gme-callback-key": GME_KEY,
}

pytestmark = NEEDS_NODE  # skipped only without node/npm; otherwise the template must exist


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, stack: Stack) -> dict[str, Any]:
    """Resources named as the template names them, created afresh in the session's moto_server
    (emptied if an earlier test left them); returns names and clients."""
    moto_env(monkeypatch, moto_url, region=REGION)  # AWS_ENDPOINT_URL: every service
    monkeypatch.chdir(ROOT)  # Lambda's working directory is the package root
    assert TEMPLATE.exists(), "no generated template: run `make package` (make test does)"
    template = json.loads(TEMPLATE.read_text())
    ssm = boto3.client("ssm", region_name=REGION)
    for name, value in PARAMETERS.items():
        ssm.put_parameter(
            Name=f"/gme-autorecord/dev/{name}", Value=value, Type="SecureString", Overwrite=True
        )
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=props(template, "RecordQueue")["QueueName"])["QueueUrl"]
    sqs.purge_queue(QueueUrl=queue_url)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for resource in ("IdempotencyTable", "LedgerTable", "LedgerTableV2"):  # as the template says
        table = props(template, resource)
        if table["TableName"] in dynamodb.list_tables()["TableNames"]:
            dynamodb.delete_table(TableName=table["TableName"])
        dynamodb.create_table(
            **{
                k: table[k]
                for k in (
                    "TableName",
                    "BillingMode",
                    "KeySchema",
                    "AttributeDefinitions",
                    "GlobalSecondaryIndexes",
                )
                if k in table
            }
        )
    # The stack's recording-event bus, with a rule that copies every event to a queue to read.
    events = boto3.client("events", region_name=REGION)
    bus = props(template, "RecordingEventBus")["Name"]
    if bus not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]:
        events.create_event_bus(Name=bus)
    seen_url = sqs.create_queue(QueueName=f"{bus}-seen")["QueueUrl"]
    sqs.purge_queue(QueueUrl=seen_url)
    seen_arn = sqs.get_queue_attributes(QueueUrl=seen_url, AttributeNames=["QueueArn"])
    events.put_rule(Name="seen", EventBusName=bus, EventPattern='{"source": ["gme-autorecord"]}')
    events.put_targets(
        Rule="seen",
        EventBusName=bus,
        Targets=[{"Id": "seen", "Arn": seen_arn["Attributes"]["QueueArn"]}],
    )
    return {
        "template": template,
        "sqs": sqs,
        "queue_url": queue_url,
        "dynamodb": dynamodb,
        "seen_url": seen_url,
    }


def configure(
    monkeypatch: pytest.MonkeyPatch, aws: dict[str, Any], stack: Stack, function: str
) -> None:
    """This function's environment from the template, and nothing the stack fixture set."""
    for name in (*PARAMETERS, "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"):
        monkeypatch.delenv(name.upper().replace("-", "_"), raising=False)
    for name in ("WEBHOOK_SECRETS", "TRTC_CALLBACK_KEY", "GME_CALLBACK_KEY", "IDEMPOTENCY_STORE"):
        monkeypatch.delenv(name, raising=False)
    env = props(aws["template"], f"{function.title()}LambdaFunction")["Environment"]["Variables"]
    for name, value in env.items():
        if name == "RECORD_QUEUE_URL":
            assert value == {"Ref": "RecordQueue"}
            value = aws["queue_url"]
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GME_ENDPOINT", stack.emulator.url)  # the one stand-in for Tencent
    app.reset()


def gme_callback(body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps({**body, "Timestamp": int(time.time())}).encode()
    sign = base64.b64encode(hmac.new(GME_KEY.encode(), raw, hashlib.sha1).digest()).decode()
    headers = {"content-type": "application/json", "signature": sign}
    return http_event("POST", "/v1/gme/recording-callbacks", headers, raw)


def as_sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {
                    k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "eventSource": "aws:sqs",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def test_webhook_queue_worker_as_deployed(
    stack: Stack, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, aws, stack, "webhook")
    assert "TENCENTCLOUD_SECRET_ID" not in os.environ  # the webhook is not given GME credentials
    created = load_event("room-created.json")
    answer = webhook.handler(stack.room_event_request(created), stack.context("webhook"))
    assert answer["statusCode"] == 202, answer
    assert json.loads(answer["body"])["status"] == "queued"
    # A GME callback is acknowledged without GME credentials or a store.
    ack = webhook.handler(gme_callback(load_event("gme-recording-started.json")), stack.context())
    assert ack["statusCode"] == 200, ack
    assert stack.starts() == 0

    got = aws["sqs"].receive_message(
        QueueUrl=aws["queue_url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    messages = got["Messages"]
    assert len(messages) == 1

    configure(monkeypatch, aws, stack, "worker")
    event = as_sqs_event(messages)
    assert worker.handler(event, stack.context("worker")) == {"batchItemFailures": []}
    assert worker.handler(event, stack.context("worker")) == {"batchItemFailures": []}  # again
    assert len(stack.emulator.tasks(room_id=created["room_id"])) == 1
    assert stack.starts() == 1
    # The start went out on the stack's bus, once (the redelivery changed nothing).
    seen = aws["sqs"].receive_message(QueueUrl=aws["seen_url"], MaxNumberOfMessages=10)
    [started] = [json.loads(m["Body"]) for m in seen["Messages"]]
    assert (started["source"], started["detail-type"]) == ("gme-autorecord", "recording.started")
    assert started["detail"]["task_id"] == str(stack.emulator.tasks()[0].task_id)
    items = aws["dynamodb"].scan(TableName="gme-autorecord-dev-idempotency")["Items"]
    # (The rate limiter's slot items share the table; they have no status.)
    by_prefix = sorted(
        (i["id"]["S"].split("#")[0], i["status"]["S"]) for i in items if "status" in i
    )
    # One record for the webhook's once-per-event enqueue, one for the room session's start.
    assert by_prefix == [
        ("gme-autorecord.ensure-recording", "COMPLETED"),
        ("gme-autorecord.webhook-enqueue", "COMPLETED"),
    ]
