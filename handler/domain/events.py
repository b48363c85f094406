"""The one normalised shape every inbound format becomes.

Webhooks, queue messages and (later) schedules all produce a `RoomEvent`, so that the policy
and the recorder see one vocabulary whatever the sender spoke.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: GME accepts BizIds as unsigned 64-bit integers; anything outside is refused before GME.
BizId = Annotated[int, Field(gt=0, lt=2**63)]
#: GME room ids are strings of at most 127 characters (the client SDK limit); printable only.
RoomId = Annotated[str, StringConstraints(min_length=1, max_length=127, pattern=r"^[\x21-\x7e]+$")]
#: User ids travel to GME as strings; same character rules as rooms.
UserId = Annotated[str, StringConstraints(min_length=1, max_length=127, pattern=r"^[\x21-\x7e]+$")]
#: A session tells two lives of the same RoomId apart; it is part of the idempotency key.
Session = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


class EventKind(StrEnum):
    ROOM_CREATED = "room.created"
    ROOM_CLOSED = "room.closed"


class InboundFormat(StrEnum):
    """Which wire format an event arrived in; kept for logs and explanations."""

    ROOM_EVENT_V1 = "room-event-v1"
    TRTC = "trtc-room-callback"
    GME_RECORDING = "gme-recording-callback"
    SCHEDULE = "schedule-window"  # made by the scheduler from a schedule, not received


class EventSource(StrEnum):
    """Which trigger delivered the event; policy rules may match on it."""

    WEBHOOK = "webhook"
    QUEUE = "queue"
    SCHEDULE = "schedule"


Scalar = str | int | float | bool | None


class RoomEvent(BaseModel):
    """A room lifecycle event, whatever format it arrived in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EventKind
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    biz_id: BizId
    room_id: RoomId
    session: Session
    occurred_at: datetime
    format: InboundFormat
    source: EventSource = EventSource.WEBHOOK
    attributes: dict[str, Scalar] = {}

    def with_source(self, source: EventSource) -> RoomEvent:
        return self.model_copy(update={"source": source})

    def log_keys(self) -> dict[str, Any]:
        """Keys every log line about this event carries."""
        return {
            "event_id": self.event_id,
            "biz_id": self.biz_id,
            "room_id": self.room_id,
            "session": self.session,
            "kind": self.kind.value,
            "format": self.format.value,
        }
