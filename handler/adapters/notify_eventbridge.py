"""Recording events to an Amazon EventBridge bus: the AWS-native way to route them anywhere.

Each event is one entry: `Source` "gme-autorecord", `DetailType` the event's type
(`recording.started`, ...), `Detail` the event's JSON. EventBridge gives each entry an id of
its own on every put, so consumers deduplicate on `detail.id`. One attempt per call (botocore's
retries off, its timeouts the notification timeout); a partly failed put counts as failed.
"""

from __future__ import annotations

from typing import Any

from handler.adapters.notify_webhook import DeliveryFailed

SOURCE = "gme-autorecord"


class EventBridgeSink:
    name = "eventbridge"

    def __init__(self, bus: str, timeout: float, client: Any = None) -> None:
        self._bus = bus
        if client is None:
            import boto3  # lazily: only a stack that names a bus pays for it
            from botocore.config import Config

            config = Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            )
            client = boto3.client("events", config=config)
        self._client = client

    def send(self, event_id: str, event_type: str, body: str, timeout: float) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": event_type,
            "Detail": body,
            "EventBusName": self._bus,
        }
        try:
            answer = self._client.put_events(Entries=[entry])
        except Exception as exc:  # botocore's errors: network, throttling, access denied
            raise DeliveryFailed(type(exc).__name__) from None
        if answer.get("FailedEntryCount"):
            code = answer["Entries"][0].get("ErrorCode", "failed")
            raise DeliveryFailed(f"PutEvents: {code}")
