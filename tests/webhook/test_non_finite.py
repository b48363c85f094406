"""Non-finite numbers (`1e400` overflows to infinity) are refused at every entry, and what the
webhook accepts is decided the same inline and after the queue round trip.

Before they were refused, a signed `"players": 1e400` was recorded inline (infinity >= 2) and
skipped in queue mode (the queue message said `null`): one event, two decisions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.domain.events import EventSource, RoomEvent
from handler.domain.inbound import parse_json, parse_message
from handler.domain.policy import load_policy
from handler.entrypoints import worker
from handler.ingress.ingest import Rejected, Route, ingest
from handler.tools.local import LocalContext
from tests.conftest import ROOT, Stack, load_event, sqs_event
from tests.webhook.conftest import call
from tests.webhook.test_properties import SETTINGS, signed_headers
from tests.webhook.test_refusals import trtc_raw

OVERFLOWING = ["1e400", "-1e400", "1E999", "-9.9e9999"]
POLICY = load_policy(ROOT / "policies" / "default.yaml")


def with_players(literal: str, doc: dict[str, Any] | None = None) -> bytes:
    """A room event whose `attributes.players` is written exactly as `literal`."""
    doc = doc or load_event("room-created.json")
    doc = {**doc, "attributes": {**doc.get("attributes", {}), "players": "@PLAYERS@"}}
    return json.dumps(doc).replace('"@PLAYERS@"', literal).encode()


@pytest.mark.parametrize("literal", OVERFLOWING)
def test_webhook_refuses_an_overflowing_number_naming_the_field(stack: Stack, literal: str) -> None:
    status, body, _ = call(stack, stack.room_event_request(with_players(literal)))
    assert (status, body["code"], body["field"]) == (422, "non_finite_number", "attributes.players")
    assert stack.emulator.calls() == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_webhook_refuses_non_finite_literals(stack: Stack, literal: str) -> None:
    status, body, _ = call(stack, stack.room_event_request(with_players(literal)))
    assert (status, body["code"]) == (400, "invalid_json")
    assert stack.emulator.calls() == []


def test_trtc_body_with_an_overflowing_number_is_refused(stack: Stack) -> None:
    doc = load_event("trtc-room-created.json")
    doc["EventInfo"] = {**doc["EventInfo"], "Weight": "@W@"}
    request = stack.trtc_request(doc)
    raw = request["body"].replace('"@W@"', "1e400").encode()
    status, body, _ = call(stack, trtc_raw(raw))
    assert (status, body["code"], body["field"]) == (422, "non_finite_number", "EventInfo.Weight")
    assert stack.emulator.calls() == []


def test_queue_worker_fails_the_item_with_the_reason(stack: Stack) -> None:
    good = load_event("room-created.json")
    bad = with_players("1e400", {**good, "id": "evt-overflow"}).decode()
    response, report = worker.process_batch(sqs_event(bad, good), LocalContext("worker"))
    assert [item["ok"] for item in report] == [False, True]
    assert report[0]["reason"].startswith("non_finite_number: attributes.players")
    assert response["batchItemFailures"] == [{"itemIdentifier": report[0]["message_id"]}]
    assert stack.starts() == 1  # the good one only


@pytest.mark.parametrize("command", [["explain"], ["invoke", "webhook"]])
def test_cli_refuses_an_event_file_with_one_line_and_exit_2(
    command: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(with_players("1e400"))
    result = subprocess.run(
        [sys.executable, "-m", "handler", *command, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "non_finite_number" in line
    assert "attributes.players" in line


#: Number literals written into the body as they are (json.dumps could not write most of them).
LITERALS = [*OVERFLOWING, "1e-400", "-0.0", "1.7976931348623157e308", "2.0", "2", "1e2"]
numbers = (
    st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(LITERALS)
)
attribute_values = (
    numbers | st.booleans() | st.none() | st.sampled_from(["ranked", "casual", "gold", ""])
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    players=numbers,
    extra=st.dictionaries(st.sampled_from(["mode", "tier", "score", "x"]), attribute_values),
    room=st.sampled_from(["ranked-eu-1", "tourney-9", "support-12", "practice-1"]),
)
def test_inline_and_queue_round_trip_decide_alike(
    players: Any, extra: dict[str, Any], room: str
) -> None:
    literals = {k: v if v in LITERALS else json.dumps(v)
                for k, v in {"players": players, **extra}.items()}  # fmt: skip
    doc = {**load_event("room-created.json"), "room_id": room}
    doc["attributes"] = {k: f"@{k}@" for k in literals}
    text = json.dumps(doc)
    for key, literal in literals.items():
        text = text.replace(f'"@{key}@"', literal)
    body, now = text.encode(), int(time.time())
    try:
        inline: Any = ingest(Route.ROOM_EVENTS, signed_headers(Route.ROOM_EVENTS, body, now),
                             body, SETTINGS, now=now)  # fmt: skip
    except Rejected as exc:
        inline = exc
    if isinstance(inline, Rejected):
        assert inline.status < 500
        if any(literal in OVERFLOWING for literal in literals.values()):
            assert inline.code == "non_finite_number"
        return
    assert isinstance(inline, RoomEvent)
    queued = parse_message(parse_json(inline.model_dump_json()), EventSource.QUEUE)
    assert isinstance(queued, RoomEvent)
    # The worker stamps source=queue; the rest of the event must survive the trip unchanged.
    assert queued.with_source(inline.source) == inline
    assert POLICY.decide(queued.with_source(inline.source), explain=False) == POLICY.decide(
        inline, explain=False
    )
