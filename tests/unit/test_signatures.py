"""Webhook authentication: Standard Webhooks, TRTC `Sign`, GME callback `Signature`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest

from handler.domain.signatures import (
    SignatureRejected,
    TrtcCallbackKey,
    check_fresh,
    sign_standard_webhook,
    sign_trtc,
    standard_webhook_key,
    verify_gme_callback,
    verify_standard_webhook,
    verify_trtc,
)

NOW = 1_795_467_600
BODY = b'{"type": "room.created", "room_id": "r-1"}'
KEY = b"primary-key-bytes"
OLD_KEY = b"previous-key-bytes"


def headers(key: bytes = KEY, msg_id: str = "msg-1", stamp: int = NOW, body: bytes = BODY):
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard_webhook(key, msg_id, stamp, body),
    }


def rejected(call: Callable[[], object]) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as info:
        call()
    return info.value


# --- Standard Webhooks ---------------------------------------------------------------------


def test_standard_webhooks_reference_vector() -> None:
    """The example from the Standard Webhooks / Svix reference libraries."""
    key = standard_webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    signature = sign_standard_webhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    given = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": signature,
    }
    assert verify_standard_webhook([key], given, body, now=1614265330) == (
        "msg_p5jXN8AQM9LWM0D4loKWxJek"
    )


def test_signature_is_hmac_sha256_over_id_timestamp_body() -> None:
    expected = hmac.new(KEY, b"msg-1.%d." % NOW + BODY, hashlib.sha256).digest()
    assert sign_standard_webhook(KEY, "msg-1", NOW, BODY) == "v1," + base64.b64encode(
        expected
    ).decode("ascii")


def test_round_trip_returns_the_message_id() -> None:
    assert verify_standard_webhook([KEY], headers(msg_id="evt-42"), BODY, NOW) == "evt-42"


def test_any_of_several_keys_verifies_during_rotation() -> None:
    keys = [KEY, OLD_KEY]
    assert verify_standard_webhook(keys, headers(key=OLD_KEY), BODY, NOW) == "msg-1"
    assert verify_standard_webhook(keys, headers(key=KEY), BODY, NOW) == "msg-1"


def test_any_of_several_signatures_in_the_header_verifies() -> None:
    good = headers()["webhook-signature"]
    other = sign_standard_webhook(b"some-other-key", "msg-1", NOW, BODY)
    for value in (f"{other} {good}", f"{good} {other}", f"v1,bogus {good}"):
        given = {**headers(), "webhook-signature": value}
        assert verify_standard_webhook([KEY], given, BODY, NOW) == "msg-1"


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        ("whsec_" + base64.b64encode(b"raw key bytes").decode(), b"raw key bytes"),
        ("plain-secret", b"plain-secret"),
    ],
)
def test_whsec_secrets_are_base64_decoded_and_bare_ones_used_as_is(secret: str, key: bytes) -> None:
    assert standard_webhook_key(secret) == key


@pytest.mark.parametrize(
    "secret", ["whsec_not base64!", "whsec_Q", "whsec_====x", "whsec_ab=cd", "whsec_ab-_cd"]
)
def test_malformed_whsec_is_refused_without_echoing_it(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_") as info:
        standard_webhook_key(secret)
    assert secret[len("whsec_") :] not in str(info.value)


def test_tampered_body_is_bad_signature() -> None:
    exc = rejected(
        lambda: verify_standard_webhook([KEY], headers(), BODY.replace(b"r-1", b"r-2"), NOW)
    )
    assert exc.code == "bad_signature"


@pytest.mark.parametrize("field", ["webhook-id", "webhook-timestamp"])
def test_tampered_signed_header_is_bad_signature(field: str) -> None:
    given = headers()
    given[field] = "msg-2" if field == "webhook-id" else str(NOW + 1)
    assert rejected(lambda: verify_standard_webhook([KEY], given, BODY, NOW)).code == (
        "bad_signature"
    )


def test_wrong_key_is_bad_signature() -> None:
    exc = rejected(lambda: verify_standard_webhook([OLD_KEY], headers(), BODY, NOW))
    assert exc.code == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    [
        "v2," + headers()["webhook-signature"][3:],  # wrong version tag
        headers()["webhook-signature"][3:],  # no version tag
        headers()["webhook-signature"].lower(),
    ],
)
def test_malformed_signature_is_bad_signature(signature: str) -> None:
    given = {**headers(), "webhook-signature": signature}
    assert rejected(lambda: verify_standard_webhook([KEY], given, BODY, NOW)).code == (
        "bad_signature"
    )


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_missing_signature(missing: str) -> None:
    given = headers()
    del given[missing]
    assert rejected(lambda: verify_standard_webhook([KEY], given, BODY, NOW)).code == (
        "missing_signature"
    )
    given[missing] = ""
    assert rejected(lambda: verify_standard_webhook([KEY], given, BODY, NOW)).code == (
        "missing_signature"
    )


@pytest.mark.parametrize("stamp", ["abc", "-5", "1.5", " 1795467600", "１７９５", "9" * 13])
def test_non_numeric_timestamp_is_bad_timestamp(stamp: str) -> None:
    given = {**headers(), "webhook-timestamp": stamp}
    assert rejected(lambda: verify_standard_webhook([KEY], given, BODY, NOW)).code == (
        "bad_timestamp"
    )


@pytest.mark.parametrize(
    ("skew", "fresh"),
    [(0, True), (300, True), (-300, True), (301, False), (-301, False), (86400, False)],
)
def test_timestamp_tolerance_is_300_seconds_either_way(skew: int, fresh: bool) -> None:
    given = headers(stamp=NOW + skew)
    if fresh:
        assert verify_standard_webhook([KEY], given, BODY, NOW) == "msg-1"
    else:
        exc = rejected(lambda: verify_standard_webhook([KEY], given, BODY, NOW))
        assert exc.code == "stale_timestamp"


def test_fractional_now_just_past_the_boundary_is_stale() -> None:
    exc = rejected(lambda: verify_standard_webhook([KEY], headers(), BODY, NOW + 300.001))
    assert exc.code == "stale_timestamp"


def test_stale_is_reported_even_with_a_valid_signature_from_an_old_message() -> None:
    old = headers(stamp=NOW - 3600)
    assert rejected(lambda: verify_standard_webhook([KEY], old, BODY, NOW)).code == (
        "stale_timestamp"
    )


def test_no_keys_is_not_configured_for_every_format() -> None:
    assert rejected(lambda: verify_standard_webhook([], headers(), BODY, NOW)).code == (
        "not_configured"
    )
    trtc = sign_trtc("k", BODY)
    assert rejected(lambda: verify_trtc([], trtc, BODY, "140")).code == "not_configured"
    assert rejected(lambda: verify_gme_callback([], "sig", BODY)).code == "not_configured"


def test_standard_webhook_errors_never_contain_the_key() -> None:
    secret = b"super-secret-key-material"
    attempts: list[Callable[[], object]] = [
        lambda: verify_standard_webhook([secret], headers(), BODY, NOW),
        lambda: verify_standard_webhook([secret], {}, BODY, NOW),
        lambda: verify_standard_webhook([secret], headers(stamp=0), BODY, NOW),
        lambda: verify_standard_webhook(
            [secret], {**headers(), "webhook-timestamp": "x"}, BODY, NOW
        ),
    ]
    codes = set()
    for attempt in attempts:
        exc = rejected(attempt)
        codes.add(exc.code)
        for text in (str(exc), exc.message, repr(exc)):
            assert secret.decode() not in text
            assert base64.b64encode(secret).decode() not in text
    assert codes == {"bad_signature", "missing_signature", "stale_timestamp", "bad_timestamp"}


# --- TRTC ----------------------------------------------------------------------------------

TRTC_KEY = "trtc-callback-key"


def trtc_sign(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def test_trtc_sign_is_base64_hmac_sha256_of_the_raw_body() -> None:
    assert sign_trtc(TRTC_KEY, BODY) == trtc_sign(TRTC_KEY, BODY)


def unbound(*keys: str) -> list[TrtcCallbackKey]:
    return [TrtcCallbackKey(k) for k in keys]


def test_trtc_verifies_with_any_active_key() -> None:
    verify_trtc(unbound(TRTC_KEY), trtc_sign(TRTC_KEY, BODY), BODY, "140")
    verify_trtc(unbound("new-key", TRTC_KEY), trtc_sign(TRTC_KEY, BODY), BODY, "140")
    verify_trtc(unbound(TRTC_KEY), " " + trtc_sign(TRTC_KEY, BODY) + "\n", BODY, "140")


@pytest.mark.parametrize(
    ("sign", "body", "code"),
    [
        ("", BODY, "missing_signature"),
        (trtc_sign("wrong-key", BODY), BODY, "bad_signature"),
        (trtc_sign(TRTC_KEY, BODY), BODY + b" ", "bad_signature"),
        (hmac.new(TRTC_KEY.encode(), BODY, hashlib.sha256).hexdigest(), BODY, "bad_signature"),
        ("not base64 at all", BODY, "bad_signature"),
    ],
)
def test_trtc_refusals(sign: str, body: bytes, code: str) -> None:
    exc = rejected(lambda: verify_trtc(unbound(TRTC_KEY), sign, body, "140"))
    assert exc.code == code
    assert TRTC_KEY not in str(exc)


# --- TRTC keys bound to their app ------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "key", "app"),
    [
        ("140:k-140", "k-140", 140),
        ("0140:k-140", "k-140", 140),
        (" 140 : k-140 ", "k-140", 140),
        ("140:k:with:colons", "k:with:colons", 140),  # split on the first ':' only
        ("plain-key", "plain-key", None),
        ("abc:def", "abc:def", None),  # no digits before ':': an unbound key, as before
        (":starts-with-colon", ":starts-with-colon", None),
        ("14a0:k", "14a0:k", None),
        ("\u0661\u0664\u0660:k", "\u0661\u0664\u0660:k", None),  # non-ASCII digits are not an app
    ],
)
def test_trtc_key_entries_parse_bound_or_unbound(entry: str, key: str, app: int | None) -> None:
    parsed = TrtcCallbackKey.parse(entry)
    assert (parsed.key, parsed.sdk_app_id) == (key, app)


@pytest.mark.parametrize(
    "entry", ["140:", "140:   ", "0:k", "9223372036854775808:k", "9" * 5000 + ":k"]
)
def test_malformed_bound_entries_are_refused_without_echoing_them(entry: str) -> None:
    with pytest.raises(ValueError, match="SdkAppId") as info:
        TrtcCallbackKey.parse(entry)
    assert entry.strip() not in str(info.value)


def test_a_parsed_key_never_shows_in_its_repr() -> None:
    assert "super-secret-trtc" not in repr(TrtcCallbackKey.parse("140:super-secret-trtc"))
    assert "super-secret-trtc" not in repr(TrtcCallbackKey.parse("super-secret-trtc"))


@pytest.mark.parametrize(
    ("header", "serves"),
    [("140", True), ("0140", True), (" 140 ", True), ("141", False), ("14", False),
     ("1400", False), ("", False), (None, False), ("+140", False), ("140.0", False)],
)  # fmt: skip
def test_a_bound_key_serves_its_app_only_compared_as_numbers(
    header: str | None, serves: bool
) -> None:
    assert TrtcCallbackKey("k", 140).serves(header) is serves
    assert TrtcCallbackKey("k").serves(header)  # unbound: every app, and no header at all


def test_a_bound_key_verifies_its_own_app() -> None:
    keys = [TrtcCallbackKey("k-140", 140), TrtcCallbackKey("k-141", 141)]
    verify_trtc(keys, trtc_sign("k-140", BODY), BODY, "140")
    verify_trtc(keys, trtc_sign("k-141", BODY), BODY, "0141")


@pytest.mark.parametrize("header", ["141", "142"])
def test_a_valid_signature_under_another_apps_header_is_bad_signature(header: str | None) -> None:
    """The replay: app 140's genuine signature over the body, sent with another SdkAppId."""
    keys = [TrtcCallbackKey("k-140", 140), TrtcCallbackKey("k-141", 141)]
    exc = rejected(lambda: verify_trtc(keys, trtc_sign("k-140", BODY), BODY, header))
    assert exc.code == "bad_signature"
    assert "k-14" not in str(exc)


