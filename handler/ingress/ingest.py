"""Webhook ingestion: authenticate the raw request, bound it, and parse it into a room event.

Kept apart from the HTTP framework so the local server, the Lambda entry and the tests share
one implementation; every refusal is a `Rejected` with an HTTP status and a machine code.
Order matters: cheap bounds first, then the signature over the raw bytes, and only then is the
body parsed, so an unauthenticated sender never gets the parser to work on its input.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import SecretStr

from handler.bootstrap.config import Settings
from handler.domain.events import EventSource, RoomEvent
from handler.domain.headers import repeated_header
from handler.domain.inbound import (
    JSON_CODES,
    IgnoredEvent,
    InvalidEvent,
    json_int,
    parse_json,
    parse_room_event_v1,
    parse_trtc,
)
from handler.domain.signatures import (
    SignatureRejected,
    app_key,
    check_fresh,
    verify_gme_callback,
    verify_standard_webhook,
    verify_trtc,
)


class Route(StrEnum):
    ROOM_EVENTS = "/v1/room-events"
    TRTC = "/v1/trtc/room-callbacks"
    GME_CALLBACK = "/v1/gme/recording-callbacks"


#: The signing headers each route reads; each must be sent once (`handler.domain.headers`).
SIGNING_HEADERS = {
    Route.ROOM_EVENTS: ("webhook-id", "webhook-timestamp", "webhook-signature"),
    Route.TRTC: ("sign", "sdkappid"),
    Route.GME_CALLBACK: ("signature",),
}

#: Which setting holds each route's keys (named in the start-up warning, never their values).
KEY_SETTINGS = {
    Route.ROOM_EVENTS: "WEBHOOK_SECRETS",
    Route.TRTC: "TRTC_CALLBACK_KEY",
    Route.GME_CALLBACK: "GME_CALLBACK_KEY",
}


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


def unconfigured_routes(settings: Settings) -> dict[Route, str]:
    """Routes that refuse everything because their key setting is empty, with that setting."""
    keys = {
        Route.ROOM_EVENTS: settings.webhook_secrets,
        Route.TRTC: settings.trtc_callback_keys,
        Route.GME_CALLBACK: settings.gme_callback_keys,
    }
    return {route: KEY_SETTINGS[route] for route, values in keys.items() if not values}


def trtc_keys_shared_across_apps(settings: Settings) -> bool:
    """Keys that let a body one app signed be replayed under another app's `SdkAppId` header:
    one key serving two apps (written bound to both, or bare with two apps in
    `TRTC_SDK_APP_ID`), so both accept what either signed."""
    apps_of: dict[str, set[int | None]] = {}
    for key in settings.trtc_keys():
        apps_of.setdefault(key.key, set()).add(key.sdk_app_id)
    return any(len(apps) > 1 for apps in apps_of.values())


def raw_body(body: str | None, is_base64_encoded: bool, limit: int) -> bytes:
    """The body exactly as the sender sent it (API Gateway base64-encodes binary bodies)."""
    text = body or ""
    if not is_base64_encoded:
        return text.encode("utf-8", "surrogatepass")
    if len(text) > (limit + 2) // 3 * 4 + 4:  # refuse before decoding a huge payload
        raise Rejected(413, "body_too_large", f"body exceeds {limit} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(400, "invalid_base64", "body is flagged base64 but is not") from None


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
    repeated = repeated_header(headers, SIGNING_HEADERS[route])
    if repeated:
        message = f"the {repeated} header must be sent once"
        raise Rejected(400, "duplicate_header", message, repeated)
    try:
        return _authenticated_parse(route, headers, body, settings, now)
    except SignatureRejected as exc:
        raise Rejected(401, exc.code, exc.message) from None
    except InvalidEvent as exc:
        status = 400 if exc.code in JSON_CODES else 422
        raise Rejected(status, exc.code, exc.message, exc.field) from None


def _authenticated_parse(
    route: Route, headers: dict[str, str], body: bytes, settings: Settings, now: float
) -> RoomEvent | IgnoredEvent:
    if route is Route.ROOM_EVENTS:
        verify_standard_webhook(settings.webhook_keys(), headers, body, now)
        event = parse_room_event_v1(parse_json(body))
        return event.with_source(EventSource.WEBHOOK)
    if route is Route.TRTC:
        app_id = headers.get("sdkappid")
        verify_trtc(settings.trtc_keys(), headers.get("sign", ""), body, app_id)
        doc = _object(parse_json(body))
        check_fresh(_timestamp(doc, "CallbackTs") / 1000, now, "CallbackTs")
        _check_app_id(doc, app_id)
        parsed = parse_trtc(doc, app_id)
        return parsed.with_source(EventSource.WEBHOOK) if isinstance(parsed, RoomEvent) else parsed
    verify_gme_callback(_values(settings.gme_callback_keys), headers.get("signature", ""), body)
    doc = _object(parse_json(body))
    check_fresh(_timestamp(doc, "Timestamp"), now, "Timestamp")
    # Loaded here: only this route parses GME callbacks. The route names the format, so a
    # body with other formats' fields too is still read as what it was signed as.
    from handler.domain.callbacks import parse_gme_callback

    return parse_gme_callback(doc)


def _object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidEvent("invalid_body", "the body must be a JSON object")
    return doc


def _timestamp(doc: dict[str, Any], field: str) -> int:
    """The freshness timestamp must be a JSON integer: anything else would skip the replay
    check (a string would later be coerced by the model), so it is an authentication failure."""
    value = json_int(doc.get(field))
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise SignatureRejected("bad_timestamp", f"{field} must be an integer timestamp")
    return value


def _check_app_id(doc: dict[str, Any], header: str | None) -> None:
    """A TRTC body that names its app must name the app of the `SdkAppId` header: one key
    may serve several apps, and the header alone decides which BizId is recorded."""
    info = doc.get("EventInfo")
    claimed = [doc.get("SdkAppId")]
    if isinstance(info, dict):
        claimed.append(info.get("SdkAppId"))
    for value in claimed:
        if value is not None and app_key(value) != app_key(header or ""):
            raise SignatureRejected("sdk_app_id_mismatch", "SdkAppId header does not match body")


def _values(secrets: list[SecretStr]) -> list[str]:
    return [s.get_secret_value() for s in secrets]
