"""`python -m handler send FILE`: sign a sample as its sender would and POST it to the stack.

Every sample in `events/` goes: a room event v1, a TRTC callback body (signed for `--app-id`,
default the first of TRTC_SDK_APP_ID, else 1400000000) and a GME recording callback are posted
to their routes; an API Gateway event posts its body to its path; an SQS event posts each
record's body (its SdkAppId attribute naming the TRTC app). A scheduler event has no body to
send: the error says to `invoke scheduler` it. Keys are the configured ones, else the local
development keys `make run` uses. Local only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from handler.bootstrap.config import ConfigError
from handler.domain.signatures import (
    TrtcCallbackKey,
    sign_gme_callback,
    sign_standard_webhook,
    sign_trtc,
    standard_webhook_key,
)


def signed_request(body: bytes, app_id: str | None = None) -> tuple[str, bytes, dict[str, str]]:
    """Pick the route for a body and sign it, as its sender would now, with the configured (or
    local development) keys. TRTC bodies get a fresh `CallbackTs`, which their freshness check
    reads from the body, and the first key that serves the first app of `TRTC_SDK_APP_ID`."""
    from handler.tools.local import LOCAL_CALLBACK_KEY, LOCAL_WEBHOOK_SECRET

    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    headers = {"content-type": "application/json"}
    if isinstance(doc, dict) and "EventType" in doc and "TaskID" in doc:  # a GME callback
        body = json.dumps({**doc, "Timestamp": int(time.time())}).encode()  # fresh, as GME's
        key = (os.environ.get("GME_CALLBACK_KEY") or LOCAL_CALLBACK_KEY).split(",")[0].strip()
        headers["signature"] = sign_gme_callback(key, body)
        return "/v1/gme/recording-callbacks", body, headers
    if isinstance(doc, dict) and "EventGroupId" in doc:
        body = json.dumps({**doc, "CallbackTs": int(time.time() * 1000)}).encode()
        app_id = app_id or trtc_app_id()
        entries = (os.environ.get("TRTC_CALLBACK_KEY") or LOCAL_CALLBACK_KEY).split(",")
        keys = [TrtcCallbackKey.parse(entry.strip()) for entry in entries if entry.strip()]
        key = next((k.key for k in keys if k.serves(app_id)), LOCAL_CALLBACK_KEY)
        headers.update(sign=sign_trtc(key, body), sdkappid=app_id)
        return "/v1/trtc/room-callbacks", body, headers
    secret = (os.environ.get("WEBHOOK_SECRETS") or LOCAL_WEBHOOK_SECRET).split(",")[0].strip()
    msg_id = str(doc.get("id", "manual")) if isinstance(doc, dict) else "manual"
    stamp = int(time.time())
    signature = sign_standard_webhook(standard_webhook_key(secret), msg_id, stamp, body)
    headers.update(
        {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}
    )
    return "/v1/room-events", body, headers


def trtc_app_id() -> str:
    """The app TRTC bodies are signed and explained for by default: the first of
    TRTC_SDK_APP_ID (the running stack's when it is up), else the local one, 1400000000."""
    from handler.tools.local import LOCAL_TRTC_APP_ID

    return (os.environ.get("TRTC_SDK_APP_ID") or LOCAL_TRTC_APP_ID).split(",")[0].strip()


def bodies_in(path: str) -> list[tuple[bytes, str | None]]:
    """The webhook bodies a sample file holds, each with the TRTC app it names (if any)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror} (the samples are in events/)") from None
    try:
        doc = json.loads(raw)
    except ValueError:
        return [(raw, None)]  # sent as it is: the webhook's answer says what is wrong
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return [_record(r) for r in doc["Records"] if isinstance(r, dict)]
    if isinstance(doc, dict) and "requestContext" in doc and isinstance(doc.get("body"), str):
        body = doc["body"]
        data = base64.b64decode(body) if doc.get("isBase64Encoded") else body.encode()
        headers = {str(k).lower(): v for k, v in (doc.get("headers") or {}).items()}
        return [(data, headers.get("sdkappid"))]
    if isinstance(doc, dict) and doc.get("detail-type") == "Scheduled Event":
        raise ConfigError(
            f"{path} is a scheduler event, not a webhook body: run it with"
            f" `python -m handler invoke scheduler {path}`"
        )
    return [(raw, None)]


def _record(record: dict[str, Any]) -> tuple[bytes, str | None]:
    """A queue message's body, out of any SNS or EventBridge envelope (the webhook takes the
    room event itself; the worker unwraps them)."""
    from handler.domain.inbound import InvalidEvent, unwrap

    attrs = record.get("messageAttributes") or {}
    app_id = (attrs.get("SdkAppId") or {}).get("stringValue")
    body = str(record.get("body") or "")
    try:
        inner, hints = unwrap(json.loads(body))
    except (ValueError, InvalidEvent):
        return body.encode(), app_id
    return json.dumps(inner).encode(), app_id or hints.get("SdkAppId")


def default_url() -> str:
    """The running stack's URL, else where `make run` listens by default."""
    from handler.tools import preflight, stack

    running = stack.running()
    if running is not None:
        return running.url
    return f"http://127.0.0.1:{preflight.port_setting(os.environ.get('PORT') or '8080')}"


def cmd_send(args: argparse.Namespace) -> int:
    url = args.url or default_url()
    if not url.startswith(("http://", "https://")):
        print("error: --url must start with http:// or https://", file=sys.stderr)
        return 2
    worst = 0
    for raw, app_id in bodies_in(args.file):
        route, body, headers = signed_request(raw, args.app_id or app_id)
        _own_key_needed(route)
        worst = max(worst, _post(url, route, body, headers))
    return worst


_ROUTE_KEYS = {
    "/v1/room-events": "WEBHOOK_SECRETS",
    "/v1/trtc/room-callbacks": "TRTC_CALLBACK_KEY",
    "/v1/gme/recording-callbacks": "GME_CALLBACK_KEY",
}


def _own_key_needed(route: str) -> None:
    """The running stack verifies this route with the user's own key (never written to the
    state file): signing with the local development key would only earn a 401."""
    from handler.tools import stack

    running = stack.running()
    name = _ROUTE_KEYS[route]
    if running is not None and name not in running.local_keys and not os.environ.get(name):
        raise ConfigError(
            f"the stack at {running.url} verifies {route} with your own {name}: set it here too"
        )


def _post(url: str, route: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url.rstrip("/") + route, body, headers, method="POST")  # noqa: S310 - scheme checked by cmd_send
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", None) or exc
        print(
            f"error: cannot reach {url}: {why} (is `make run` up? or give --url)", file=sys.stderr
        )
        return 2
    print(f"HTTP {status} {route}")
    print(text)
    return 0 if status < 400 else 1
