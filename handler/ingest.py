"""Webhook ingestion: authenticate the raw request, bound it, and parse it into a room event.

Kept apart from the HTTP framework so the local server, the Lambda entry and the tests share
one implementation; every refusal is a `Rejected` with an HTTP status and a machine code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum

from pydantic import SecretStr

from handler.config import Settings
from handler.domain.events import EventSource, RoomEvent
from handler.domain.inbound import (
    IgnoredEvent,
    InvalidEvent,
    parse_json,
    parse_message,
    parse_room_event_v1,
    parse_trtc,
)
from handler.domain.signatures import (
    SignatureRejected,
    check_fresh,
    verify_gme_callback,
    verify_standard_webhook,
    verify_trtc,
)


class Route(StrEnum):
    ROOM_EVENTS = "/v1/room-events"
    TRTC = "/v1/trtc/room-callbacks"
    GME_CALLBACK = "/v1/gme/recording-callbacks"


class Rejected(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


def ingest(
    route: Route,
    headers: Mapping[str, str],
    body: bytes,
    settings: Settings,
    now: float | None = None,
) -> RoomEvent | IgnoredEvent:
    """Authenticate, bound and parse one webhook request. Raises `Rejected`."""
    now = time.time() if now is None else now
    headers = {k.lower(): v for k, v in headers.items()}
    if len(body) > settings.max_body_bytes:
        raise Rejected(413, "body_too_large", f"body exceeds {settings.max_body_bytes} bytes")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Rejected(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        return _authenticated_parse(route, headers, body, settings, now)
    except SignatureRejected as exc:
        raise Rejected(401, exc.code, exc.message) from None
    except InvalidEvent as exc:
        raise Rejected(
            400 if exc.code == "invalid_json" else 422, exc.code, exc.message, exc.field
        ) from None


def _authenticated_parse(
    route: Route, headers: dict[str, str], body: bytes, settings: Settings, now: float
) -> RoomEvent | IgnoredEvent:
    if route is Route.ROOM_EVENTS:
        verify_standard_webhook(settings.webhook_keys(), headers, body, now)
        event = parse_room_event_v1(parse_json(body))
        return event.with_source(EventSource.WEBHOOK)
    if route is Route.TRTC:
        verify_trtc(_values(settings.trtc_callback_keys), headers.get("sign", ""), body)
        doc = parse_json(body)
        if isinstance(doc, dict) and "CallbackTs" in doc:
            check_fresh(_whole(doc["CallbackTs"], "CallbackTs") // 1000, now, "CallbackTs")
        parsed = parse_trtc(doc, headers.get("sdkappid"))
        return parsed.with_source(EventSource.WEBHOOK) if isinstance(parsed, RoomEvent) else parsed
    verify_gme_callback(_values(settings.gme_callback_keys), headers.get("signature", ""), body)
    doc = parse_json(body)
    if isinstance(doc, dict) and "Timestamp" in doc:
        check_fresh(_whole(doc["Timestamp"], "Timestamp"), now, "Timestamp")
    return parse_message(doc, EventSource.WEBHOOK)


def _whole(value: object, name: str) -> int:
    """Timestamps must be JSON integers; anything else cannot be checked for freshness."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SignatureRejected("bad_timestamp", f"{name} must be an integer")
    return value


def _values(secrets: list[SecretStr]) -> list[str]:
    return [s.get_secret_value() for s in secrets]
