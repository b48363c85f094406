"""Plans that follow the policy (`apply_to_running`): what a changed policy means for a session
that is recording already. Pure: no clock, no I/O.

Whether a session follows is read from the *new* document: the rule that decided the session
(the entry's `rule`, `default` for the default action), as the policy now in force defines it,
must say `apply_to_running: true`. A rule that turns it on therefore takes its running sessions
along at once; one that turns it off (or is removed) leaves them as they are. The session is
decided again on the event it was first decided on (`DecidedOn`: same time, trigger and
attributes), so the answer is the one the new policy would have given that event; only the
concurrency caps are left out, because they bound starts and this session is running already.
The answer may come from another rule (or the default) than before: the session then records
by that decision and counts under that rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from handler.domain.decision import Decision, RecordPlan
from handler.domain.events import EventKind, InboundFormat, RoomEvent
from handler.domain.ledger import LedgerEntry, LedgerState
from handler.domain.policy import Policy

#: How the close note of a session the policy now skips begins (`recording.stopped` reason).
POLICY_STOP = "policy now skips"


class FollowKind(StrEnum):
    NOTHING = "nothing"  # the plan is already right: only the entry's version moves on
    MODIFY = "modify"  # ModifyRecordInfo with the new plan
    STOP = "stop"  # StopRecord: the new decision is to skip


class Adjustment(BaseModel):
    """What to do with one running session, and the words its history line uses."""

    model_config = ConfigDict(frozen=True)

    kind: FollowKind
    reason: str
    plan: RecordPlan | None = None


def describe(plan: RecordPlan) -> str:
    """A plan in a few words: `mixed`, `single, only a, b`, `both, all but x`."""
    text = plan.record_mode.name.lower()
    if plan.allow_user_ids:
        return f"{text}, only {', '.join(plan.allow_user_ids)}"
    if plan.block_user_ids:
        return f"{text}, all but {', '.join(plan.block_user_ids)}"
    return text


def adjust(entry: LedgerEntry, decision: Decision) -> Adjustment:
    """Given the running session's entry (its rule, plan and policy version) and the new
    decision for the same session: nothing, modify (with the new plan) or stop (with why)."""
    where = f"policy {decision.policy_version}, rule {decision.rule!r}"
    if not decision.record or decision.plan is None:
        return Adjustment(kind=FollowKind.STOP, reason=f"{POLICY_STOP}: {where}: {decision.reason}")
    if decision.plan == entry.plan:
        return Adjustment(kind=FollowKind.NOTHING, reason=f"{where}: plan unchanged")
    change = f"{describe(entry.plan)} -> {describe(decision.plan)}"
    return Adjustment(kind=FollowKind.MODIFY, reason=f"{where}: {change}", plan=decision.plan)


def follows(entry: LedgerEntry, policy: Policy) -> str | None:
    """Why the session does not follow `policy` now (None: it does). Only a session recording
    under a task, decided by the policy on an event the ledger kept, by a rule the policy in
    force marks `apply_to_running`, and not yet at this version, is decided again."""
    if entry.policy_version == policy.version:
        return "follows this policy version already"
    if entry.state is not LedgerState.RECORDING or entry.closed or entry.task_id is None:
        return "not recording"
    if entry.rule not in policy.followed_rules:
        return f"rule {entry.rule!r} does not apply_to_running in policy {policy.version}"
    facts = entry.decided_on
    if facts is None or facts.format is InboundFormat.SCHEDULE:
        return "not decided by the policy on a room event the ledger kept"
    if facts.attributes is None:
        return "its event's attributes were too large to keep"
    return None


def redecide(entry: LedgerEntry, policy: Policy) -> Decision:
    """The policy's decision for the event the session was decided on (`follows` first)."""
    facts = entry.decided_on
    assert facts is not None
    event = RoomEvent(
        kind=EventKind.ROOM_CREATED,
        event_id=f"follow:{entry.session}",
        biz_id=entry.biz_id,
        room_id=entry.room_id,
        session=entry.session,
        occurred_at=datetime.fromtimestamp(facts.occurred_at, tz=UTC),
        format=facts.format,
        source=facts.source,
        attributes=facts.attributes or {},
    )
    return policy.decide(event, explain=False)
