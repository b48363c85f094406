"""Property-based proof (hypothesis) that no input makes the webhook misbehave.

`ingest()` either returns an event or raises `Rejected` with a documented 4xx; the Lambda entry
answers every request with a documented status, never 5xx, and never calls GME for a request it
refuses; nothing unsigned or badly signed is ever accepted.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.bootstrap.config import Settings
from handler.domain import safejson
from handler.domain.events import RoomEvent
from handler.domain.inbound import IgnoredEvent
from handler.domain.signatures import sign_standard_webhook, sign_trtc, standard_webhook_key
from handler.entrypoints import webhook
from handler.ingress.ingest import Rejected, Route, ingest
from handler.tools.local import LocalContext, http_event
from tests.conftest import BIZ_ID, GME_KEY, TRTC_KEY, WEBHOOK_SECRET, Stack, load_event
from tests.webhook.hostile import documented_statuses, gme_signature

SETTINGS = Settings(
    webhook_secrets=[WEBHOOK_SECRET],  # type: ignore[list-item]
    trtc_sdk_app_ids=[BIZ_ID],
    trtc_callback_keys=[TRTC_KEY],  # type: ignore[list-item]
    gme_callback_keys=[GME_KEY],  # type: ignore[list-item]
)
KEY = standard_webhook_key(WEBHOOK_SECRET)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(["[", "]{", '\\"', "a\\\\", '"}:,']),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=40,
)
hostile_text = st.text(alphabet=st.characters(codec=None), max_size=300)


def signed_headers(route: Route, body: bytes, now: int) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if route is Route.ROOM_EVENTS:
        headers.update({
            "webhook-id": "msg-1",
            "webhook-timestamp": str(now),
            "webhook-signature": sign_standard_webhook(KEY, "msg-1", now, body),
        })  # fmt: skip
    elif route is Route.TRTC:
        headers.update({"sign": sign_trtc(TRTC_KEY, body), "sdkappid": str(BIZ_ID)})
    else:
        headers["signature"] = gme_signature(body)
    return headers


def check_ingest(route: Route, headers: dict[str, str], body: bytes, now: float) -> Any:
    try:
        result: Any = ingest(route, headers, body, SETTINGS, now=now)
    except Rejected as exc:
        result = exc
    if isinstance(result, Rejected):
        assert 400 <= result.status < 500
        assert result.code
        assert result.message
    else:
        assert isinstance(result, RoomEvent | IgnoredEvent)
    return result


@FAST
@given(route=st.sampled_from(list(Route)), body=st.binary(max_size=2048))
def test_ingest_signed_arbitrary_bytes(route: Route, body: bytes) -> None:
    now = int(time.time())
    check_ingest(route, signed_headers(route, body, now), body, now)


@FAST
@given(route=st.sampled_from(list(Route)), doc=json_values)
def test_ingest_signed_arbitrary_json(route: Route, doc: Any) -> None:
    now = int(time.time())
    body = json.dumps(doc).encode()
    check_ingest(route, signed_headers(route, body, now), body, now)


@FAST
@given(
    field=st.sampled_from(["room_id", "id", "session", "biz_id", "time", "attributes", "type"]),
    value=json_values | hostile_text,
)
def test_ingest_signed_room_event_with_one_hostile_field(field: str, value: Any) -> None:
    now = int(time.time())
    body = json.dumps({**load_event("room-created.json"), field: value}).encode()
    result = check_ingest(
        Route.ROOM_EVENTS, signed_headers(Route.ROOM_EVENTS, body, now), body, now
    )
    if isinstance(result, RoomEvent):  # what gets through obeys GME's limits
        assert 0 < result.biz_id < 2**63
        assert 1 <= len(result.room_id) <= 127
        assert result.room_id.isascii()
        assert result.room_id.isprintable()


@FAST
@given(
    route=st.sampled_from(list(Route)),
    body=st.binary(max_size=512),
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "sign",
                         "sdkappid", "signature", "content-type"]),
        hostile_text,
    ),
)  # fmt: skip
def test_ingest_never_accepts_without_the_right_signature(
    route: Route, body: bytes, headers: dict[str, str]
) -> None:
    """Arbitrary headers (forged, truncated, unicode) never authenticate a request."""
    result = check_ingest(route, {"content-type": "application/json", **headers}, body, time.time())
    assert isinstance(result, Rejected)


@FAST
@given(skew=st.integers(min_value=301, max_value=10**9), sign=st.sampled_from([1, -1]))
def test_ingest_refuses_stale_timestamps(skew: int, sign: int) -> None:
    now = int(time.time())
    body = json.dumps(load_event("room-created.json")).encode()
    headers = signed_headers(Route.ROOM_EVENTS, body, now + sign * skew)
    result = check_ingest(Route.ROOM_EVENTS, headers, body, now)
    assert isinstance(result, Rejected)
    assert result.code == "stale_timestamp"


@FAST
@given(app_id=st.integers(min_value=1, max_value=2**63) | st.text(max_size=20))
def test_ingest_refuses_a_trtc_body_naming_another_app(app_id: Any) -> None:
    now = int(time.time())
    doc = {**load_event("trtc-room-created.json"), "CallbackTs": now * 1000, "SdkAppId": app_id}
    body = json.dumps(doc).encode()
    result = check_ingest(Route.TRTC, signed_headers(Route.TRTC, body, now), body, now)
    text = str(app_id).strip()
    if not (text.isascii() and text.isdigit() and int(text) == BIZ_ID):
        assert isinstance(result, Rejected)
        assert result.code == "sdk_app_id_mismatch"


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.sampled_from([*(r.value for r in Route), "/health", "/", "/v1", "/v1/room-events/x"]),
    body=st.binary(max_size=1024),
    headers=st.dictionaries(st.text(min_size=1, max_size=20), hostile_text, max_size=6),
    b64=st.booleans(),
)
def test_lambda_entry_answers_every_request_with_a_documented_status(
    stack: Stack, method: str, path: str, body: bytes, headers: dict[str, str], b64: bool
) -> None:
    event = http_event(method, path, headers, body)
    if b64 and not event["isBase64Encoded"]:
        event["isBase64Encoded"] = True  # a flag that lies: the body is not base64
    result = webhook.handler(event, LocalContext("webhook"))
    status = result["statusCode"]
    assert status in documented_statuses(path, method), (status, result["body"])
    answer = json.loads(result["body"])
    if status >= 400:
        assert answer["code"]
        assert answer["message"]
    assert stack.emulator.calls() == []


def _depth(doc: Any) -> int:
    if isinstance(doc, dict):
        return 1 + max(map(_depth, doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max(map(_depth, doc), default=0)
    return 0


def _members(doc: Any) -> int:
    if isinstance(doc, dict):
        return len(doc) + max(len(doc) - 1, 0) + sum(map(_members, doc.values()))
    if isinstance(doc, list):
        return max(len(doc) - 1, 0) + sum(map(_members, doc))
    return 0


@settings(max_examples=500, deadline=None)
@given(doc=json_values, ascii_only=st.booleans())
def test_structure_prescan_is_exact_on_valid_json(doc: Any, ascii_only: bool) -> None:
    """Brackets, commas and colons inside strings (escaped quotes too) never fool the pre-scan."""
    raw = json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert safejson.structure(raw) == (_depth(doc), _members(doc))
