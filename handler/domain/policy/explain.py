"""Explain a decision: which rule matched, why each earlier rule did not, and the plan.

A dry run: it calls the same `Policy.decide` the service calls and touches no GME and no store,
so what it prints is exactly what would happen to the event (given the same counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handler.domain.decision import Decision
from handler.domain.durations import format_duration
from handler.domain.events import RoomEvent
from handler.domain.policy.document import Action
from handler.domain.policy.engine import Policy
from handler.domain.policy.quota import ActiveRecordings


@dataclass(frozen=True)
class Explanation:
    event: RoomEvent
    at: datetime
    policy_source: str
    decision: Decision

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.log_keys() | {"source": self.event.source.value},
            "evaluated_at": self.at.isoformat(),
            "policy": {"source": self.policy_source, "version": self.decision.policy_version},
            "decision": self.decision.model_dump(mode="json"),
        }

    def text(self) -> str:
        e, d = self.event, self.decision
        out = [
            f"event   {e.kind.value} biz_id={e.biz_id} room_id={e.room_id} "
            f"session={e.session} source={e.source.value}",
            f"time    {self.at.isoformat()} (time conditions are checked at this instant)",
            f"policy  {self.policy_source} {d.policy_version}",
        ]
        for miss in d.misses:
            out.append(f"  no    {miss.rule}: {miss.why}")
        verdict = "RECORD" if d.record else "SKIP"
        out.append(f"  yes   {d.rule}: {verdict}: {d.reason}")
        if d.sample_bucket is not None:
            out.append(f"        sampling bucket {d.sample_bucket} of 10000")
        out.extend(f"        note: {note}" for note in d.notes)
        if d.plan is not None:
            listed = ""
            if d.plan.allow_user_ids:
                listed = f", record only {list(d.plan.allow_user_ids)}"
            elif d.plan.block_user_ids:
                listed = f", never record {list(d.plan.block_user_ids)}"
            out.append(f"plan    record_mode={d.plan.record_mode.name.lower()}{listed}")
            out.append(f"limit   {limit_text(d.max_duration_seconds)}")
        else:
            out.append("plan    none (not recorded)")
        return "\n".join(out)


def limit_text(seconds: int | None) -> str:
    """A recording's time limit in words, as `explain` and `check-policy` print it."""
    if seconds is None:
        return "max_duration none: records until the room closes"
    return f"max_duration {_limit(seconds)}: ended then if the room has not closed"


def time_limits(policy: Policy) -> str:
    """Each recording action's `max_duration`, as `check-policy` lists them."""
    actions: list[tuple[str, Action]] = [(rule.name, rule) for rule in policy.document.rules]
    actions.append(("default", policy.document.default))
    shown = [
        f"{name} {_limit(action.max_duration_seconds)}"
        + (" (default)" if action.max_duration is None else "")
        for name, action in actions
        if action.action == "record"
    ]
    return "max_duration: " + (", ".join(shown) if shown else "no rule records")


def followed(policy: Policy) -> str | None:
    """The rules whose running sessions follow this document, as `check-policy` names them
    (None when none does): what a mistake in it would reach at once."""
    if not policy.followed_rules:
        return None
    names = ", ".join(policy.followed_rules)
    return f"apply_to_running: {names} (their running sessions follow a change at the next tick)"


def _limit(seconds: int | None) -> str:
    return "none" if seconds is None else format_duration(seconds)


def explain(
    event: RoomEvent,
    policy: Policy,
    now: datetime | None = None,
    active: ActiveRecordings | None = None,
) -> Explanation:
    """Decide with explanations on; `now` defaults to the event's time, as in the service."""
    at = now if now is not None else event.occurred_at
    decision = policy.decide(event, now=at, active=active, explain=True)
    return Explanation(event=event, at=at, policy_source=policy.source, decision=decision)
