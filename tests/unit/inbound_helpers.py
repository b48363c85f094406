"""The sample events and builders of inbound documents (a room event v1, a TRTC callback), shared
by the inbound tests so each of them starts from the same samples in events/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[2] / "events"
APP_ID = 1400000000


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def sqs_bodies(name: str) -> list[tuple[Any, str | None]]:
    """(body, SdkAppId message attribute) for each record of a sample SQS event."""
    out = []
    for record in load(name)["Records"]:
        app_id = record.get("messageAttributes", {}).get("SdkAppId", {}).get("stringValue")
        out.append((record["body"], app_id))
    return out


def room_event_v1(**over: Any) -> dict[str, Any]:
    doc = load("room-created.json")
    doc.update(over)
    return doc


def trtc(event_type: int = 101, **info: Any) -> dict[str, Any]:
    return {
        "EventGroupId": 1,
        "EventType": event_type,
        "CallbackTs": 1795467600123,
        "EventInfo": {"RoomId": "support-1001", "EventMsTs": 1795467600120, **info},
    }
