"""Fixtures for the webhook suites: a stack in queue mode pointed at a fresh queue on the
session's real moto_server (tests/servers.py), and builders for GME callback requests and raw
API Gateway events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from handler.bootstrap import app
from handler.entrypoints import webhook
from handler.tools.local import http_event
from tests.conftest import GME_KEY, Stack
from tests.servers import moto_env


@dataclass
class Queue:
    url: str
    client: Any

    def receive_all(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            got = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)
            for message in got:
                self.client.delete_message(
                    QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def queue(stack: Stack, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Queue:
    """The stack in queue mode: RECORD_QUEUE_URL names a fresh queue on the moto server."""
    import boto3

    moto_env(monkeypatch, moto_url, "sqs")
    client = boto3.client("sqs", endpoint_url=moto_url, region_name="eu-west-1")
    url = client.create_queue(QueueName=f"records-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    monkeypatch.setenv("RECORD_QUEUE_URL", url)
    app.reset()
    return Queue(url, client)


def gme_request(body: dict[str, Any] | bytes, *, encoding: str = "base64") -> dict[str, Any]:
    if isinstance(body, dict):
        body = json.dumps({**body, "Timestamp": int(time.time())}).encode()
    mac = hmac.new(GME_KEY.encode(), body, hashlib.sha1).digest()
    sig = base64.b64encode(mac).decode() if encoding == "base64" else mac.hex()
    headers = {"content-type": "application/json", "signature": sig}
    return http_event("POST", "/v1/gme/recording-callbacks", headers, body)


def call(stack: Stack, request: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    result = webhook.handler(request, stack.context("webhook"))
    return result["statusCode"], json.loads(result["body"]), result.get("headers") or {}


def as_base64(request: dict[str, Any]) -> dict[str, Any]:
    """The same request as API Gateway sends a body it treats as binary."""
    raw = request["body"].encode()
    return {**request, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
