"""Secret rotation without a restart, on the session's moto_server (SSM over HTTP, Powertools
Parameters, boto3) and the GME emulator (the real SDK): a rotated webhook key or Tencent
credential is in use within the refresh interval, early after an authentication failure at most
once per interval, and a flood of bad or unsigned requests never becomes a flood of SSM calls.

The interval is crossed with an injected clock, not by sleeping.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from handler.adapters import secrets
from handler.bootstrap import app
from handler.domain.signatures import sign_standard_webhook, standard_webhook_key
from handler.entrypoints import webhook
from handler.tools.local import http_event
from tests.conftest import Stack, load_event
from tests.servers import moto_env

PREFIX = "/gme-autorecord/rotation-test"
KEYS = {name: "whsec_" + base64.b64encode(f"rotation-{name}".encode()).decode() for name in "ABCD"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def pass_interval(self) -> None:
        self.now += secrets.REFRESH_SECONDS


@pytest.fixture
def ssm(stack: Stack, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """SSM on moto for the stack; counts every fetch of a secret reference."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import base

    moto_env(monkeypatch, moto_url, "ssm")
    base.DEFAULT_PROVIDERS.clear()  # Powertools builds its client once, from the environment
    fetches: list[str] = []
    real = secrets.resolve

    def counted(reference: str) -> str:
        fetches.append(reference)
        return real(reference)

    monkeypatch.setattr(secrets, "resolve", counted)
    client = boto3.client("ssm")
    client.fetches = fetches
    yield client
    base.DEFAULT_PROVIDERS.clear()


def put(ssm: Any, name: str, value: str) -> None:
    ssm.put_parameter(Name=f"{PREFIX}/{name}", Value=value, Type="SecureString", Overwrite=True)


def start(ssm: Any, monkeypatch: pytest.MonkeyPatch, **parameters: str) -> Clock:
    """Each `VARIABLE=value` as a parameter the variable refers to, then a fresh process:
    nothing built, the refresh clock injected."""
    for variable, value in parameters.items():
        put(ssm, variable, value)
        monkeypatch.setenv(variable, f"ssm:{PREFIX}/{variable}")
    clock = Clock()
    app.reset()
    app.secret_settings().clock = clock
    return clock


counter = iter(range(10**6))


def room_event(stack: Stack, secret: str | None) -> int:
    """POST a new room's event signed with `secret` (None: unsigned); the HTTP status."""
    n = next(counter)
    doc = {**load_event("room-created.json"), "id": f"evt-rot-{n}", "room_id": f"ranked-rot-{n}"}
    raw = json.dumps(doc).encode()
    stamp = int(time.time())
    headers = {"content-type": "application/json"}
    if secret is not None:
        signature = sign_standard_webhook(standard_webhook_key(secret), f"m-{n}", stamp, raw)
        headers.update({"webhook-id": f"m-{n}", "webhook-timestamp": str(stamp),
                        "webhook-signature": signature})  # fmt: skip
    event = http_event("POST", "/v1/room-events", headers, raw)
    result = webhook.handler(event, stack.context("webhook"))
    status: int = result["statusCode"]
    return status


