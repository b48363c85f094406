"""Contract = behaviour: schemathesis generates requests from the published docs/openapi.json,
sends them to the local HTTP server (`python -m handler run`, GME emulator behind it) and checks
every answer against the same document: no server error, a documented status code, a documented
content type, a body that matches the documented schema.

Requests the schema calls valid (positive) and, for the POST routes, invalid (negative). Half are
signed, fresh and sent for the configured app (the local development keys), so the generated
bodies get past authentication into parsing, the policy and GME; the other half carry
schemathesis' own headers and meet the refusals. A signed positive body must be taken.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from handler.domain.signatures import sign_standard_webhook, sign_trtc, standard_webhook_key
from handler.ingress.ingest import Route
from handler.tools import contract
from handler.tools.local import LOCAL_CALLBACK_KEY, LOCAL_TRTC_APP_ID, LOCAL_WEBHOOK_SECRET
from tests.e2e.test_local_run import _env, local_runner
from tests.webhook.hostile import gme_signature

EXAMPLES = 40  # per operation: the four operations take ~10 s together on a quiet machine
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_path(contract.OPENAPI_FILE)
OPERATIONS = {op.ok().label: op.ok() for op in SCHEMA.get_all_operations()}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = _env(tmp_path_factory.mktemp("schemathesis"))
    env["LOCAL_TICK_SECONDS"] = "0"
    with local_runner(env) as lines:
        while True:
            if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", lines.get(timeout=30)):
                yield m.group(1)
                return


def _bytes(body: Any) -> bytes:
    """The body as sent: negative cases may be raw bytes already."""
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _signed(path: str, body: Any, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """The body as sent, fresh where its format carries the time, and the headers that sign
    it for the local stack."""
    now = int(time.time())
    if isinstance(body, dict) and path == Route.TRTC.value:
        body = {**body, "CallbackTs": now * 1000}
    if isinstance(body, dict) and path == Route.GME_CALLBACK.value:
        body = {**body, "Timestamp": now}
    raw = _bytes(body)
    if path == Route.ROOM_EVENTS.value:
        key = standard_webhook_key(LOCAL_WEBHOOK_SECRET)
        headers = {**headers, "webhook-id": "st-1", "webhook-timestamp": str(now),
                   "webhook-signature": sign_standard_webhook(key, "st-1", now, raw)}  # fmt: skip
    elif path == Route.TRTC.value:
        headers = {
            **headers,
            "Sign": sign_trtc(LOCAL_CALLBACK_KEY, raw),
            "SdkAppId": LOCAL_TRTC_APP_ID,
        }
    elif path == Route.GME_CALLBACK.value:
        headers = {**headers, "Signature": gme_signature(raw, LOCAL_CALLBACK_KEY)}
    return raw, headers


@pytest.mark.parametrize(
    ("label", "mode"),
    [(label, GenerationMode.POSITIVE) for label in sorted(OPERATIONS)]
    + [(label, GenerationMode.NEGATIVE) for label in sorted(OPERATIONS) if "POST" in label],
)
def test_every_answer_is_the_documented_one(
    label: str, mode: GenerationMode, base_url: str
) -> None:
    operation = OPERATIONS[label]
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode), sign=st.booleans())
    def check(case: Any, sign: bool) -> None:
        headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
        body = None if isinstance(case.body, NotSet) else case.body
        if case.method.upper() == "GET":
            response = session.get(base_url + case.formatted_path, headers=headers, timeout=30)
        else:
            if sign:
                raw, headers = _signed(case.path, body, headers)
            else:
                raw = _bytes(body)
            headers["Content-Type"] = "application/json"
            response = session.post(
                base_url + case.formatted_path, data=raw, headers=headers, timeout=30
            )
        case.validate_response(response, checks=CHECKS)
        if sign and case.method.upper() == "POST" and mode is GenerationMode.POSITIVE:
            # What the contract calls a valid body, signed and fresh, is taken: done, queued,
            # or "retry later" (a retryable GME answer), never refused.
            assert response.status_code in (200, 202, 503), (response.status_code, response.text)

    check()
