"""`python -m handler explain`: what the policy would decide for an event, touching nothing.

Reads an event file in any shape the project accepts — a room event v1, a TRTC or GME callback
body, an SNS/EventBridge wrapper, an SQS event (`Records`, every message explained) or an HTTP
API event (its body, routed by path) — or JSON on stdin (`-`). Signatures are not checked (this
is a dry run on a file the user already has), and no GME call or store access happens.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from typing import Any

from handler.domain.events import EventKind, EventSource, RoomEvent
from handler.domain.inbound import (
    IgnoredEvent,
    InvalidEvent,
    parse_json,
    parse_message,
    parse_room_event_v1,
    parse_trtc,
)
from handler.domain.policy import InMemoryActiveRecordings, Policy, explain

Parsed = RoomEvent | IgnoredEvent | InvalidEvent


def read_document(path: str) -> Any:
    """The JSON in a file, or on stdin for `-`; raises InvalidEvent with the reason."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()  # noqa: SIM115
    except OSError as exc:
        raise InvalidEvent("unreadable", f"{path}: {exc.strerror}") from None
    return parse_json(raw)


def events_in(
    doc: Any, source: EventSource | None, app_id: str | None = None
) -> list[tuple[str, Parsed]]:
    """Every room event a document holds, labelled; a bad message is kept as its error. A TRTC
    body names no app in itself (its sender's header or message attribute does): where the
    document carries none, `app_id` is used (`--app-id`)."""
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return [
            (f"message {r.get('messageId', i)}", _guard(lambda r=r: _sqs(r, app_id), source))
            for i, r in enumerate(doc["Records"])
        ]
    if isinstance(doc, dict) and doc.get("detail-type") == "Scheduled Event":
        tick = InvalidEvent("no_room_event", "a schedule tick carries no room event to decide")
        return [("schedule tick", tick)]
    if isinstance(doc, dict) and "requestContext" in doc and "body" in doc:
        return [(f"request {doc.get('rawPath', '')}", _guard(lambda: _http(doc, app_id), source))]
    return [("event", _guard(lambda: parse_message(doc, EventSource.WEBHOOK, app_id), source))]


def _guard(parse: Any, source: EventSource | None) -> Parsed:
    try:
        parsed: RoomEvent | IgnoredEvent = parse()
    except InvalidEvent as exc:
        return exc
    if isinstance(parsed, RoomEvent) and source is not None:
        return parsed.with_source(source)
    return parsed


def _sqs(record: dict[str, Any], fallback: str | None) -> RoomEvent | IgnoredEvent:
    attrs = record.get("messageAttributes") or {}
    app_id = (attrs.get("SdkAppId") or {}).get("stringValue") or fallback
    return parse_message(parse_json(record.get("body") or ""), EventSource.QUEUE, app_id)


def _http(event: dict[str, Any], fallback: str | None) -> RoomEvent | IgnoredEvent:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    path = str(event.get("rawPath") or "")
    doc = parse_json(raw)
    if path.endswith("/trtc/room-callbacks"):
        parsed = parse_trtc(doc, headers.get("sdkappid") or fallback)
    elif path.endswith("/room-events"):
        parsed = parse_room_event_v1(doc)
    else:
        parsed = parse_message(doc, EventSource.WEBHOOK)
    return parsed.with_source(EventSource.WEBHOOK) if isinstance(parsed, RoomEvent) else parsed


def parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--now {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise ValueError(f"--now {text!r} needs a timezone (e.g. Z or +01:00)")
    return value


def parse_active(items: list[str]) -> InMemoryActiveRecordings | None:
    if not items:
        return None
    counts: dict[str, int] = {}
    for item in items:
        rule, sep, number = item.rpartition("=")
        if not sep or not rule or not number.isdigit():
            raise ValueError(f"--active {item!r} is not RULE=COUNT")
        counts[rule] = int(number)
    return InMemoryActiveRecordings(counts)


def report(
    events: list[tuple[str, Parsed]],
    policy: Policy,
    now: datetime | None,
    active: InMemoryActiveRecordings | None,
    as_json: bool,
) -> tuple[str, bool]:
    """The printed report, and whether every message could be explained."""
    blocks: list[str] = []
    items: list[dict[str, Any]] = []
    ok = True
    for label, parsed in events:
        if isinstance(parsed, InvalidEvent):
            ok = False
            blocks.append(f"{label}: invalid: {parsed.code}: {parsed.message}")
            items.append({"label": label, "invalid": parsed.as_dict()})
        elif isinstance(parsed, IgnoredEvent):
            blocks.append(f"{label}: ignored: {parsed.reason}")
            items.append({"label": label, "ignored": parsed.reason})
        elif parsed.kind is EventKind.ROOM_CLOSED:
            why = "room.closed stops the room's running task; the policy is not consulted"
            blocks.append(f"{label}: {why}")
            items.append({"label": label, "closed": why, "event": parsed.log_keys()})
        else:
            result = explain(parsed, policy, now=now, active=active)
            blocks.append(f"{label}:\n{result.text()}")
            items.append({"label": label, **result.as_dict()})
    if as_json:
        return json.dumps(items if len(items) != 1 else items[0], indent=2), ok
    return "\n\n".join(blocks), ok
