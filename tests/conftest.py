"""Shared fixtures: a real GME emulator on a free loopback port, and a configured local stack.

The stack fixture points the real code at the emulator (real SDK, real HTTP), a real SQLite
idempotency file in tmp_path and the shipped example policy, exactly as `make run` does.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from handler.bootstrap import app
from handler.domain.signatures import sign_standard_webhook, sign_trtc, standard_webhook_key
from handler.tools.local import LocalContext, http_event

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
WEBHOOK_SECRET = "whsec_" + "dGVzdC1zdWl0ZS13ZWJob29rLWtleQ=="  # "test-suite-webhook-key"
TRTC_KEY = "test-suite-trtc-key"
GME_KEY = "test-suite-gme-key"
BIZ_ID = 1400000000


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@dataclass
class Stack:
    emulator: GmeEmulator
    store_path: Path

    def context(self, function: str = "test") -> LocalContext:
        return LocalContext(function)

    def room_event_request(self, body: bytes | dict[str, Any], **over: str) -> dict[str, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        msg_id = over.pop("msg_id", f"msg-{uuid.uuid4()}")
        stamp = int(over.pop("timestamp", str(int(time.time()))))
        key = standard_webhook_key(WEBHOOK_SECRET)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard_webhook(key, msg_id, stamp, raw),
            **over,
        }
        return http_event("POST", "/v1/room-events", headers, raw)

    def trtc_request(self, body: dict[str, Any], app_id: str = str(BIZ_ID)) -> dict[str, Any]:
        body = {**body, "CallbackTs": int(time.time() * 1000)}
        raw = json.dumps(body).encode()
        headers = {
            "content-type": "application/json",
            "sign": sign_trtc(TRTC_KEY, raw),
            "sdkappid": app_id,
        }
        return http_event("POST", "/v1/trtc/room-callbacks", headers, raw)

    def starts(self) -> int:
        return len(self.emulator.calls("StartRecord"))


def sqs_event(*bodies: Any, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    records = []
    for i, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"m-{i}-{uuid.uuid4()}",
                "receiptHandle": f"rh-{i}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {
                    k: {"stringValue": v, "dataType": "String"}
                    for k, v in (attributes or {}).items()
                },
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:test",
                "awsRegion": "eu-west-1",
            }
        )
    return {"Records": records}


@pytest.fixture(autouse=True)
def _deployed_process_state() -> Iterator[None]:
    """A CLI command run in-process sets up the process for a person, as `python -m handler`
    does: short log lines on stderr, EMF metrics off (POWERTOOLS_METRICS_DISABLED). Every test
    starts from the deployed state: JSON lines, the environment as it was."""
    from handler.bootstrap.observability import logger
    from handler.tools.locallog import _state

    handler = logger.registered_handler
    saved = (handler.formatter, handler.level, getattr(handler, "stream", None), dict(_state))
    environment = dict(os.environ)
    yield
    if os.environ != environment:
        os.environ.clear()
        os.environ.update(environment)
    formatter, level, stream, state = saved
    handler.setFormatter(formatter)
    handler.setLevel(level)
    if stream is not None and hasattr(handler, "setStream"):
        handler.setStream(stream)
    _state.clear()
    _state.update(state)


@pytest.fixture
def emulator() -> Iterator[GmeEmulator]:
    with GmeEmulator() as emu:
        yield emu


@pytest.fixture
def stack(
    emulator: GmeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    env = {
        "GME_ENDPOINT": emulator.url,
        "TENCENTCLOUD_SECRET_ID": DEFAULT_SECRET_ID,
        "TENCENTCLOUD_SECRET_KEY": DEFAULT_SECRET_KEY,
        "IDEMPOTENCY_STORE": f"sqlite:///{tmp_path}/idempotency.db",
        # Explicit, so tests that switch IDEMPOTENCY_STORE to DynamoDB or Redis keep a ledger.
        "LEDGER_STORE": f"sqlite:///{tmp_path}/ledger.db",
        "RECORDING_POLICY": str(ROOT / "policies" / "default.yaml"),
        "WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "TRTC_CALLBACK_KEY": TRTC_KEY,  # bare, as the TRTC console hands it out
        "TRTC_SDK_APP_ID": str(BIZ_ID),  # ...so the deployment names the app it verifies
        "GME_CALLBACK_KEY": GME_KEY,
        "GME_TIMEOUT_SECONDS": "2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RECORD_QUEUE_URL", raising=False)
    app.reset()
    yield Stack(emulator=emulator, store_path=tmp_path / "idempotency.db")
    app.reset()


@pytest.fixture
def local_server(stack: Stack) -> Iterator[int]:
    """The local HTTP server (`make run`'s) on a free port, in this process, on `stack`."""
    import threading
    from http.server import ThreadingHTTPServer

    from handler.tools.local import _Handler

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- real backing services


@pytest.fixture(scope="session")
def moto() -> Iterator[Any]:
    """One moto_server (DynamoDB, SQS) on a free loopback port for the whole session."""
    from tests.servers import moto_server

    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto_url(moto: Any) -> str:
    """The session's moto_server as an endpoint URL, for tests that set it in the environment."""
    url: str = moto.url
    return url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One redis-server (no persistence, TLS off) on a free loopback port for the session."""
    from tests.servers import redis_server

    with redis_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "dynamodb", "redis"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """An empty idempotency store of each family, as an ``IDEMPOTENCY_STORE`` URL.

    DynamoDB gets a fresh table shaped like serverless.yml's; boto3 finds moto through
    ``AWS_ENDPOINT_URL_DYNAMODB``, as a deployed function would find the real endpoint.
    """
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/idempotency.db"
    if kind == "dynamodb":
        from tests.servers import create_idempotency_table, moto_env

        server = request.getfixturevalue("moto")
        moto_env(monkeypatch, server.url, "dynamodb")
        table = f"idem-{uuid.uuid4().hex[:12]}"
        create_idempotency_table(server, table)
        return f"dynamodb://{table}"
    url: str = request.getfixturevalue("redis_url")
    import redis

    redis.Redis.from_url(url).flushdb()
    return url