@pytest.mark.parametrize("header", ["", "  ", None])
def test_no_sdk_app_id_header_is_missing_app_id(header: str | None) -> None:
    keys = [TrtcCallbackKey("k-140", 140), TrtcCallbackKey("shared")]
    for key in ("k-140", "shared"):
        exc = rejected(lambda key=key: verify_trtc(keys, trtc_sign(key, BODY), BODY, header))
        assert exc.code == "missing_app_id"


def test_mixed_keys_an_unbound_key_still_verifies_any_app() -> None:
    keys = [TrtcCallbackKey("k-140", 140), TrtcCallbackKey("shared")]
    verify_trtc(keys, trtc_sign("shared", BODY), BODY, "141")
    verify_trtc(keys, trtc_sign("k-140", BODY), BODY, "140")
    assert rejected(lambda: verify_trtc(keys, trtc_sign("k-140", BODY), BODY, "141")).code == (
        "bad_signature"
    )


# --- GME recording callback ----------------------------------------------------------------

GME_KEY = "gme-app-key"


def sha1(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha1).digest()


@pytest.mark.parametrize(
    "encode",
    [lambda mac: base64.b64encode(mac).decode(), lambda mac: mac.hex()],
    ids=["base64", "hex"],
)
def test_gme_callback_accepts_hmac_sha1_as_base64_or_hex(encode: Callable[[bytes], str]) -> None:
    verify_gme_callback([GME_KEY], encode(sha1(GME_KEY, BODY)), BODY)
    verify_gme_callback(["rotated", GME_KEY], encode(sha1(GME_KEY, BODY)), BODY)


