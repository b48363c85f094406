"""Publish verified, normalised room events, and the scheduler's lifecycle commands, to the
worker queue (SQS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handler.domain.events import RoomEvent


class QueueUnavailable(Exception):
    """The event could not be enqueued; the sender must retry (HTTP 503), never a silent drop."""


#: A sender waits for our answer, so an unreachable queue must turn into a 503 fast: short
#: timeouts and one retry, not botocore's 60 s reads and legacy retry schedule.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 3
MAX_ATTEMPTS = 2


class SqsPublisher:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._client = client  # built on first publish: importing boto3 costs cold-start time
        self._queue_url = queue_url

    def _sqs(self) -> Any:
        if self._client is None:
            import boto3  # imported here: only the deployed webhook in queue mode needs it
            from botocore.config import Config

            self._client = boto3.client(
                "sqs",
                config=Config(
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                ),
            )
        return self._client

    def publish(self, event: RoomEvent) -> str:
        try:
            resp = self._sqs().send_message(
                QueueUrl=self._queue_url,
                MessageBody=event.model_dump_json(),
                MessageAttributes={
                    "event_id": {"DataType": "String", "StringValue": event.event_id},
                    "format": {"DataType": "String", "StringValue": event.format.value},
                },
            )
        except Exception as exc:  # botocore raises many types; all mean "not enqueued"
            raise QueueUnavailable(type(exc).__name__) from None
        return str(resp["MessageId"])

    def send_commands(self, commands: Sequence[tuple[str, str]]) -> int:
        """Send up to ten (kind, body) lifecycle commands in one SendMessageBatch; returns how
        many SQS did not accept (all of them when the call itself failed)."""
        entries = [
            {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": {
                    "lifecycle_command": {"DataType": "String", "StringValue": kind}
                },
            }
            for i, (kind, body) in enumerate(commands)
        ]
        try:
            resp = self._sqs().send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except Exception:  # botocore raises many types; all mean "not enqueued"
            return len(entries)
        return len(resp.get("Failed") or [])