def test_a_rotated_webhook_key_is_live_after_the_interval_and_the_removed_one_refused(
    stack: Stack, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = start(ssm, monkeypatch, WEBHOOK_SECRETS=KEYS["A"])
    assert room_event(stack, KEYS["A"]) == 200
    put(ssm, "WEBHOOK_SECRETS", f"{KEYS['A']},{KEYS['B']}")  # rotation: the new key beside
    clock.now += secrets.REFRESH_SECONDS - 1
    assert room_event(stack, KEYS["A"]) == 200  # within the interval: the values read at start
    clock.now += 1
    assert room_event(stack, KEYS["B"]) == 200  # read again on the interval, no failure needed
    put(ssm, "WEBHOOK_SECRETS", KEYS["B"])  # the old key removed
    clock.pass_interval()
    assert room_event(stack, KEYS["A"]) == 401
    assert room_event(stack, KEYS["B"]) == 200
    assert stack.starts() == 4


def test_a_bad_signature_reads_the_keys_again_at_most_once_per_interval(
    stack: Stack, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = start(ssm, monkeypatch, WEBHOOK_SECRETS=KEYS["A"])
    assert room_event(stack, KEYS["A"]) == 200
    assert len(ssm.fetches) == 1
    put(ssm, "WEBHOOK_SECRETS", KEYS["B"])
    assert (
        room_event(stack, KEYS["B"]) == 200
    )  # fails with the keys in use: read again, then verified
    assert len(ssm.fetches) == 2
    assert room_event(stack, KEYS["A"]) == 401  # the removed key, at once
    # A flood of bad and of unsigned requests costs no further fetch within the interval.
    for _ in range(100):
        assert room_event(stack, KEYS["D"]) == 401
        assert room_event(stack, None) == 401
    assert len(ssm.fetches) == 2
    put(ssm, "WEBHOOK_SECRETS", KEYS["C"])
    assert room_event(stack, KEYS["C"]) == 401  # the early read of this interval is spent
    clock.pass_interval()
    assert room_event(stack, KEYS["C"]) == 200
    assert len(ssm.fetches) == 3
    assert stack.starts() == 3


def test_rotated_tencent_credentials_are_taken_by_the_same_client(
    stack: Stack, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = start(
        ssm,
        monkeypatch,
        TENCENTCLOUD_SECRET_ID=DEFAULT_SECRET_ID,
        TENCENTCLOUD_SECRET_KEY=DEFAULT_SECRET_KEY,
    )
    secret = "whsec_dGVzdC1zdWl0ZS13ZWJob29rLWtleQ=="  # the stack's WEBHOOK_SECRETS
    assert room_event(stack, secret) == 200
    gateway = app.gme()
    # Rotation: the account accepts only the new pair, the parameters hold it.
    stack.emulator.set_credentials({"AKIDrotatedone": "rotated-secret-key-one"})
    put(ssm, "TENCENTCLOUD_SECRET_ID", "AKIDrotatedone")
    put(ssm, "TENCENTCLOUD_SECRET_KEY", "rotated-secret-key-one")
    fetched = len(ssm.fetches)
    assert room_event(stack, secret) == 200  # AuthFailure: read again, the call repeated once
    assert len(ssm.fetches) == fetched + 2
    # Rotated again within the interval: taken on the interval, before any call fails.
    stack.emulator.set_credentials({"AKIDrotatedtwo": "rotated-secret-key-two"})
    put(ssm, "TENCENTCLOUD_SECRET_ID", "AKIDrotatedtwo")
    put(ssm, "TENCENTCLOUD_SECRET_KEY", "rotated-secret-key-two")
    clock.pass_interval()
    assert room_event(stack, secret) == 200
    assert app.gme() is gateway  # one gateway, one pooled client, whatever the credentials
    calls = stack.emulator.calls("StartRecord")
    assert [c.error_code for c in calls] == [None, "AuthFailure.SecretIdNotFound", None, None]
    assert len({c.task_id for c in calls if c.task_id}) == 3  # one task per room, no second


def test_an_auth_failure_is_repeated_only_with_changed_credentials(emulator: Any) -> None:
    """The SDK adapter alone, on the emulator: asked to re-read after an AuthFailure, unchanged
    credentials are not tried twice; new ones go on the same client and the call is repeated
    once."""
    from handler.adapters.gme_client import TencentGme
    from handler.domain.decision import RecordPlan
    from handler.domain.gme import GmeError

    old = (DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, None)
    new = ("AKIDrotatedthree", "rotated-secret-key-three", None)
    current, stored = [old], [old]  # in use / in the secret store

    def reread() -> bool:
        current[0] = stored[0]
        return True

    sdk = TencentGme(emulator.url, *old, timeout_seconds=2, credentials=lambda: current[0],
                     on_auth_failure=reread)  # fmt: skip
    emulator.set_credentials({new[0]: new[1]})
    with pytest.raises(GmeError, match="AuthFailure"):
        sdk.start_record(1400000000, "room-before", RecordPlan())
    stored[0] = new
    assert sdk.start_record(1400000000, "room-after", RecordPlan())
    assert [c.error_code for c in emulator.calls("StartRecord")] == [
        "AuthFailure.SecretIdNotFound",  # nothing new to read: not repeated
        "AuthFailure.SecretIdNotFound",
        None,  # repeated once with the new pair
    ]
