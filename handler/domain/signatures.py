"""Webhook authentication over the raw body, per inbound format. Pure: bytes in, verdict out.

Every comparison is constant-time, every format accepts several keys so secrets can be rotated
without downtime, and the error says which check failed without ever echoing a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TOLERANCE_SECONDS = 300
#: The refusal of a signature that no key in use matches (the keys may have been rotated).
BAD_SIGNATURE = "bad_signature"
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")


class SignatureRejected(Exception):
    """`code` is machine-readable: missing_signature, bad_signature, stale_timestamp, ..."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def standard_webhook_key(secret: str) -> bytes:
    """Standard Webhooks secrets look like `whsec_<base64>`; a bare string is used as is.

    The base64 may come without its `=` padding, as the official Standard Webhooks libraries
    accept (and as several providers print it). Anything else that is not the standard
    alphabet is refused: the official Python library would silently drop such characters and
    derive another key than the one the operator meant."""
    if secret.startswith("whsec_"):
        text = secret[len("whsec_") :].rstrip("=")
        if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
            raise ValueError("a whsec_ secret must be base64 after the prefix")
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        if not key:
            raise ValueError("a whsec_ secret must not be empty after the prefix")
        return key
    return secret.encode()


def sign_standard_webhook(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_standard_webhook(
    keys: Iterable[bytes], headers: Mapping[str, str], body: bytes, now: float
) -> str:
    """Check `webhook-id`, `webhook-timestamp`, `webhook-signature`; returns the message id."""
    keys = list(keys)
    if not keys:
        raise SignatureRejected("not_configured", "this route has no signing key configured")
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    if not msg_id or not stamp or not given:
        raise SignatureRejected(
            "missing_signature",
            "webhook-id, webhook-timestamp and webhook-signature headers are required",
        )
    if not _printable(msg_id, 256):
        raise SignatureRejected("bad_webhook_id", "webhook-id must be 1-256 printable ASCII")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise SignatureRejected("bad_timestamp", "webhook-timestamp must be integer seconds")
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise SignatureRejected("stale_timestamp", "webhook-timestamp is outside ±300 s")
    expected = [sign_standard_webhook(k, msg_id, int(stamp), body) for k in keys]
    # The header may carry several space-separated signatures (the sender rotating its key).
    for candidate in given.split(" ")[:8]:
        if candidate.isascii() and any(
            hmac.compare_digest(candidate.encode(), e.encode()) for e in expected
        ):
            return msg_id
    raise SignatureRejected(BAD_SIGNATURE, "webhook-signature does not match any active key")


def app_key(value: object) -> str:
    """An app id as compared: as a number when it is digits (`0140` is `140`), else as text."""
    text = str(value).strip()
    return str(int(text)) if text.isascii() and text.isdigit() and len(text) < 40 else text


@dataclass(frozen=True)
class TrtcCallbackKey:
    """A TRTC callback key, bound to one app or not. TRTC signs the body only, and the app is
    named by the unsigned `SdkAppId` header; a key bound to its app verifies that app's requests
    only, so a captured body cannot be replayed under another app's header. An unbound key
    would verify any app's requests: the settings never hand one to `verify_trtc`, they bind
    a bare key to the apps the deployment names (`TRTC_SDK_APP_ID`) or refuse it."""

    key: str = field(repr=False)
    sdk_app_id: int | None = None

    @classmethod
    def parse(cls, entry: str) -> TrtcCallbackKey:
        """`SDKAPPID:key` (digits, then the first ':') is bound; anything else is an unbound key
        taken as is, so keys holding a ':' after other text still work. Errors never show the
        entry: it is a secret."""
        prefix, colon, key = entry.partition(":")
        prefix, key = prefix.strip(), key.strip()
        if not colon or not prefix.isascii() or not prefix.isdigit():
            return cls(entry)
        # Length first: int() of a huge digit string is slow, or refused with its own message.
        if len(prefix) > 30 or not 0 < int(prefix) < 2**63:
            raise ValueError("the SdkAppId before ':' must be an integer in 1 … 2^63-1")
        if not key:
            raise ValueError("the key after 'SdkAppId:' is empty")
        return cls(key, int(prefix))

    def serves(self, sdk_app_id: str | None) -> bool:
        """May this key verify a request whose `SdkAppId` header is `sdk_app_id`?"""
        return self.sdk_app_id is None or app_key(sdk_app_id or "") == str(self.sdk_app_id)


def sign_trtc(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify_trtc(
    keys: Iterable[TrtcCallbackKey], sign: str, body: bytes, sdk_app_id: str | None
) -> None:
    """TRTC: `Sign` = base64(HMAC-SHA256(key, raw body)), by a key that serves the app named
    in the `SdkAppId` header. A valid signature by another app's key is `bad_signature` too:
    telling the two apart would only confirm to a replayer that the body is genuine."""
    keys = list(keys)
    if not keys:
        raise SignatureRejected("not_configured", "this route has no signing key configured")
    if not sign:
        raise SignatureRejected("missing_signature", "the Sign header is required")
    if not (sdk_app_id or "").strip():
        raise SignatureRejected("missing_app_id", "the SdkAppId header is required")
    given = _ascii(sign)
    if not any(
        k.serves(sdk_app_id) and hmac.compare_digest(given, sign_trtc(k.key, body).encode())
        for k in keys
    ):
        raise SignatureRejected(BAD_SIGNATURE, "Sign does not match any key for this SdkAppId")


def sign_gme_callback(key: str, body: bytes) -> str:
    """What GME's `Signature` header carries, in the base64 form (the verifier takes hex too)."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha1).digest()).decode()


def verify_gme_callback(keys: Iterable[str], signature: str, body: bytes) -> None:
    """GME recording callback: HMAC-SHA1(app key, raw body); base64 or hex (undocumented)."""
    keys = list(keys)
    if not keys:
        raise SignatureRejected("not_configured", "this route has no signing key configured")
    if not signature:
        raise SignatureRejected("missing_signature", "the Signature header is required")
    given = _ascii(signature)
    for key in keys:
        mac = hmac.new(key.encode(), body, hashlib.sha1).digest()
        for form in (base64.b64encode(mac), mac.hex().encode()):
            if hmac.compare_digest(given, form):
                return
    raise SignatureRejected(BAD_SIGNATURE, "Signature does not match any active key")


def check_fresh(timestamp_seconds: float, now: float, what: str) -> None:
    try:
        stale = not abs(now - timestamp_seconds) <= TOLERANCE_SECONDS  # NaN counts as stale
    except OverflowError:  # an integer too large for a float is as stale as it gets
        stale = True
    if stale:
        raise SignatureRejected("stale_timestamp", f"{what} is outside ±300 s")


def _printable(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and value.isascii() and value.isprintable()


def _ascii(header: str) -> bytes:
    """A signature header as bytes for `compare_digest`; non-ASCII can never match, so it is
    replaced rather than raising (compare_digest refuses non-ASCII str)."""
    return header.strip().encode("ascii", "replace")
