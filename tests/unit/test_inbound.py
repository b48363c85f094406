"""Parsing of every inbound format into `RoomEvent` / `IgnoredEvent`, and every refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.inbound import (
    IgnoredEvent,
    InvalidEvent,
    parse_json,
    parse_message,
    parse_room_event_v1,
    parse_trtc,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
INVALID = EVENTS / "invalid"
APP_ID = 1400000000
T0 = datetime(2026, 11, 23, 21, 0, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def sqs_bodies(name: str) -> list[tuple[Any, str | None]]:
    """(body, SdkAppId message attribute) for each record of a sample SQS event."""
    out = []
    for record in load(name)["Records"]:
        app_id = record.get("messageAttributes", {}).get("SdkAppId", {}).get("stringValue")
        out.append((record["body"], app_id))
    return out


def room_event_v1(**over: Any) -> dict[str, Any]:
    doc = load("room-created.json")
    doc.update(over)
    return doc


def trtc(event_type: int = 101, **info: Any) -> dict[str, Any]:
    return {
        "EventGroupId": 1,
        "EventType": event_type,
        "CallbackTs": 1795467600123,
        "EventInfo": {"RoomId": "support-1001", "EventMsTs": 1795467600120, **info},
    }


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


# --- TRTC ----------------------------------------------------------------------------------


def test_trtc_without_sdk_app_id_is_missing_app_id() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_trtc(trtc(), None)
    assert (info.value.code, info.value.field) == ("missing_app_id", "SdkAppId")
    with pytest.raises(InvalidEvent) as info:
        parse_message(trtc(), EventSource.QUEUE, sdk_app_id="")
    assert info.value.code == "missing_app_id"


@pytest.mark.parametrize("app_id", ["abc", "0", "-1", "1.5", "١٢٣", str(2**63)])
def test_trtc_with_bad_sdk_app_id_is_refused(app_id: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_trtc(trtc(), app_id)
    assert (info.value.code, info.value.field) == ("invalid_field", "SdkAppId")


def test_trtc_sdk_app_id_may_be_int_or_padded_string() -> None:
    a = parse_trtc(trtc(), APP_ID)
    b = parse_trtc(trtc(), f" {APP_ID} ")
    assert isinstance(a, RoomEvent)
    assert isinstance(b, RoomEvent)
    assert a.biz_id == b.biz_id == APP_ID


@pytest.mark.parametrize(
    ("group", "event_type"), [(1, 103), (1, 104), (2, 201), (2, 101), (3, 102)]
)
def test_trtc_events_other_than_room_created_or_dismissed_are_ignored(
    group: int, event_type: int
) -> None:
    doc = {**trtc(event_type), "EventGroupId": group}
    event = parse_message(doc, EventSource.WEBHOOK, sdk_app_id=str(APP_ID))
    assert isinstance(event, IgnoredEvent)
    assert event.format is InboundFormat.TRTC
    assert f"{group}/{event_type}" in event.reason


def test_ignored_trtc_event_needs_no_app_id() -> None:
    assert isinstance(parse_trtc(trtc(103), None), IgnoredEvent)


def test_trtc_session_is_stable_across_a_retried_identical_body() -> None:
    raw = json.dumps(trtc(UserId="agent-7")).encode()
    first = parse_message(parse_json(raw), EventSource.WEBHOOK, str(APP_ID))
    retry = parse_message(parse_json(raw), EventSource.QUEUE, str(APP_ID))
    assert isinstance(first, RoomEvent)
    assert isinstance(retry, RoomEvent)
    assert (first.session, first.event_id) == (retry.session, retry.event_id)


def test_trtc_session_follows_the_room_event_time_not_the_callback_time() -> None:
    first = parse_trtc(trtc(), APP_ID)
    redelivered = parse_trtc({**trtc(), "CallbackTs": 1795467660000}, APP_ID)
    next_life = parse_trtc(trtc(EventMsTs=1795471200000), APP_ID)
    assert isinstance(first, RoomEvent)
    assert isinstance(redelivered, RoomEvent)
    assert isinstance(next_life, RoomEvent)
    assert first.session == redelivered.session
    assert next_life.session != first.session


def test_trtc_session_falls_back_to_event_seconds_then_callback_time() -> None:
    doc = trtc()
    doc["EventInfo"] = {"RoomId": "r1", "EventTs": 1795467600}
    by_seconds = parse_trtc(doc, APP_ID)
    doc["EventInfo"] = {"RoomId": "r1"}
    by_callback = parse_trtc(doc, APP_ID)
    assert isinstance(by_seconds, RoomEvent)
    assert isinstance(by_callback, RoomEvent)
    assert by_seconds.session == "trtc-1795467600000"
    assert by_callback.session == "trtc-1795467600123"
    assert by_callback.occurred_at == datetime(2026, 11, 23, 21, 0, 0, 123000, tzinfo=UTC)


def test_trtc_numeric_room_id_becomes_a_string() -> None:
    event = parse_trtc(trtc(RoomId=12345), APP_ID)
    assert isinstance(event, RoomEvent)
    assert event.room_id == "12345"


def test_trtc_room_id_too_long_is_refused() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_trtc(trtc(RoomId="r" * 128), APP_ID)
    assert info.value.code == "invalid_field"
    assert info.value.field is not None
    assert info.value.field.startswith("EventInfo.")


def test_trtc_bad_room_id_names_the_wire_field() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_trtc(trtc(RoomId="has space"), APP_ID)
    assert info.value.field == "EventInfo.RoomId"


def test_trtc_timestamp_out_of_range_is_refused_not_crashing() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_trtc(trtc(EventMsTs=10**30), APP_ID)
    assert info.value.code == "invalid_field"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"EventGroupId": 1, "EventType": 101, "EventInfo": {"RoomId": "r"}}, "CallbackTs"),
        ({"EventGroupId": 1, "EventType": 101, "CallbackTs": 1}, "EventInfo"),
        (
            {"EventGroupId": 1, "EventType": 101, "CallbackTs": -1, "EventInfo": {"RoomId": "r"}},
            "CallbackTs",
        ),
    ],
)
def test_trtc_structural_errors_name_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_trtc(doc, APP_ID)
    assert (info.value.code, info.value.field) == ("invalid_field", field)


# --- refusals ------------------------------------------------------------------------------

EXPECTED_INVALID = {
    "biz-id-as-string.json": "biz_id",
    "missing-room-id.json": "room_id",
    "negative-biz-id.json": "biz_id",
    "room-id-control-chars.json": "room_id",
    "room-id-too-long.json": "room_id",
    "time-without-zone.json": "time",
    "unknown-field.json": "surprise",
    "unknown-type.json": "type",
}


def test_every_invalid_sample_is_covered_here() -> None:
    on_disk = {p.name for p in INVALID.iterdir()}
    assert on_disk == set(EXPECTED_INVALID) | {"not-json.txt"}


@pytest.mark.parametrize(("name", "field"), sorted(EXPECTED_INVALID.items()))
def test_invalid_sample_is_refused_naming_the_field(name: str, field: str) -> None:
    raw = (INVALID / name).read_bytes()
    with pytest.raises(InvalidEvent) as info:
        parse_message(parse_json(raw), EventSource.WEBHOOK)
    assert info.value.code == "invalid_field"
    assert info.value.field == field
    assert field in info.value.message
    assert info.value.as_dict() == {
        "code": "invalid_field",
        "message": info.value.message,
        "field": field,
    }


def test_invalid_sample_not_json_is_invalid_json() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_json((INVALID / "not-json.txt").read_bytes())
    assert info.value.code == "invalid_json"
    assert "field" not in info.value.as_dict()


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b"", b"[1,", '{"a": 1} x'])
def test_parse_json_refuses_garbage(raw: bytes | str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_json(raw)
    assert info.value.code == "invalid_json"


def test_room_id_of_127_chars_is_accepted_and_128_refused() -> None:
    assert parse_room_event_v1(room_event_v1(room_id="r" * 127)).room_id == "r" * 127
    with pytest.raises(InvalidEvent) as info:
        parse_room_event_v1(room_event_v1(room_id="r" * 128))
    assert info.value.field == "room_id"


@pytest.mark.parametrize(
    "room_id", ["a b", "tab\there", "nl\n", "room\x00", "del\x7f", "ünïcode", "", "\u3000"]
)
def test_room_id_with_control_space_or_non_ascii_is_refused(room_id: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_room_event_v1(room_event_v1(room_id=room_id))
    assert (info.value.code, info.value.field) == ("invalid_field", "room_id")


@pytest.mark.parametrize(
    "biz_id", [True, False, 2**63, 2**64, 0, -1, 1.5, 2.0**53, 1e300, "1", None]
)
def test_bad_biz_id_is_refused(biz_id: Any) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_room_event_v1(room_event_v1(biz_id=biz_id))
    assert (info.value.code, info.value.field) == ("invalid_field", "biz_id")


@pytest.mark.parametrize("biz_id", [1400000000.0, 2.0**53 - 1])
def test_an_integral_float_biz_id_below_2_53_is_that_integer(biz_id: float) -> None:
    """JSON Schema's `integer` (the published contract) counts 1400000000.0 as an integer."""
    event = parse_room_event_v1(room_event_v1(biz_id=biz_id))
    assert event.biz_id == int(biz_id)
    assert type(event.biz_id) is int


