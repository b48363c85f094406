"""Every sample event in events/ parsed into what it must become, bare and in every envelope a
message arrives in (SQS, SNS, EventBridge, a mixed batch).

The samples are what docs/formats.md points to and the README's `python -m handler send` posts,
so each must parse as its fields say, and a sample added to events/ without a line here fails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.inbound import (
    IgnoredEvent,
    InvalidEvent,
    parse_json,
    parse_message,
    parse_room_event_v1,
)
from tests.unit.inbound_helpers import APP_ID, EVENTS, load, room_event_v1, sqs_bodies, trtc

T0 = datetime(2026, 11, 23, 21, 0, 0, tzinfo=UTC)


# --- the sample events ---------------------------------------------------------------------

# Every room-level sample body (not a Lambda envelope) and what it must become.
EXPECTED_BODIES: dict[str, dict[str, Any] | None] = {
    "room-created.json": {
        "kind": EventKind.ROOM_CREATED,
        "event_id": "evt-0001-ranked-created",
        "biz_id": APP_ID,
        "room_id": "ranked-eu-1042",
        "session": "match-7f3a",
        "occurred_at": T0,
        "format": InboundFormat.ROOM_EVENT_V1,
        "attributes": {"mode": "ranked", "players": 10, "region": "eu"},
    },
    "room-created-practice.json": {
        "kind": EventKind.ROOM_CREATED,
        "event_id": "evt-0002-practice-created",
        "biz_id": APP_ID,
        "room_id": "practice-17",
        "session": "p-1",
        "occurred_at": T0,
        "format": InboundFormat.ROOM_EVENT_V1,
        "attributes": {"mode": "casual"},
    },
    "room-closed.json": {
        "kind": EventKind.ROOM_CLOSED,
        "event_id": "evt-0003-ranked-closed",
        "biz_id": APP_ID,
        "room_id": "ranked-eu-1042",
        "session": "match-7f3a",
        "occurred_at": datetime(2026, 11, 23, 21, 40, tzinfo=UTC),
        "format": InboundFormat.ROOM_EVENT_V1,
        "attributes": {},
    },
    "trtc-room-created.json": {
        "kind": EventKind.ROOM_CREATED,
        "event_id": "trtc:1400000000:support-1001:101:1795467600120",
        "biz_id": APP_ID,
        "room_id": "support-1001",
        "session": "trtc-1795467600120",
        "occurred_at": datetime(2026, 11, 23, 21, 0, 0, 120000, tzinfo=UTC),
        "format": InboundFormat.TRTC,
        "attributes": {"trtc_user_id": "agent-7"},
    },
    "trtc-room-dismissed.json": {
        "kind": EventKind.ROOM_CLOSED,
        "event_id": "trtc:1400000000:support-1001:102:1795469400450",
        "biz_id": APP_ID,
        "room_id": "support-1001",
        "session": "close",
        "occurred_at": datetime(2026, 11, 23, 21, 30, 0, 450000, tzinfo=UTC),
        "format": InboundFormat.TRTC,
        "attributes": {},
    },
    "gme-recording-started.json": None,  # accepted, ignored
}
# Lambda trigger envelopes, covered by the SQS/HTTP tests below and by tests/unit/test_ingest.py.
ENVELOPES = {
    "http-room-created.json",
    "http-trtc-room-created.json",
    "schedule.json",
    "sqs-mixed-batch.json",
    "sqs-room-created.json",
    "sqs-trtc-room-created.json",
    "sqs-wrapped-sns-eventbridge.json",
}


def test_every_sample_event_is_covered_here() -> None:
    on_disk = {p.name for p in EVENTS.glob("*.json")}
    assert on_disk == set(EXPECTED_BODIES) | ENVELOPES


@pytest.mark.parametrize("name", sorted(EXPECTED_BODIES))
def test_sample_body_parses_to_expected_fields(name: str) -> None:
    expected = EXPECTED_BODIES[name]
    event = parse_message(load(name), EventSource.QUEUE, sdk_app_id=str(APP_ID))
    if expected is None:
        assert isinstance(event, IgnoredEvent)
        assert event.format is InboundFormat.GME_RECORDING
        return
    assert isinstance(event, RoomEvent)
    assert event.source is EventSource.QUEUE
    assert event.model_dump(exclude={"source"}) == expected


def test_room_event_v1_defaults_to_webhook_source_and_keeps_utc() -> None:
    event = parse_room_event_v1(load("room-created.json"))
    assert event.source is EventSource.WEBHOOK
    assert event.occurred_at.utcoffset() is not None
    assert event.occurred_at == T0


def test_room_event_v1_time_offset_is_kept_as_the_same_instant() -> None:
    event = parse_room_event_v1(room_event_v1(time="2026-11-24T05:00:00+08:00"))
    assert event.occurred_at == T0


def test_sqs_room_created_body_parses() -> None:
    [(body, app_id)] = sqs_bodies("sqs-room-created.json")
    event = parse_message(parse_json(body), EventSource.QUEUE, app_id)
    assert isinstance(event, RoomEvent)
    assert (event.room_id, event.session, event.source) == (
        "ranked-eu-1042",
        "match-7f3a",
        EventSource.QUEUE,
    )


def test_sqs_trtc_body_takes_app_id_from_message_attribute() -> None:
    [(body, app_id)] = sqs_bodies("sqs-trtc-room-created.json")
    assert app_id == "1400000000"
    event = parse_message(parse_json(body), EventSource.QUEUE, app_id)
    assert isinstance(event, RoomEvent)
    assert event.biz_id == APP_ID
    assert event.format is InboundFormat.TRTC


def test_sqs_sns_and_eventbridge_wrapped_bodies_are_unwrapped() -> None:
    events = [
        parse_message(parse_json(body), EventSource.QUEUE, app_id)
        for body, app_id in sqs_bodies("sqs-wrapped-sns-eventbridge.json")
    ]
    assert [(e.event_id, e.room_id, e.session) for e in events] == [  # type: ignore[union-attr]
        ("evt-0004-via-sns", "ranked-eu-2001", "m-2"),
        ("evt-0005-via-eventbridge", "ranked-eu-3001", "m-3"),
    ]
    assert all(e.source is EventSource.QUEUE for e in events)  # type: ignore[union-attr]


def test_sqs_mixed_batch_accepts_the_good_record_and_names_each_bad_one() -> None:
    results: list[Any] = []
    for body, app_id in sqs_bodies("sqs-mixed-batch.json"):
        try:
            results.append(parse_message(parse_json(body), EventSource.QUEUE, app_id).event_id)
        except InvalidEvent as exc:
            results.append((exc.code, exc.field))
    assert results == [
        "evt-0006-good",
        ("invalid_json", None),
        ("invalid_field", "biz_id"),
        ("unknown_format", None),
    ]


def test_scheduled_eventbridge_event_is_not_a_room_event() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_message(load("schedule.json"), EventSource.SCHEDULE)
    assert info.value.code == "unknown_format"


def test_sns_envelope_carries_sdk_app_id_for_trtc() -> None:
    sns = {
        "Type": "Notification",
        "Message": json.dumps(trtc()),
        "MessageAttributes": {"SdkAppId": {"Type": "String", "Value": "1400000001"}},
    }
    event = parse_message(sns, EventSource.QUEUE)
    assert isinstance(event, RoomEvent)
    assert event.biz_id == 1400000001


def test_eventbridge_inside_sns_is_unwrapped() -> None:
    inner = {"detail-type": "RoomCreated", "detail": room_event_v1(id="evt-nested")}
    sns = {"Type": "Notification", "Message": json.dumps(inner)}
    event = parse_message(sns, EventSource.QUEUE)
    assert isinstance(event, RoomEvent)
    assert event.event_id == "evt-nested"


def test_sns_message_that_is_not_json_is_invalid_json() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_message({"Type": "Notification", "Message": "{oops"}, EventSource.QUEUE)
    assert info.value.code == "invalid_json"


def test_normalised_event_round_trips_through_the_queue() -> None:
    event = parse_room_event_v1(load("room-created.json"))
    again = parse_message(json.loads(event.model_dump_json()), EventSource.QUEUE)
    assert again == event.with_source(EventSource.QUEUE)
