"""Publish verified, normalised room events to the worker queue (SQS)."""

from __future__ import annotations

from typing import Any

from handler.domain.events import RoomEvent


class QueueUnavailable(Exception):
    """The event could not be enqueued; the sender must retry (HTTP 503), never a silent drop."""


class SqsPublisher:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        if client is None:
            import boto3  # imported here: only the deployed webhook in queue mode needs it

            client = boto3.client("sqs")
        self._client = client
        self._queue_url = queue_url

    def publish(self, event: RoomEvent) -> str:
        try:
            resp = self._client.send_message(
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
