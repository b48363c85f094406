"""Builders shared by the policy tests of deciding, refusals and documents: an event, a policy of
one rule with a given `when`, whether a `when` matches, and the message a refused document gives.

(`policy_helpers` holds the other policy tests' builders; its `one_rule` takes the rule's own
keys rather than a `when`, so the two are kept apart instead of merged.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.policy import Policy, PolicyError, parse_policy

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"


def event(
    room_id: str = "room-1",
    biz_id: int = 1400000000,
    source: EventSource = EventSource.WEBHOOK,
    **attributes: Any,
) -> RoomEvent:
    return RoomEvent(
        kind=EventKind.ROOM_CREATED,
        event_id="evt-1",
        biz_id=biz_id,
        room_id=room_id,
        session="s-1",
        occurred_at=datetime(2026, 11, 23, 21, tzinfo=UTC),
        format=InboundFormat.ROOM_EVENT_V1,
        source=source,
        attributes=attributes,
    )


def one_rule(when: dict[str, Any], **action: Any) -> Policy:
    """A policy whose only rule records (or does `action`) when `when` holds; default skips."""
    rule = {"name": "the-rule", "when": when, "action": "record", **action}
    return parse_policy({"version": 1, "rules": [rule]})


def matches(when: dict[str, Any], ev: RoomEvent) -> bool:
    return one_rule(when).decide(ev).rule == "the-rule"


def refusal(doc: Any) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(doc, "test.yaml")
    return str(info.value)
