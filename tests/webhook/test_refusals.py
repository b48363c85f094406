"""Each refusal of the webhook, through the real Lambda entry: status, machine code, no GME call.

The emulator's call log is the proof that a refused request reached neither the policy nor GME.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.signatures import sign_trtc
from handler.tools.local import http_event
from tests.conftest import BIZ_ID, TRTC_KEY, WEBHOOK_SECRET, Stack, load_event
from tests.webhook.conftest import as_base64, call, gme_request


def trtc_raw(raw: bytes, app_id: str = str(BIZ_ID)) -> dict[str, Any]:
    headers = {"content-type": "application/json", "sign": sign_trtc(TRTC_KEY, raw)}
    if app_id:
        headers["sdkappid"] = app_id
    return http_event("POST", "/v1/trtc/room-callbacks", headers, raw)


def trtc_doc(**over: Any) -> dict[str, Any]:
    return {**load_event("trtc-room-created.json"), "CallbackTs": int(time.time() * 1000), **over}


def refused(stack: Stack, request: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    got, body, _ = call(stack, request)
    assert (got, body["code"]) == (status, code), body
    assert body["message"]
    assert stack.emulator.calls() == []
    return body


def test_trtc_body_naming_another_app_is_refused(stack: Stack) -> None:
    raw = json.dumps(trtc_doc(SdkAppId=1400000999)).encode()
    refused(stack, trtc_raw(raw), 401, "sdk_app_id_mismatch")
    info = {**trtc_doc()["EventInfo"], "SdkAppId": 1400000999}
    refused(
        stack, trtc_raw(json.dumps(trtc_doc(EventInfo=info)).encode()), 401, "sdk_app_id_mismatch"
    )


def test_trtc_body_naming_the_same_app_is_accepted(stack: Stack) -> None:
    raw = json.dumps(trtc_doc(SdkAppId=BIZ_ID)).encode()
    status, body, _ = call(stack, trtc_raw(raw))
    assert (status, body["status"]) == (200, "started")


@pytest.mark.parametrize("stamp", ["1795467600123", 1.5e12 + 0.5, None, True, 10**400])
def test_trtc_callback_ts_that_is_not_a_sane_integer_is_refused(stack: Stack, stamp: Any) -> None:
    doc = trtc_doc(CallbackTs=stamp)
    if stamp is None:
        del doc["CallbackTs"]
    raw = json.dumps(doc).encode()
    refused(stack, trtc_raw(raw), 401, "bad_timestamp")


def test_replayed_trtc_callback_is_stale(stack: Stack) -> None:
    raw = json.dumps(trtc_doc(CallbackTs=int(time.time() * 1000) - 301_000)).encode()
    refused(stack, trtc_raw(raw), 401, "stale_timestamp")


def test_gme_callback_hex_and_base64_accepted_stale_and_missing_refused(stack: Stack) -> None:
    doc = load_event("gme-recording-started.json")
    for encoding in ("base64", "hex"):
        status, body, _ = call(stack, gme_request(doc, encoding=encoding))
        assert (status, body["status"]) == (200, "ignored")
    stale = json.dumps({**doc, "Timestamp": int(time.time()) - 400}).encode()
    refused(stack, gme_request(stale), 401, "stale_timestamp")
    missing = json.dumps({k: v for k, v in doc.items() if k != "Timestamp"}).encode()
    refused(stack, gme_request(missing), 401, "bad_timestamp")


def test_base64_flagged_body_is_decoded_before_the_signature_check(stack: Stack) -> None:
    request = as_base64(stack.room_event_request(load_event("room-created.json")))
    status, body, _ = call(stack, request)
    assert (status, body["status"]) == (200, "started")


def test_body_flagged_base64_that_is_not(stack: Stack) -> None:
    request = {**stack.room_event_request(load_event("room-created.json")), "isBase64Encoded": True}
    refused(stack, request, 400, "invalid_base64")


def test_huge_base64_body_is_refused_before_decoding(stack: Stack) -> None:
    request = stack.room_event_request(load_event("room-created.json"))
    request = {**request, "body": "A" * 200_000, "isBase64Encoded": True}
    refused(stack, request, 413, "body_too_large")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"[" * 33 + b"]" * 33, "json_too_deep"),
        (b"[" * 50_000, "json_too_deep"),
        (json.dumps({f"k{i}": i for i in range(3000)}).encode(), "json_too_many_members"),
        (b'{"type": "room.created", "type": "room.closed"}', "invalid_json"),
        (b'{"biz_id": NaN}', "invalid_json"),
        (b'{"room_id": "\\ud800"}', "invalid_json"),
        (b'{"room_id": "\xff"}', "invalid_json"),
        ('{"a": 1}'.encode("utf-16"), "invalid_json"),
        (b'{"biz_id": ' + b"9" * 5000 + b"}", "invalid_json"),
    ],
    ids=["depth-33", "depth-50000", "3000-keys", "duplicate-key", "nan", "lone-surrogate",
         "not-utf8", "utf16", "huge-int"],
)  # fmt: skip
def test_hostile_json_is_refused_before_any_model_sees_it(
    stack: Stack, raw: bytes, code: str
) -> None:
    refused(stack, stack.room_event_request(raw), 400, code)


def test_depth_32_is_still_parsed(stack: Stack) -> None:
    attrs: Any = 1
    for _ in range(30):  # body 1 + attributes 2 + 30 lists = 32 levels
        attrs = [attrs]
    body = {**load_event("room-created.json"), "attributes": {"deep": attrs}}
    body_text = json.dumps(body).encode()
    refused(stack, stack.room_event_request(body_text), 422, "invalid_field")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attributes", {"note": "x" * 1025}),
        ("attributes", {f"k{i}": i for i in range(65)}),
        ("attributes", {"nested": {"a": 1}}),
        ("room_id", "r" * 128),
        ("room_id", "room 1"),
        ("biz_id", 0),
        ("biz_id", 2**63),
        ("biz_id", True),
        ("biz_id", 1400000000.5),
    ],
    ids=["long-attribute", "65-attributes", "nested-attribute", "room-id-128", "room-id-space",
         "biz-id-0", "biz-id-2^63", "biz-id-bool", "biz-id-float"],
)  # fmt: skip
def test_field_limits(stack: Stack, field: str, value: Any) -> None:
    body = {**load_event("room-created.json"), field: value}
    answer = refused(stack, stack.room_event_request(body), 422, "invalid_field")
    assert answer["field"].split(".")[0] == field


def test_non_ascii_signature_headers_are_refused_not_crashed(stack: Stack) -> None:
    doc = load_event("room-created.json")
    refused(
        stack,
        stack.room_event_request(doc, **{"webhook-signature": "v1,\u00e9\ud800"}),
        401,
        "bad_signature",
    )
    refused(stack, stack.room_event_request(doc, msg_id="id\u00e9"), 401, "bad_webhook_id")
    raw = json.dumps(trtc_doc()).encode()
    refused(stack, {**trtc_raw(raw), "headers": {**trtc_raw(raw)["headers"], "sign": "\u00e9"}},
            401, "bad_signature")  # fmt: skip


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_with_allow(stack: Stack, method: str) -> None:
    status, body, headers = call(stack, http_event(method, "/v1/room-events", {}, b""))
    assert (status, body["code"], headers["Allow"]) == (405, "method_not_allowed", "POST")
    status, body, headers = call(stack, http_event("POST", "/health", {}, b""))
    assert (status, headers["Allow"]) == (405, "GET")
    status, body, _ = call(stack, http_event(method, "/v1/nowhere", {}, b""))
    assert (status, body["code"]) == (404, "not_found")


def test_unconfigured_routes_fail_closed_and_are_named_at_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TRTC_CALLBACK_KEY")
    monkeypatch.delenv("GME_CALLBACK_KEY")
    app.reset()
    refused(stack, trtc_raw(json.dumps(trtc_doc()).encode()), 401, "not_configured")
    refused(stack, gme_request(load_event("gme-recording-started.json")), 401, "not_configured")
    warnings = [r for r in caplog.records if "fail closed" in r.getMessage()]
    assert len(warnings) == 1  # once per configuration, not per request
    assert warnings[0].levelname == "WARNING"
    assert warnings[0].routes == {  # type: ignore[attr-defined]
        "/v1/trtc/room-callbacks": "TRTC_CALLBACK_KEY",
        "/v1/gme/recording-callbacks": "GME_CALLBACK_KEY",
    }
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "test-suite" not in logged  # no key value anywhere in the log
    assert WEBHOOK_SECRET not in logged


OTHER_APP = BIZ_ID + 1


def test_trtc_body_replayed_under_another_apps_header_is_refused_when_keys_are_bound(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(
        "TRTC_CALLBACK_KEY", f"{BIZ_ID}:{TRTC_KEY},{OTHER_APP}:test-suite-other-app-key"
    )
    app.reset()
    raw = json.dumps(trtc_doc()).encode()
    assert b"SdkAppId" not in raw  # the body names no app: only the key's binding can tell
    captured = trtc_raw(raw)  # genuinely signed by BIZ_ID's key, for BIZ_ID
    replayed = {**captured, "headers": {**captured["headers"], "sdkappid": f"0{OTHER_APP}"}}
    refused(stack, replayed, 401, "bad_signature")
    status, body, _ = call(stack, captured)  # the same request under its own app is recorded
    assert (status, body["status"], body["biz_id"]) == (200, "started", BIZ_ID)
    assert [c.biz_id for c in stack.emulator.calls("StartRecord")] == [BIZ_ID]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "webhook rejected" in logged
    assert "test-suite" not in logged  # no key value anywhere in the log
    assert not [r for r in caplog.records if "TRTC_CALLBACK_KEY" in r.getMessage()]


def test_a_trtc_key_serving_several_apps_is_named_at_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRTC_SDK_APP_ID", f"{BIZ_ID},{OTHER_APP}")  # one bare key, two apps
    app.reset()
    for _ in range(2):
        call(stack, trtc_raw(json.dumps(trtc_doc()).encode()))
    warnings = [r for r in caplog.records if "TRTC_CALLBACK_KEY" in r.getMessage()]
    assert len(warnings) == 1  # once per configuration, not per request
    assert warnings[0].levelname == "WARNING"
    assert warnings[0].setting == "TRTC_CALLBACK_KEY"  # type: ignore[attr-defined]
    assert "replayed" in warnings[0].getMessage()
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "test-suite" not in logged


def test_a_bare_trtc_key_verifies_only_the_deployments_app(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """The key as the TRTC console hands it out, with the app named in TRTC_SDK_APP_ID (the
    stack's configuration): a captured body replayed under another app's header is refused."""
    raw = json.dumps(trtc_doc()).encode()
    captured = trtc_raw(raw)
    for other in (str(OTHER_APP), "1", f"{BIZ_ID}0"):
        replayed = {**captured, "headers": {**captured["headers"], "sdkappid": other}}
        refused(stack, replayed, 401, "bad_signature")
    headers = {k: v for k, v in captured["headers"].items() if k != "sdkappid"}
    refused(stack, {**captured, "headers": headers}, 401, "missing_app_id")
    status, body, _ = call(stack, captured)
    assert (status, body["biz_id"]) == (200, BIZ_ID)
    assert not [r for r in caplog.records if "TRTC_CALLBACK_KEY" in r.getMessage()]


def test_a_bare_trtc_key_without_the_deployments_app_is_refused_at_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TRTC_SDK_APP_ID")
    app.reset()
    for request in (trtc_raw(json.dumps(trtc_doc()).encode()),
                    stack.room_event_request(load_event("room-created.json"))):  # fmt: skip
        status, body, headers = call(stack, request)
        assert (status, body["code"], headers["Retry-After"]) == (503, "misconfigured", "5")
    assert stack.emulator.calls() == []
    errors = [r for r in caplog.records if r.getMessage() == "configuration error"]
    text = errors[0].error  # type: ignore[attr-defined]
    assert "TRTC_CALLBACK_KEY" in text
    assert "SDKAPPID:key" in text
    assert "TRTC_SDK_APP_ID" in text
    assert TRTC_KEY not in text


def test_error_bodies_never_echo_a_key(stack: Stack) -> None:
    doc = load_event("room-created.json")
    for request in (
        stack.room_event_request(doc, **{"webhook-signature": "v1,forged"}),
        stack.room_event_request(doc, timestamp=str(int(time.time()) - 1000)),
    ):
        _, body, _ = call(stack, request)
        assert "test-suite" not in json.dumps(body)
        assert base64.b64encode(b"test-suite-webhook-key").decode() not in json.dumps(body)


def test_signing_headers_api_gateway_joined_from_repeats_are_400(stack: Stack) -> None:
    """API Gateway joins a repeated header with commas: the webhook refuses that join in every
    signing header, even when each repeat alone is a valid signature."""
    doc = load_event("room-created.json")
    one = stack.room_event_request(doc)
    sig = one["headers"]["webhook-signature"]
    for name, value in [
        ("webhook-signature", f"{sig},{sig}"),
        ("webhook-signature", f"{sig} {sig},{sig}"),
        ("webhook-id", f"{one['headers']['webhook-id']},other"),
        ("webhook-timestamp", f"{one['headers']['webhook-timestamp']},1"),
    ]:
        request = {**one, "headers": {**one["headers"], name: value}}
        assert refused(stack, request, 400, "duplicate_header")["field"] == name
    raw = json.dumps(trtc_doc()).encode()
    trtc = trtc_raw(raw)
    for name in ("sign", "sdkappid"):
        value = trtc["headers"][name]
        request = {**trtc, "headers": {**trtc["headers"], name: f"{value},{value}"}}
        assert refused(stack, request, 400, "duplicate_header")["field"] == name
    gme = gme_request({**load_event("gme-recording-started.json")})
    sig = gme["headers"]["signature"]
    request = {**gme, "headers": {**gme["headers"], "signature": f"{sig},{sig}"}}
    assert refused(stack, request, 400, "duplicate_header")["field"] == "signature"


def test_one_header_with_two_rotation_signatures_is_still_accepted(stack: Stack) -> None:
    doc = load_event("room-created.json")
    one = stack.room_event_request(doc)
    sig = one["headers"]["webhook-signature"]
    request = {**one, "headers": {**one["headers"], "webhook-signature": f"v1,b2xk {sig}"}}
    status, body, _ = call(stack, request)
    assert (status, body["status"]) == (200, "started")
