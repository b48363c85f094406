"""Webhook ingestion end to end in one process: bound, authenticate, parse; every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from handler.bootstrap.config import Settings
from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.inbound import IgnoredEvent
from handler.domain.signatures import sign_standard_webhook, sign_trtc, standard_webhook_key
from handler.ingress.ingest import Rejected, Route, ingest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
INVALID = EVENTS / "invalid"

NOW = 1_795_467_600.0  # 2026-11-23T21:00:00Z, the time of the sample events
WHSEC = "whsec_" + base64.b64encode(b"unit-test-webhook-key").decode()
TRTC_KEY = "unit-test-trtc-key"
GME_KEY = "unit-test-gme-key"
APP_ID = "1400000000"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_env(
        {
            "WEBHOOK_SECRETS": f"whsec_{base64.b64encode(b'older-key').decode()},{WHSEC}",
            "TRTC_CALLBACK_KEY": TRTC_KEY,
            "TRTC_SDK_APP_ID": APP_ID,
            "GME_CALLBACK_KEY": GME_KEY,
            "MAX_BODY_BYTES": "4096",
        }
    )


def room_event_headers(body: bytes, stamp: int = int(NOW), msg_id: str = "msg-1") -> dict[str, str]:
    key = standard_webhook_key(WHSEC)
    return {
        "Content-Type": "application/json",
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(stamp),
        "Webhook-Signature": sign_standard_webhook(key, msg_id, stamp, body),
    }


def trtc_headers(body: bytes, app_id: str | None = APP_ID) -> dict[str, str]:
    out = {"content-type": "application/json", "Sign": sign_trtc(TRTC_KEY, body)}
    if app_id is not None:
        out["SdkAppId"] = app_id
    return out


def gme_headers(body: bytes, hex_form: bool = False) -> dict[str, str]:
    mac = hmac.new(GME_KEY.encode(), body, hashlib.sha1).digest()
    signature = mac.hex() if hex_form else base64.b64encode(mac).decode()
    return {"content-type": "application/json", "signature": signature}


def sample(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def trtc_body(event_type: int = 101, callback_ms: int = int(NOW * 1000)) -> bytes:
    doc = json.loads(sample("trtc-room-created.json"))
    doc["EventType"] = event_type
    doc["CallbackTs"] = callback_ms
    return json.dumps(doc).encode()


def refused(route: Route, headers: dict[str, str], body: bytes, settings: Settings) -> Rejected:
    with pytest.raises(Rejected) as info:
        ingest(route, headers, body, settings, now=NOW)
    return info.value


# --- happy paths ---------------------------------------------------------------------------


def test_room_event_route_happy_path(settings: Settings) -> None:
    body = sample("room-created.json")
    event = ingest(Route.ROOM_EVENTS, room_event_headers(body), body, settings, now=NOW)
    assert isinstance(event, RoomEvent)
    assert (event.room_id, event.session, event.source) == (
        "ranked-eu-1042",
        "match-7f3a",
        EventSource.WEBHOOK,
    )


def test_room_event_signed_with_the_older_key_is_accepted(settings: Settings) -> None:
    body = sample("room-closed.json")
    headers = room_event_headers(body)
    headers["Webhook-Signature"] = sign_standard_webhook(b"older-key", "msg-1", int(NOW), body)
    event = ingest(Route.ROOM_EVENTS, headers, body, settings, now=NOW)
    assert isinstance(event, RoomEvent)
    assert event.kind is EventKind.ROOM_CLOSED


def test_sample_http_event_verifies_once_re_signed(settings: Settings) -> None:
    http = json.loads(sample("http-room-created.json"))
    body = http["body"].encode()
    now = http["requestContext"]["timeEpoch"] / 1000
    with pytest.raises(Rejected) as info:  # the sample carries a placeholder signature
        ingest(Route(http["rawPath"]), http["headers"], body, settings, now=now)
    assert (info.value.status, info.value.code) == (401, "bad_signature")
    headers = {**http["headers"]}
    stamp = int(headers["webhook-timestamp"])
    headers["webhook-signature"] = sign_standard_webhook(
        standard_webhook_key(WHSEC), headers["webhook-id"], stamp, body
    )
    event = ingest(Route(http["rawPath"]), headers, body, settings, now=now)
    assert isinstance(event, RoomEvent)
    assert event.event_id == headers["webhook-id"]


def test_sample_http_trtc_event_verifies_once_re_signed(settings: Settings) -> None:
    http = json.loads(sample("http-trtc-room-created.json"))
    body = http["body"].encode()
    now = http["requestContext"]["timeEpoch"] / 1000
    headers = {**http["headers"], "sign": sign_trtc(TRTC_KEY, body)}
    event = ingest(Route(http["rawPath"]), headers, body, settings, now=now)
    assert isinstance(event, RoomEvent)
    assert (event.biz_id, event.room_id, event.format) == (
        int(APP_ID),
        "support-1001",
        InboundFormat.TRTC,
    )


def test_trtc_route_happy_path(settings: Settings) -> None:
    body = trtc_body()
    event = ingest(Route.TRTC, trtc_headers(body), body, settings, now=NOW)
    assert isinstance(event, RoomEvent)
    assert event.biz_id == int(APP_ID)
    assert event.source is EventSource.WEBHOOK
    assert event.kind is EventKind.ROOM_CREATED


def test_trtc_route_ignores_other_event_types(settings: Settings) -> None:
    body = trtc_body(event_type=103)
    assert isinstance(ingest(Route.TRTC, trtc_headers(body), body, settings, now=NOW), IgnoredEvent)


@pytest.mark.parametrize("hex_form", [False, True], ids=["base64", "hex"])
def test_gme_callback_route_happy_path(settings: Settings, hex_form: bool) -> None:
    doc = json.loads(sample("gme-recording-started.json"))
    doc["Timestamp"] = int(NOW)
    body = json.dumps(doc).encode()
    event = ingest(Route.GME_CALLBACK, gme_headers(body, hex_form), body, settings, now=NOW)
    assert isinstance(event, IgnoredEvent)
    assert event.format is InboundFormat.GME_RECORDING


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_content_types_are_accepted(settings: Settings, content_type: str) -> None:
    body = sample("room-created.json")
    headers = {**room_event_headers(body), "Content-Type": content_type}
    assert isinstance(ingest(Route.ROOM_EVENTS, headers, body, settings, now=NOW), RoomEvent)


# --- bounds --------------------------------------------------------------------------------


def test_body_over_max_bytes_is_413_before_anything_else(settings: Settings) -> None:
    exc = refused(Route.ROOM_EVENTS, {}, b"x" * 4097, settings)
    assert (exc.status, exc.code) == (413, "body_too_large")
    assert exc.body() == {"code": "body_too_large", "message": exc.message}


def test_body_at_max_bytes_is_not_413(settings: Settings) -> None:
    exc = refused(Route.ROOM_EVENTS, {"content-type": "application/json"}, b" " * 4096, settings)
    assert exc.status != 413


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}],
)
def test_wrong_content_type_is_415(settings: Settings, headers: dict[str, str]) -> None:
    body = sample("room-created.json")
    signed = {k: v for k, v in room_event_headers(body).items() if k != "Content-Type"}
    exc = refused(Route.ROOM_EVENTS, {**signed, **headers}, body, settings)
    assert (exc.status, exc.code) == (415, "unsupported_media_type")


# --- authentication ------------------------------------------------------------------------


def test_room_event_unsigned_is_401_missing_signature(settings: Settings) -> None:
    body = sample("room-created.json")
    exc = refused(Route.ROOM_EVENTS, {"content-type": "application/json"}, body, settings)
    assert (exc.status, exc.code) == (401, "missing_signature")


def test_room_event_tampered_is_401_bad_signature(settings: Settings) -> None:
    body = sample("room-created.json")
    headers = room_event_headers(body)
    exc = refused(Route.ROOM_EVENTS, headers, body.replace(b"ranked-eu", b"ranked-us"), settings)
    assert (exc.status, exc.code) == (401, "bad_signature")


@pytest.mark.parametrize("skew", [-301, 301, 3600])
def test_room_event_stale_is_401_stale_timestamp(settings: Settings, skew: int) -> None:
    body = sample("room-created.json")
    exc = refused(
        Route.ROOM_EVENTS, room_event_headers(body, stamp=int(NOW) + skew), body, settings
    )
    assert (exc.status, exc.code) == (401, "stale_timestamp")


def test_room_event_bad_timestamp_is_401(settings: Settings) -> None:
    body = sample("room-created.json")
    headers = {**room_event_headers(body), "Webhook-Timestamp": "yesterday"}
    assert refused(Route.ROOM_EVENTS, headers, body, settings).code == "bad_timestamp"


@pytest.mark.parametrize("route", list(Route))
def test_route_without_keys_is_401_not_configured(route: Route) -> None:
    bare = Settings.from_env({})
    body = sample("room-created.json")
    headers = {**room_event_headers(body), **trtc_headers(body), **gme_headers(body)}
    exc = refused(route, headers, body, bare)
    assert (exc.status, exc.code) == (401, "not_configured")


def test_trtc_wrong_sign_is_401(settings: Settings) -> None:
    body = trtc_body()
    headers = {**trtc_headers(body), "Sign": sign_trtc("other-key", body)}
    exc = refused(Route.TRTC, headers, body, settings)
    assert (exc.status, exc.code) == (401, "bad_signature")


@pytest.mark.parametrize("skew_ms", [-301_000, 301_000, -86_400_000])
def test_trtc_stale_callback_ts_is_401_stale_timestamp(settings: Settings, skew_ms: int) -> None:
    body = trtc_body(callback_ms=int(NOW * 1000) + skew_ms)
    exc = refused(Route.TRTC, trtc_headers(body), body, settings)
    assert (exc.status, exc.code) == (401, "stale_timestamp")


def test_trtc_callback_ts_within_tolerance_is_accepted(settings: Settings) -> None:
    body = trtc_body(callback_ms=int(NOW * 1000) - 299_000)
    assert isinstance(ingest(Route.TRTC, trtc_headers(body), body, settings, now=NOW), RoomEvent)


def test_gme_callback_stale_timestamp_is_401(settings: Settings) -> None:
    doc = json.loads(sample("gme-recording-started.json"))
    doc["Timestamp"] = int(NOW) - 3600
    body = json.dumps(doc).encode()
    exc = refused(Route.GME_CALLBACK, gme_headers(body), body, settings)
    assert (exc.status, exc.code) == (401, "stale_timestamp")


def test_gme_callback_with_trtc_key_signature_is_401(settings: Settings) -> None:
    body = sample("gme-recording-started.json")
    headers = {"content-type": "application/json", "signature": sign_trtc(TRTC_KEY, body)}
    assert refused(Route.GME_CALLBACK, headers, body, settings).code == "bad_signature"


def test_rejections_never_echo_keys(settings: Settings) -> None:
    body = trtc_body()
    exc = refused(Route.TRTC, {**trtc_headers(body), "Sign": "nope"}, body, settings)
    text = json.dumps(exc.body())
    for key in (TRTC_KEY, GME_KEY, WHSEC):
        assert key not in text


# --- TRTC keys bound to their app ----------------------------------------------------------

KEY_A, KEY_B, SHARED = "key-of-app-1400000000", "key-of-app-1400000001", "shared-trtc-key"


def bound_settings(value: str, apps: str = "") -> Settings:
    return Settings.from_env({"TRTC_CALLBACK_KEY": value, "TRTC_SDK_APP_ID": apps})


def signed_by(key: str, body: bytes, app_id: str) -> dict[str, str]:
    return {"content-type": "application/json", "Sign": sign_trtc(key, body), "SdkAppId": app_id}


def test_bound_key_accepts_its_own_app_compared_as_numbers() -> None:
    settings = bound_settings(f"1400000000:{KEY_A},1400000001:{KEY_B}")
    body = trtc_body()
    for header in ("1400000000", "01400000000", " 1400000000 "):
        event = ingest(Route.TRTC, signed_by(KEY_A, body, header), body, settings, now=NOW)
        assert isinstance(event, RoomEvent)
        assert event.biz_id == 1400000000


def test_captured_body_replayed_under_another_apps_header_is_401_bad_signature() -> None:
    settings = bound_settings(f"1400000000:{KEY_A},1400000001:{KEY_B}")
    body = trtc_body()  # names no app: only the key binding can tell the replay apart
    assert b"SdkAppId" not in body
    exc = refused(Route.TRTC, signed_by(KEY_A, body, "1400000001"), body, settings)
    assert (exc.status, exc.code) == (401, "bad_signature")
    assert KEY_A not in json.dumps(exc.body())


def test_request_without_sdk_app_id_is_401_when_every_key_is_bound() -> None:
    body = trtc_body()
    headers = {"content-type": "application/json", "Sign": sign_trtc(KEY_A, body)}
    exc = refused(Route.TRTC, headers, body, bound_settings(f"1400000000:{KEY_A}"))
    assert (exc.status, exc.code) == (401, "missing_app_id")


def test_bare_key_verifies_only_the_apps_the_deployment_names() -> None:
    settings = bound_settings(f"1400000000:{KEY_A},{SHARED}", apps="1400000001,1400000002")
    body = trtc_body()
    for header in ("1400000001", "1400000002"):
        event = ingest(Route.TRTC, signed_by(SHARED, body, header), body, settings, now=NOW)
        assert isinstance(event, RoomEvent)
        assert event.biz_id == int(header)
    for key, header in ((SHARED, "1400000000"), (SHARED, "1400000003"), (KEY_A, "1400000001")):
        exc = refused(Route.TRTC, signed_by(key, body, header), body, settings)
        assert (exc.status, exc.code) == (401, "bad_signature")


# --- parsing refusals ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in INVALID.iterdir() if p.suffix == ".json"))
def test_invalid_room_event_is_422_with_field(settings: Settings, name: str) -> None:
    body = (INVALID / name).read_bytes()
    exc = refused(Route.ROOM_EVENTS, room_event_headers(body), body, settings)
    assert (exc.status, exc.code) == (422, "invalid_field")
    assert exc.field
    assert exc.body()["field"] == exc.field


def test_invalid_json_is_400(settings: Settings) -> None:
    body = (INVALID / "not-json.txt").read_bytes()
    exc = refused(Route.ROOM_EVENTS, room_event_headers(body), body, settings)
    assert (exc.status, exc.code) == (400, "invalid_json")
    assert "field" not in exc.body()


def test_non_object_json_is_422_invalid_body(settings: Settings) -> None:
    body = b"[1, 2, 3]"
    exc = refused(Route.ROOM_EVENTS, room_event_headers(body), body, settings)
    assert (exc.status, exc.code) == (422, "invalid_body")


def test_trtc_room_event_on_the_room_events_route_is_422(settings: Settings) -> None:
    body = trtc_body()
    exc = refused(Route.ROOM_EVENTS, room_event_headers(body), body, settings)
    assert exc.status == 422


def test_trtc_without_sdk_app_id_is_401_missing_app_id(settings: Settings) -> None:
    body = trtc_body()
    for app_id in (None, "", "  "):
        exc = refused(Route.TRTC, trtc_headers(body, app_id=app_id), body, settings)
        assert (exc.status, exc.code) == (401, "missing_app_id")


def test_trtc_invalid_json_is_400(settings: Settings) -> None:
    body = b"{nope"
    exc = refused(Route.TRTC, trtc_headers(body), body, settings)
    assert (exc.status, exc.code) == (400, "invalid_json")


# --- robustness ----------------------------------------------------------------------------


def test_trtc_huge_callback_ts_is_rejected_not_crashing(settings: Settings) -> None:
    doc = json.loads(trtc_body())
    doc["CallbackTs"] = 10**400
    body = json.dumps(doc).encode()
    exc = refused(Route.TRTC, trtc_headers(body), body, settings)
    assert exc.status in (401, 422)


def test_gme_callback_huge_timestamp_is_rejected_not_crashing(settings: Settings) -> None:
    doc: dict[str, Any] = json.loads(sample("gme-recording-started.json"))
    doc["Timestamp"] = 10**400
    body = json.dumps(doc).encode()
    exc = refused(Route.GME_CALLBACK, gme_headers(body), body, settings)
    assert exc.status in (401, 422)


@pytest.mark.parametrize(
    ("value", "replayable"),
    [
        ("1400000001:key-a", False),
        ("1400000001:key-a,1400000002:key-b", False),  # one key per app: the safe form
        ("key-a", False),  # a bare key for the one app TRTC_SDK_APP_ID names
        ("1400000001:key-a,key-b", False),  # a bare key beside a bound one, each one app
        ("1400000001:shared-key,1400000002:shared-key", True),  # one key, two apps
        ("1400000001:key-a,1400000001:key-b", False),  # a rotation within one app
        ("1400000001:key-a,1400000003:key-a", True),  # one key, written bound to two apps
    ],
)
def test_keys_that_leave_a_cross_app_replay_open_are_named(value: str, replayable: bool) -> None:
    from handler.ingress.ingest import trtc_keys_shared_across_apps

    settings = Settings.from_env({"TRTC_CALLBACK_KEY": value, "TRTC_SDK_APP_ID": "1400000009"})
    assert trtc_keys_shared_across_apps(settings) is replayable


def test_a_bare_key_for_two_named_apps_is_named() -> None:
    from handler.ingress.ingest import trtc_keys_shared_across_apps

    settings = Settings.from_env({"TRTC_CALLBACK_KEY": "key-a", "TRTC_SDK_APP_ID": "1,2"})
    assert trtc_keys_shared_across_apps(settings)
