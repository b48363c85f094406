"""The limits of webhook authentication: sizes, counts and numbers at and past their bounds.

Each bound here keeps a hostile header from costing work or being misread; the tests sit on
both sides of it (found by mutation testing: the bounds themselves were unpinned).
"""

from __future__ import annotations

import pytest

from handler.domain.signatures import (
    SignatureRejected,
    TrtcCallbackKey,
    app_key,
    check_fresh,
    sign_standard_webhook,
    standard_webhook_key,
    verify_standard_webhook,
)

NOW = 1_795_467_600
BODY = b'{"type": "room.created"}'
KEY = b"edge-key"


def code_of(headers: dict[str, str], keys: list[bytes] | None = None) -> str:
    try:
        verify_standard_webhook([KEY] if keys is None else keys, headers, BODY, NOW)
    except SignatureRejected as exc:
        return exc.code
    return "ok"


def signed(
    msg_id: str = "m", stamp: str = str(NOW), signature: str | None = None
) -> dict[str, str]:
    good = sign_standard_webhook(KEY, msg_id, int(stamp), BODY) if stamp.isdigit() else "v1,x"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": good if signature is None else signature,
    }


def test_a_webhook_id_of_256_characters_passes_and_257_is_refused() -> None:
    assert code_of(signed("i" * 256)) == "ok"
    assert code_of(signed("i" * 257)) == "bad_webhook_id"


@pytest.mark.parametrize("msg_id", ["with\ttab", "new\nline", "ünïcode"])
def test_a_webhook_id_must_be_printable_ascii(msg_id: str) -> None:
    assert code_of(signed(msg_id)) == "bad_webhook_id"


def test_timestamps_of_more_than_twelve_digits_are_malformed_not_stale() -> None:
    assert len(str(NOW)) == 10
    assert code_of(signed(stamp="00" + str(NOW))) == "ok"  # 12 digits, leading zeros
    assert code_of(signed(stamp="000" + str(NOW))) == "bad_timestamp"  # 13: not even read


def test_the_freshness_window_is_300_seconds_each_way() -> None:
    for delta in (-300, 300):
        assert code_of(signed(stamp=str(NOW + delta))) == "ok"
    for delta in (-301, 301):
        assert code_of(signed(stamp=str(NOW + delta))) == "stale_timestamp"


def test_only_the_first_eight_signatures_of_a_header_are_tried() -> None:
    good = sign_standard_webhook(KEY, "m", NOW, BODY)
    wrong = "v1," + "A" * 43 + "="
    assert code_of(signed(signature=" ".join([wrong] * 7 + [good]))) == "ok"
    assert code_of(signed(signature=" ".join([wrong] * 8 + [good]))) == "bad_signature"


def test_a_key_that_is_not_configured_is_its_own_refusal() -> None:
    assert code_of(signed(), keys=[]) == "not_configured"


@pytest.mark.parametrize("huge", [10**400, -(10**400)])
def test_a_timestamp_too_large_for_a_float_is_stale(huge: int) -> None:
    with pytest.raises(SignatureRejected) as info:
        check_fresh(huge, float(NOW), "CallbackTs")  # float - huge int overflows
    assert info.value.code == "stale_timestamp"


def test_a_nan_timestamp_is_stale() -> None:
    with pytest.raises(SignatureRejected):
        check_fresh(float("nan"), NOW, "CallbackTs")
    check_fresh(NOW + 300, NOW, "CallbackTs")  # the bound itself is fresh


@pytest.mark.parametrize(
    "secret",
    ["whsec_", "whsec_a", "whsec_ab$d", "whsec_ab-_", "whsec_ab=c", "whsec_====="],
)
def test_malformed_whsec_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        standard_webhook_key(secret)


def test_whsec_secrets_decode_with_or_without_padding_and_bare_ones_are_bytes() -> None:
    assert standard_webhook_key("whsec_ZWRnZQ==") == b"edge"
    assert standard_webhook_key("whsec_ZWRnZQ") == b"edge"
    assert standard_webhook_key("plain-secret") == b"plain-secret"


@pytest.mark.parametrize(
    ("entry", "app"),
    [("1:k", 1), (f"{2**63 - 1}:k", 2**63 - 1), ("0001400000000:k", 1400000000)],
)
def test_bound_trtc_keys_accept_app_ids_in_range(entry: str, app: int) -> None:
    key = TrtcCallbackKey.parse(entry)
    assert (key.sdk_app_id, key.key) == (app, "k")


@pytest.mark.parametrize("entry", ["0:k", f"{2**63}:k", "1" * 31 + ":k", "1400000000:", "7: "])
def test_bound_trtc_keys_out_of_range_or_empty_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"SdkAppId|key") as info:
        TrtcCallbackKey.parse(entry)
    assert entry not in str(info.value)  # the entry holds a secret: never shown


def test_an_entry_without_leading_digits_is_an_unbound_key_taken_whole() -> None:
    key = TrtcCallbackKey.parse("abc:def")
    assert (key.sdk_app_id, key.key) == (None, "abc:def")


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("0140", "140"),
        (" 7 ", "7"),
        ("0" + "9" * 38, "9" * 38),  # 39 characters: a number
        ("0" + "1" * 39, "0" + "1" * 39),  # 40 characters: compared as text
        ("x1", "x1"),
    ],
)
def test_app_ids_compare_as_numbers_when_short_digit_strings(value: str, key: str) -> None:
    assert app_key(value) == key


def test_keys_may_come_as_any_iterable_and_none_is_not_configured() -> None:
    from handler.domain.signatures import verify_gme_callback, verify_trtc

    good = sign_standard_webhook(KEY, "m", NOW, BODY)
    wrong = "v1," + "A" * 43 + "="
    header = signed(signature=f"{wrong} {good}")  # the key is needed for the second candidate
    assert verify_standard_webhook(iter([KEY]), header, BODY, NOW) == "m"
    for verify in (
        lambda: verify_standard_webhook(iter([]), signed(), BODY, NOW),
        lambda: verify_trtc(iter([]), "sig", BODY, "1"),
        lambda: verify_gme_callback(iter([]), "sig", BODY),
    ):
        with pytest.raises(SignatureRejected) as info:
            verify()
        assert info.value.code == "not_configured"


def test_a_refusal_reads_as_its_message() -> None:
    exc = SignatureRejected("bad_signature", "Sign does not match")
    assert (str(exc), exc.code, exc.message) == (
        "Sign does not match",
        "bad_signature",
        exc.message,
    )


def test_a_gme_callback_signed_here_verifies_here() -> None:
    from handler.domain.signatures import sign_gme_callback, verify_gme_callback

    signature = sign_gme_callback("gme-key", BODY)
    verify_gme_callback(["other", "gme-key"], signature, BODY)
    with pytest.raises(SignatureRejected):
        verify_gme_callback(["other"], signature, BODY)
