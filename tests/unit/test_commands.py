"""Lifecycle commands on the wire: the worker's parse recognises each kind; every other parser
(the webhook's, an SNS or EventBridge envelope) refuses them; a bad command is a clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler.domain.commands import Check, CommandKind, EndWindow, Follow, Renew, StartWindow
from handler.domain.decision import Decision, RecordPlan
from handler.domain.events import EventSource
from handler.domain.inbound import InvalidEvent, parse_message, parse_queue_message

BIZ = 1400000000
DECISION = Decision(
    record=True, rule="schedule:s", reason="r", policy_version="v", plan=RecordPlan()
)
COMMANDS = [
    StartWindow(
        biz_id=BIZ,
        room_id="r",
        session="window-2026-12-01T10:00:00Z",
        at=1.5,
        schedule="s",
        ends_at=3600.0,
        decision=DECISION,
    ),
    EndWindow(biz_id=BIZ, room_id="r", session="window-x", at=2.0),
    Renew(biz_id=BIZ, room_id="r", session="m", at=3.0, generation=2, task_id="9007199254740993"),
    Check(biz_id=BIZ, room_id="r", session="m", at=4.0, checked_at=0.25),
    Follow(
        biz_id=BIZ,
        room_id="r",
        session="m",
        at=5.0,
        task_id="9007199254740995",
        policy_version="sha256:0feb17af3455c016",
    ),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.lifecycle_command.value)
def test_the_worker_parses_each_command_back_exactly(command: Any) -> None:
    doc = json.loads(command.body())
    assert doc["lifecycle_command"] == command.lifecycle_command.value
    assert parse_queue_message(doc, EventSource.QUEUE) == command


def test_task_ids_beyond_2_53_survive_the_round_trip() -> None:
    renew = COMMANDS[2]
    parsed = parse_queue_message(json.loads(renew.body()), EventSource.QUEUE)
    assert isinstance(parsed, Renew)
    assert parsed.task_id == "9007199254740993"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.lifecycle_command.value)
def test_no_other_parser_accepts_a_command(command: Any) -> None:
    doc = json.loads(command.body())
    with pytest.raises(InvalidEvent) as bare:
        parse_message(doc, EventSource.WEBHOOK)
    assert (bare.value.code, bare.value.field) == ("command_not_accepted", "lifecycle_command")
    sns = {"Type": "Notification", "Message": json.dumps(doc)}
    bridge = {"detail-type": "x", "detail": doc}
    for wrapped in (sns, bridge):  # not even the worker unwraps a command from an envelope
        with pytest.raises(InvalidEvent) as inner:
            parse_queue_message(wrapped, EventSource.QUEUE)
        assert inner.value.code == "command_not_accepted"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"generation": -1}, "task.renew.generation"),
        ({"task_id": ""}, "task.renew.task_id"),
        ({"biz_id": 0}, "task.renew.biz_id"),
        ({"surprise": 1}, "task.renew.surprise"),
    ],
)
def test_a_malformed_command_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    doc = {**json.loads(COMMANDS[2].body()), **change}
    with pytest.raises(InvalidEvent) as refused:
        parse_queue_message(doc, EventSource.QUEUE)
    assert refused.value.code == "invalid_field"
    assert refused.value.field == field


@pytest.mark.parametrize("kind", ["room.delete", ["window.start"], None, 7])
def test_an_unknown_command_is_refused_by_name(kind: Any) -> None:
    doc = {**json.loads(COMMANDS[1].body()), "lifecycle_command": kind}
    with pytest.raises(InvalidEvent) as refused:
        parse_queue_message(doc, EventSource.QUEUE)
    assert (refused.value.code, refused.value.field) == ("unknown_command", "lifecycle_command")
    assert "window.start" in refused.value.message


def test_command_kinds_are_stable_wire_names() -> None:
    # Messages already on the queue during a deploy must still parse: never rename these.
    assert [k.value for k in CommandKind] == [
        "window.start",
        "window.end",
        "task.renew",
        "session.check",
        "session.follow",
    ]
