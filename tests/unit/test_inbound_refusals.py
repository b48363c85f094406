"""Every refusal of an inbound document and the field it names, and a property test that parsing
anything at all raises nothing but `InvalidEvent` with a known code.

A sender's malformed body must come back as a refusal that says what to fix, not as a crash of
the function that received it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.domain.events import EventSource, RoomEvent
from handler.domain.inbound import (
    IgnoredEvent,
    InvalidEvent,
    parse_json,
    parse_message,
    parse_room_event_v1,
)
from tests.unit.inbound_helpers import EVENTS, load, room_event_v1, trtc

INVALID = EVENTS / "invalid"


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
