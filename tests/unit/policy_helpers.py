"""Small builders shared by the policy unit tests (events and in-memory documents)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.policy import Policy, parse_policy, parse_policy_text

BIZ = 1400000000


def room(
    room_id: str = "ranked-eu-1",
    *,
    biz_id: int = BIZ,
    session: str = "s-1",
    at: datetime | str = "2026-11-23T21:00:00Z",
    source: EventSource = EventSource.WEBHOOK,
    **attributes: Any,
) -> RoomEvent:
    when = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    return RoomEvent(
        kind=EventKind.ROOM_CREATED,
        event_id=f"evt-{room_id}-{session}",
        biz_id=biz_id,
        room_id=room_id,
        session=session,
        occurred_at=when.astimezone(UTC),
        format=InboundFormat.ROOM_EVENT_V1,
        source=source,
        attributes=attributes,
    )


def one_rule(default: str = "skip", **rule: Any) -> Policy:
    """A policy of one rule named `r` (record unless told), then the given default."""
    body = {"name": "r", "action": "record", **rule}
    return parse_policy({"version": 1, "rules": [body], "default": {"action": default}})


def yaml_policy(text: str) -> Policy:
    return parse_policy_text(textwrap.dedent(text), "test.yaml")