@pytest.mark.parametrize(
    ("signature", "body", "code"),
    [
        ("", BODY, "missing_signature"),
        (base64.b64encode(sha1("wrong", BODY)).decode(), BODY, "bad_signature"),
        (sha1(GME_KEY, BODY).hex(), BODY + b"x", "bad_signature"),
        (  # right key and body, wrong hash (SHA-256 instead of SHA-1)
            base64.b64encode(hmac.new(GME_KEY.encode(), BODY, hashlib.sha256).digest()).decode(),
            BODY,
            "bad_signature",
        ),
    ],
)
def test_gme_callback_refusals(signature: str, body: bytes, code: str) -> None:
    exc = rejected(lambda: verify_gme_callback([GME_KEY], signature, body))
    assert exc.code == code
    assert GME_KEY not in str(exc)


# --- freshness helper ----------------------------------------------------------------------


@pytest.mark.parametrize(("skew", "fresh"), [(300, True), (-300, True), (301, False)])
def test_check_fresh_boundaries_and_message(skew: int, fresh: bool) -> None:
    if fresh:
        check_fresh(NOW + skew, NOW, "CallbackTs")
        return
    exc = rejected(lambda: check_fresh(NOW + skew, NOW, "CallbackTs"))
    assert exc.code == "stale_timestamp"
    assert "CallbackTs" in exc.message