def test_largest_biz_id_is_accepted() -> None:
    assert parse_room_event_v1(room_event_v1(biz_id=2**63 - 1)).biz_id == 2**63 - 1


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"version": 2}, "version"),
        ({"session": ""}, "session"),
        ({"session": "s" * 129}, "session"),
        ({"id": "has space"}, "id"),
        ({"time": "yesterday"}, "time"),
        ({"time": 1795467600}, "time"),
        ({"attributes": {"nested": {"a": 1}}}, "attributes.nested"),
        ({"attributes": {"": 1}}, "attributes"),
        ({"attributes": [1]}, "attributes"),
        ({"attributes": {f"k{i}": i for i in range(65)}}, "attributes"),
    ],
)
def test_room_event_v1_field_refusals(over: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_room_event_v1(room_event_v1(**over))
    assert info.value.code == "invalid_field"
    assert info.value.field is not None
    assert info.value.field.startswith(field)


def test_room_event_v1_keeps_attribute_types() -> None:
    attrs = {"flag": True, "n": 1, "x": 1.5, "s": "1", "none": None}
    event = parse_room_event_v1(room_event_v1(attributes=attrs))
    assert event.attributes == attrs
    assert [type(v) for v in event.attributes.values()] == [bool, int, float, str, type(None)]


@pytest.mark.parametrize("doc", [[], "room", 1, None, True])
def test_non_object_body_is_invalid_body(doc: Any) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_message(doc, EventSource.QUEUE)
    assert info.value.code == "invalid_body"
    with pytest.raises(InvalidEvent):
        parse_room_event_v1(doc)


def test_unrecognised_object_is_unknown_format() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_message({"hello": "world"}, EventSource.QUEUE)
    assert info.value.code == "unknown_format"


# --- robustness ----------------------------------------------------------------------------

KNOWN_CODES = {"invalid_json", "invalid_body", "invalid_field", "missing_app_id", "unknown_format"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _near_miss(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The sample with some fields replaced by, or extended with, arbitrary JSON values."""
    return st.dictionaries(st.sampled_from([*base, "EventInfo", "extra"]), json_values).map(
        lambda over: {**base, **over}
    )


def _sns(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return inner.map(lambda doc: {"Type": "Notification", "Message": json.dumps(doc)})


def _eventbridge(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return inner.map(lambda doc: {"detail-type": "x", "detail": doc})


documents = st.one_of(
    json_values,
    _near_miss(load("room-created.json")),
    _near_miss(trtc()),
    _near_miss(trtc()["EventInfo"]).map(lambda info: {**trtc(), "EventInfo": info}),
    _near_miss(load("gme-recording-started.json")),
    _near_miss(json.loads(parse_room_event_v1(load("room-created.json")).model_dump_json())),
)
documents = st.one_of(documents, _sns(documents), _eventbridge(documents))


@settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(doc=documents, app_id=st.none() | st.text(max_size=12) | st.integers())
def test_parse_message_only_ever_raises_invalid_event(doc: Any, app_id: Any) -> None:
    outcome: RoomEvent | IgnoredEvent | InvalidEvent
    try:
        outcome = parse_message(doc, EventSource.QUEUE, app_id)
    except InvalidEvent as exc:  # anything else escapes and fails the test
        outcome = exc
    if isinstance(outcome, InvalidEvent):
        assert outcome.code in KNOWN_CODES
        assert outcome.message
    elif isinstance(outcome, RoomEvent):
        assert outcome.source is EventSource.QUEUE
        assert 0 < outcome.biz_id < 2**63
        assert 1 <= len(outcome.room_id) <= 127
    else:
        assert isinstance(outcome, IgnoredEvent)


@settings(max_examples=200, deadline=None, database=None)
@given(raw=st.binary(max_size=64) | st.text(max_size=64))
def test_parse_json_only_ever_raises_invalid_event(raw: bytes | str) -> None:
    code = None
    try:
        parse_json(raw)
    except InvalidEvent as exc:
        code = exc.code
    assert code in (None, "invalid_json")
