"""TRTC room callbacks: where the SdkAppId comes from, which event types count, the session key.

The session key is what "exactly once per room session" counts by: a retried identical
callback must give the same session and the same event, and a bad field must be refused
naming the wire field, never crash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from handler.domain.events import EventSource, InboundFormat, RoomEvent
from handler.domain.inbound import (
    IgnoredEvent,
    InvalidEvent,
    parse_json,
    parse_message,
    parse_trtc,
)
from tests.unit.inbound_helpers import APP_ID, trtc

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
