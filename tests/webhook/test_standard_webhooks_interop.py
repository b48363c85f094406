"""Interop with the official Standard Webhooks library (`standardwebhooks` on PyPI), both ways.

Their signer's headers must verify here, ours (the domain signer and the CLI's `send` signer)
must verify there, for every key form they accept: `whsec_` with or without base64 padding.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from handler.bootstrap.config import Settings
from handler.domain.events import RoomEvent
from handler.domain.signatures import (
    sign_standard_webhook,
    standard_webhook_key,
    verify_standard_webhook,
)
from handler.ingress.ingest import Route, ingest
from handler.tools.cli import signed_request

PADDED = "whsec_" + base64.b64encode(b"interop-key-20-bytes").decode()  # ends with "="
UNPADDED = PADDED.rstrip("=")
OLD = "whsec_" + base64.b64encode(b"the-key-being-retired").decode().rstrip("=")


def body() -> bytes:
    return json.dumps(
        {
            "version": 1,
            "type": "room.created",
            "id": "evt-interop-1",
            "time": "2026-11-23T21:00:00Z",
            "biz_id": 1400000000,
            "room_id": "interop-room",
            "session": "s-1",
        }
    ).encode()


def their_headers(secrets: list[str], msg_id: str = "msg-interop") -> dict[str, str]:
    """Headers as the official library's sender makes them; several keys: one header, several
    space-separated signatures (a sender rotating its key)."""
    now = datetime.now(tz=UTC)
    signatures = [Webhook(s).sign(msg_id, now, body().decode()) for s in secrets]
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def accepts(secrets: str, headers: dict[str, str]) -> bool:
    event = ingest(
        Route.ROOM_EVENTS, headers, body(), Settings.from_env({"WEBHOOK_SECRETS": secrets})
    )
    return isinstance(event, RoomEvent)


@pytest.mark.parametrize("secret", [PADDED, UNPADDED])
def test_their_signature_verifies_here_with_padded_and_unpadded_keys(secret: str) -> None:
    assert UNPADDED != PADDED  # the unpadded form really lacks padding
    assert accepts(secret, their_headers([secret]))


@pytest.mark.parametrize("secret", [PADDED, UNPADDED])
def test_our_signature_verifies_there(secret: str) -> None:
    stamp = int(time.time())
    signature = sign_standard_webhook(standard_webhook_key(secret), "msg-ours", stamp, body())
    headers = {"webhook-id": "msg-ours", "webhook-timestamp": str(stamp)}
    Webhook(secret).verify(body(), {**headers, "webhook-signature": signature})


@pytest.mark.parametrize("secret", [PADDED, UNPADDED])
def test_the_cli_signer_verifies_there(secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRETS", f"{secret},{OLD}")
    route, raw, headers = signed_request(body())
    assert route == Route.ROOM_EVENTS.value
    assert Webhook(secret).verify(raw, headers)["id"] == "evt-interop-1"


def test_rotation_two_signatures_in_one_header_verify_with_either_key_alone() -> None:
    headers = their_headers([OLD, UNPADDED])
    assert accepts(OLD, headers)
    assert accepts(UNPADDED, headers)
    assert accepts(f"{OLD},{UNPADDED}", their_headers([UNPADDED]))  # receiver holding both
    other = "whsec_" + base64.b64encode(b"a-third-unrelated-key").decode()
    key = standard_webhook_key(other)
    with pytest.raises(Exception, match="any active key"):
        verify_standard_webhook([key], headers, body(), time.time())


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.booleans())
def test_every_key_form_they_accept_gives_their_key(raw: bytes, padded: bool) -> None:
    text = base64.b64encode(raw).decode()
    secret = "whsec_" + (text if padded else text.rstrip("="))
    assert standard_webhook_key(secret) == Webhook(secret)._whsecret == raw
