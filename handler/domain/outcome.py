"""The recorder's input (a command) and output (an outcome), as stored in the idempotency record."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from handler.domain.decision import Decision, RecordMode
from handler.domain.events import BizId, RoomEvent, RoomId, Session


class StartCommand(BaseModel):
    """Ensure a recording for one room session. The idempotency key is (biz_id, room_id, session);
    the decision rides along so the stored outcome says which rule and policy version acted."""

    model_config = ConfigDict(frozen=True)

    biz_id: BizId
    room_id: RoomId
    session: Session
    event_id: str
    occurred_at: datetime
    decision: Decision

    @classmethod
    def for_event(cls, event: RoomEvent, decision: Decision) -> StartCommand:
        return cls(
            biz_id=event.biz_id,
            room_id=event.room_id,
            session=event.session,
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            decision=decision,
        )


class OutcomeStatus(StrEnum):
    STARTED = "started"  # we called StartRecord and GME returned a TaskId
    ADOPTED = "adopted"  # GME already had a task for the room; we took it as ours
    SKIPPED = "skipped"  # the policy said not to record
    STOPPED = "stopped"  # the room closed and its task is (now) stopped
    FAILED = "failed"  # GME refused for a reason retrying cannot fix
    IGNORED = "ignored"  # a valid event that asks for no action


class Outcome(BaseModel):
    """What happened to one room session. TaskIds exceed 2**53, so they are kept as strings."""

    model_config = ConfigDict(frozen=True)

    status: OutcomeStatus
    biz_id: int | None = None
    room_id: str | None = None
    session: str | None = None
    task_id: str | None = None
    record_mode: RecordMode | None = None
    allow_user_ids: tuple[str, ...] = ()
    block_user_ids: tuple[str, ...] = ()
    rule: str | None = None
    policy_version: str | None = None
    reason: str = ""
    error_code: str | None = None
    request_id: str | None = None
    #: True when this answer was replayed from the idempotency store (a duplicate delivery).
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not OutcomeStatus.FAILED
