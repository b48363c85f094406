"""TC3-HMAC-SHA256 request signing, as Tencent Cloud API 3.0 checks it.

The emulator must reject exactly the requests the real service rejects, or a client bug in header
handling (a scheme inside ``endpoint``, a mangled ``Host``) would pass locally and fail in
production. So the signature is recomputed from what actually arrived on the wire: the received
``Content-Type`` and ``Host`` values, the SHA-256 of the received body, the ``X-TC-Timestamp``
header and the UTC date derived from it. Nothing is taken on trust from the ``Credential`` scope.

``sign_request`` is the same algorithm in the other direction. Tests use it to build raw requests
the SDK refuses to send (a body that is not a JSON object, a wrong version) while still passing
authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "gme"
API_VERSION = "2018-07-11"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Tencent requires both; a signature that leaves either out does not protect the request.
REQUIRED_SIGNED_HEADERS = frozenset({"content-type", "host"})

_AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256\s+"
    r"Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9A-Fa-f]{64})\s*$"
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class AuthorizationFormatError(ValueError):
    """The Authorization header is absent or does not follow the TC3 grammar.

    Its message is safe to return to the client: it never echoes the header itself.
    """


@dataclass(frozen=True)
class Authorization:
    """The parsed parts of a TC3 ``Authorization`` header."""

    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    """Split a TC3 Authorization header into its parts, or explain why it is malformed."""
    if not value:
        raise AuthorizationFormatError("The Authorization header is missing.")
    match = _AUTH_RE.match(value.strip())
    if match is None:
        raise AuthorizationFormatError(
            "The Authorization header is not of the form 'TC3-HMAC-SHA256 Credential=..., "
            "SignedHeaders=..., Signature=...'."
        )
    scope = match.group("credential").split("/")
    if len(scope) != 4 or scope[3] != "tc3_request" or not _DATE_RE.match(scope[1]):
        raise AuthorizationFormatError(
            "The Credential of the Authorization header must be "
            "'<SecretId>/<YYYY-MM-DD>/<service>/tc3_request'."
        )
    signed = tuple(name.strip().lower() for name in match.group("signed").split(";"))
    if not REQUIRED_SIGNED_HEADERS.issubset(signed):
        raise AuthorizationFormatError("SignedHeaders must include content-type and host.")
    return Authorization(
        secret_id=scope[0],
        date=scope[1],
        service=scope[2],
        signed_headers=signed,
        signature=match.group("signature").lower(),
    )


def utc_date(timestamp: int) -> str:
    """The credential-scope date: the UTC calendar day of the request timestamp."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def compute_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    body: bytes,
    timestamp: int,
    service: str = SERVICE,
    unsigned_payload: bool = False,
    lowercase_values: bool = False,
) -> str:
    """Compute the hex TC3 signature for a request.

    ``headers`` must be keyed by lower-case header name. Values are used as received (only
    trimmed), which is what the Python SDK signs; ``lowercase_values`` gives the variant the
    Tencent documentation describes, which the verifier also accepts.
    """
    canonical_headers = ""
    for name in signed_headers:
        header_value = headers.get(name, "").strip()
        if lowercase_values:
            header_value = header_value.lower()
        canonical_headers += f"{name}:{header_value}\n"
    payload = UNSIGNED_PAYLOAD.encode("ascii") if unsigned_payload else body
    canonical_request = "\n".join(
        [
            method.upper(),
            path,
            query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = utc_date(timestamp)
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_signature(
    auth: Authorization,
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    timestamp: int,
) -> bool:
    """True when ``auth`` is a valid GME signature for the received request.

    The scope date must be the UTC date of ``timestamp`` and the scope service must be ``gme``:
    a client that derives either differently signs something the real service never accepts.
    """
    if auth.date != utc_date(timestamp) or auth.service != SERVICE:
        return False
    unsigned = headers.get("x-tc-content-sha256", "").strip() == UNSIGNED_PAYLOAD
    for lowercase_values in (False, True):
        expected = compute_signature(
            secret_key,
            method=method,
            path=path,
            query=query,
            headers=headers,
            signed_headers=auth.signed_headers,
            body=body,
            timestamp=timestamp,
            unsigned_payload=unsigned,
            lowercase_values=lowercase_values,
        )
        if hmac.compare_digest(expected, auth.signature):
            return True
    return False


def sign_request(
    secret_id: str,
    secret_key: str,
    *,
    host: str,
    action: str,
    body: bytes,
    timestamp: int,
    version: str = API_VERSION,
    content_type: str = "application/json",
    token: str | None = None,
) -> dict[str, str]:
    """Build the headers the SDK would send for ``body``, signed with TC3.

    Lets tests and tools speak the wire protocol without the SDK, including requests the SDK
    cannot produce.
    """
    headers = {"content-type": content_type, "host": host}
    signed = ("content-type", "host")
    signature = compute_signature(
        secret_key,
        method="POST",
        path="/",
        query="",
        headers=headers,
        signed_headers=signed,
        body=body,
        timestamp=timestamp,
    )
    result = {
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
        "Authorization": (
            f"{ALGORITHM} Credential={secret_id}/{utc_date(timestamp)}/{SERVICE}/tc3_request, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}"
        ),
    }
    if token:
        result["X-TC-Token"] = token
    return result
