"""The schema-driven hostile run: HOSTILE_REQUESTS generated requests (default 10,000) through
the Lambda entry in queue mode against moto_server, plus HOSTILE_HTTP_REQUESTS (default 300)
through the local HTTP server. Zero 5xx, zero unhandled exceptions, zero GME calls, every
status documented, nothing accepted that a rightful sender did not sign, and exactly one queue
message per accepted event."""

from __future__ import annotations

import http.client
import json
import os
import time
from collections import Counter
from typing import Any

import pytest

from handler.bootstrap import app
from handler.entrypoints import webhook
from handler.tools.local import LocalContext
from tests.conftest import BIZ_ID, TRTC_KEY, Stack
from tests.webhook.conftest import Queue
from tests.webhook.hostile import Case, Generator, documented_statuses

pytestmark = pytest.mark.slow


def _count(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def check(case: Case, status: int, body: bytes | str) -> dict[str, Any]:
    where = f"case {case.index} ({case.label}, {case.method} {case.path})"
    assert status < 500, f"{where}: {status} {body!r}"
    assert status in documented_statuses(case.path, case.method), f"{where}: {status}"
    answer: dict[str, Any] = json.loads(body)
    if status >= 400:
        assert answer["code"], where
        assert answer["message"], where
    else:
        assert case.rightful, f"{where}: accepted without a rightful signature: {answer}"
    return answer


def _run_through_lambda_entry(
    generator: Generator, total: int, queue: Queue
) -> tuple[Counter[int], Counter[str], float]:
    statuses: Counter[int] = Counter()
    codes: Counter[str] = Counter()
    fresh_accepts = 0
    began = time.perf_counter()
    for index in range(total):
        case = generator.case(index)
        result = webhook.handler(case.event, LocalContext("webhook"))
        answer = check(case, result["statusCode"], result["body"])
        statuses[result["statusCode"]] += 1
        codes[answer.get("code") or answer.get("status", "")] += 1
        if result["statusCode"] == 202 and not answer.get("duplicate"):
            fresh_accepts += 1
    assert len(queue.receive_all()) == fresh_accepts
    # The run must exercise both sides: real acceptances and the main refusals.
    assert statuses[202] > 0
    assert {400, 401, 413, 415, 422} <= set(statuses)
    return statuses, codes, time.perf_counter() - began


def test_generated_requests_through_the_lambda_entry(
    stack: Stack, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    total = _count("HOSTILE_REQUESTS", 10_000)
    seed = _count("HOSTILE_SEED", 20261123)
    statuses, codes, elapsed = _run_through_lambda_entry(Generator(seed, time.time()), total, queue)
    with capsys.disabled():  # the count run is part of the proof: always shown
        print(
            f"\nhostile run: {total} generated requests (seed {seed}) in {elapsed:.1f} s; "
            f"statuses {dict(sorted(statuses.items()))}; top codes {codes.most_common(8)}"
        )
    assert stack.emulator.calls() == []


def test_generated_requests_with_the_trtc_key_bound_to_its_app(
    stack: Stack, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run with `TRTC_CALLBACK_KEY=BIZ_ID:key`: a TRTC body signed for BIZ_ID and sent
    under another SdkAppId header is never accepted, whatever the body says."""
    monkeypatch.setenv("TRTC_CALLBACK_KEY", f"{BIZ_ID}:{TRTC_KEY}")
    app.reset()
    total = _count("HOSTILE_REQUESTS", 10_000) // 5
    seed = _count("HOSTILE_SEED", 20261123) + 2
    _, codes, _ = _run_through_lambda_entry(
        Generator(seed, time.time(), trtc_key_bound=True), total, queue
    )
    assert codes["bad_signature"] > 0
    assert stack.emulator.calls() == []


def test_generated_requests_through_the_local_http_server(
    stack: Stack, queue: Queue, local_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    total = _count("HOSTILE_HTTP_REQUESTS", 300)
    generator = Generator(_count("HOSTILE_SEED", 20261123) + 1, time.time())
    statuses: Counter[int] = Counter()
    conn = http.client.HTTPConnection("127.0.0.1", local_server, timeout=10)
    for index in range(total):
        case = generator.case(index)
        event = case.event
        if event["isBase64Encoded"]:  # the wire carries bytes: the server frames them itself
            try:
                body = base64.b64decode(event["body"], validate=True)
            except ValueError:
                continue
        else:
            body = event["body"].encode("utf-8", "surrogatepass")
        headers = {
            k: v.encode("latin-1", "replace").decode("latin-1").replace("\n", " ")
            for k, v in event["headers"].items()
        }
        conn.request(case.method, case.path.replace("%00", "%2500"), body=body, headers=headers)
        response = conn.getresponse()
        check(case, response.status, response.read())
        statuses[response.status] += 1
    conn.close()
    print(
        f"\nhostile HTTP run: {sum(statuses.values())} requests; {dict(sorted(statuses.items()))}"
    )
    assert stack.emulator.calls() == []
