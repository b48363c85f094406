"""What the policy decides for one room session, and the plan handed to the recorder."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from handler.domain.events import UserId

#: GME refuses more than 20 ids in either list
#: (InvalidSubscribeUserIds / InvalidUNSubscribeUserIds).
MAX_LISTED_USERS = 20


class RecordMode(IntEnum):
    """GME's RecordMode: 1 one file per user, 2 one mixed file per room, 3 both."""

    SINGLE = 1
    MIXED = 2
    BOTH = 3


def _mode(value: object) -> object:
    if isinstance(value, str) and not value.isdigit():
        try:
            return RecordMode[value.strip().upper()]
        except KeyError:
            raise ValueError("must be single, mixed, both or 1, 2, 3") from None
    if isinstance(value, str):
        return int(value)
    return value


RecordModeField = Annotated[RecordMode, BeforeValidator(_mode)]
UserList = Annotated[tuple[UserId, ...], Field(max_length=MAX_LISTED_USERS)]


class RecordPlan(BaseModel):
    """How to record: mode plus at most one of an allowlist or a blocklist."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_mode: RecordModeField = RecordMode.MIXED
    allow_user_ids: UserList = ()
    block_user_ids: UserList = ()

    @model_validator(mode="after")
    def _one_list(self) -> RecordPlan:
        if self.allow_user_ids and self.block_user_ids:
            raise ValueError("set allow_user_ids or block_user_ids, not both (GME takes one list)")
        return self


class RuleMiss(BaseModel):
    """Why a rule earlier in the list did not apply; kept for explanations."""

    model_config = ConfigDict(frozen=True)

    rule: str
    why: str


class Decision(BaseModel):
    """Record or skip, with the rule and policy version that said so. Pure data: logged and
    stored with the idempotency record so an operator can tell why a room was (not) recorded."""

    model_config = ConfigDict(frozen=True)

    record: bool
    rule: str
    reason: str
    policy_version: str
    plan: RecordPlan | None = None
    misses: tuple[RuleMiss, ...] = ()
    #: The room session's sampling bucket in [0, 10000) when the deciding rule samples.
    sample_bucket: int | None = None
    #: Facts worth a log line that did not change the outcome (e.g. a cap not enforced).
    notes: tuple[str, ...] = ()
    #: How long the session may record before the scheduler ends it, closed or not (the rule's
    #: `max_duration`); None: no limit (`none`, a skip, a schedule window with its own end).
    max_duration_seconds: int | None = None
