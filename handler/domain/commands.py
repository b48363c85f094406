"""Lifecycle commands: the units of work the scheduler plans and a worker carries out.

The scheduler only decides what is due (a window to start or end, a task to renew, a session to
check against GME) and sends each unit as one message on the internal record queue; the worker
runs it under the fleet-wide GME pace, through the same recorder and idempotency keys as room
events. A command therefore carries everything needed to act *and* to notice it is stale: a
renewal names the generation and task it renews, a check the `checked_at` it saw, so a unit
delivered twice, or overtaken by a room event, does nothing the second time.

Commands come only from the scheduler over the internal queue: the webhook never parses them
(`handler.domain.inbound.parse_message` refuses them), and the queue's IAM policy lets only our
own functions send. Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from handler.domain.decision import Decision
from handler.domain.events import BizId, RoomId, Session
from handler.domain.inbound_common import COMMAND_FIELD

if TYPE_CHECKING:
    from handler.domain.ledger import LedgerEntry


class CommandKind(StrEnum):
    START_WINDOW = "window.start"
    END_WINDOW = "window.end"
    RENEW = "task.renew"
    CHECK = "session.check"
    FOLLOW = "session.follow"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    biz_id: BizId
    room_id: RoomId
    session: Session
    #: The tick's time (epoch seconds) the unit was planned for: the ledger time of its changes,
    #: so a retried or late delivery acts as of its tick, as the scheduler's own steps always did.
    at: float

    @classmethod
    def for_entry(cls, entry: LedgerEntry, at: float, **fields: Any) -> Self:
        """The unit for the session of a ledger entry, planned at `at`."""
        return cls(
            biz_id=entry.biz_id, room_id=entry.room_id, session=entry.session, at=at, **fields
        )

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.biz_id, self.room_id, self.session)

    @property
    def command_id(self) -> str:
        """Readable and stable for one unit: the correlation id of its log lines."""
        kind: str = getattr(self, COMMAND_FIELD)
        return f"{kind}:{self.biz_id}:{self.room_id}:{self.session}"

    def body(self) -> str:
        """The queue message body."""
        return self.model_dump_json()


class StartWindow(_Command):
    """Record a schedule window that is open now (idempotency key: the window's session)."""

    lifecycle_command: Literal[CommandKind.START_WINDOW] = CommandKind.START_WINDOW
    schedule: Annotated[str, Field(min_length=1, max_length=64)]
    ends_at: float
    decision: Decision


class EndWindow(_Command):
    """Stop the task of a session whose end has passed: a schedule window's, or the policy's
    `max_duration` (the planner already marked it closed)."""

    lifecycle_command: Literal[CommandKind.END_WINDOW] = CommandKind.END_WINDOW


class Renew(_Command):
    """Replace `task_id` (generation `generation`) before GME's 24-hour cap ends it."""

    lifecycle_command: Literal[CommandKind.RENEW] = CommandKind.RENEW
    generation: Annotated[int, Field(ge=0)]
    task_id: Annotated[str, Field(min_length=1, max_length=32)]


class Check(_Command):
    """Reconcile one ledger entry with GME (the sweep); stale once the entry was checked since
    the planner read `checked_at`."""

    lifecycle_command: Literal[CommandKind.CHECK] = CommandKind.CHECK
    checked_at: float


class Follow(_Command):
    """Bring the running task `task_id` to the decision of policy `policy_version`
    (`apply_to_running`); stale once the entry follows it, or its task or the policy in force
    at the worker is another."""

    lifecycle_command: Literal[CommandKind.FOLLOW] = CommandKind.FOLLOW
    task_id: Annotated[str, Field(min_length=1, max_length=32)]
    policy_version: Annotated[str, Field(min_length=1, max_length=64)]


AnyCommand = StartWindow | EndWindow | Renew | Check | Follow
LifecycleCommand = Annotated[AnyCommand, Field(discriminator=COMMAND_FIELD)]


@cache
def _adapter() -> TypeAdapter[AnyCommand]:
    return TypeAdapter(LifecycleCommand)


def validate_command(doc: dict[str, Any]) -> AnyCommand:
    """Raises pydantic's ValidationError; the inbound parser turns it into an InvalidEvent."""
    return _adapter().validate_python(doc)
