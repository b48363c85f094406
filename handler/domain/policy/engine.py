"""The decision engine: a loaded policy, compiled once, deciding room after room.

Deciding is pure and deterministic given (event, policy, now, active-recording counts): no clock
is read, no randomness, no I/O except the `ActiveRecordings.count` the caller hands in. Rules
are indexed by BizId at load and their conditions compiled into closures, so a decision looks
only at the rules that can apply to the event's BizId and builds no strings unless asked to
explain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handler.domain.decision import Decision, RecordPlan, RuleMiss
from handler.domain.events import RoomEvent
from handler.domain.policy.document import (
    DEFAULT_RULE,
    LATER_KEYS,
    SAMPLE_BUCKETS,
    Action,
    PolicyDocument,
    Rule,
)
from handler.domain.policy.matchers import (
    Check,
    Moment,
    compile_when,
    first_chars,
    sample_bucket,
    why_not,
)
from handler.domain.policy.quota import ActiveRecordings


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    action: Action
    match: Check | None
    plan: RecordPlan | None
    threshold: int | None
    cap: int | None
    #: The decision when the rule applies and neither sampling nor a cap intervenes.
    base: Decision


_Candidate = tuple[int, Check | None, _Compiled]


class Policy:
    """A loaded, validated policy, ready to decide."""

    def __init__(self, document: PolicyDocument, source: str = "<memory>") -> None:
        self.document = document
        self.source = source
        self.version = "sha256:" + hashlib.sha256(_canonical(document)).hexdigest()[:16]
        self._rules = tuple(self._compile(rule.name, rule) for rule in document.rules)
        self._default = self._compile(DEFAULT_RULE, document.default)
        self._any, self._by_biz = _index(document.rules)
        #: Rules (and `default`) whose running sessions follow this document (apply_to_running).
        self.followed_rules = tuple(
            r.name for r in (*self._rules, self._default) if r.action.follows_changes
        )
        self._firsts = tuple(first_chars(rule.when) for rule in document.rules)
        #: (BizId or None for "named by no rule", first room_id character) -> rules to try.
        #: Bounded: named BizIds + 1 times the 94 printable characters a room_id starts with.
        self._candidates: dict[tuple[int | None, str], tuple[_Candidate, ...]] = {}

    def _candidates_for(self, key: tuple[int | None, str]) -> tuple[_Candidate, ...]:
        biz_id, first = key
        order = self._any if biz_id is None else self._by_biz[biz_id]
        found = self._candidates[key] = tuple(
            (i, self._rules[i].match, self._rules[i])
            for i in order
            if _may_start_with(self._firsts[i], first)
        )
        return found

    def _compile(self, name: str, action: Action) -> _Compiled:
        plan = action.plan()
        if name == DEFAULT_RULE:
            reason = action.reason or "no rule matched; default applies"
        else:
            reason = action.reason or f"matched rule {name!r}"
        base = Decision(
            record=action.action == "record",
            rule=name,
            reason=reason,
            policy_version=self.version,
            plan=plan,
            max_duration_seconds=action.max_duration_seconds,
        )
        match = compile_when(action.when) if isinstance(action, Rule) else None
        return _Compiled(
            name, action, match, plan, action.sample_threshold, action.max_concurrent, base
        )

    @property
    def has_quotas(self) -> bool:
        return any(r.cap is not None for r in (*self._rules, self._default))

    def decide(
        self,
        event: RoomEvent,
        now: datetime | None = None,
        active: ActiveRecordings | None = None,
        *,
        explain: bool = True,
    ) -> Decision:
        """First matching rule wins; otherwise the default.

        `now` is the instant time conditions are checked at; it defaults to the event's own time
        (`occurred_at`), so a retry after a window closed gets the first delivery's answer.
        `active` supplies running-recording counts for `max_concurrent`; without it caps are
        not enforced and the decision says so in `notes`. With `explain` (the default) the
        decision lists why each earlier rule did not match; the service turns that off.
        """
        moment = Moment(now if now is not None else event.occurred_at)
        winner = self._default
        position = len(self._rules)
        rules = self._rules
        biz_id = event.biz_id
        key = (biz_id if biz_id in self._by_biz else None, event.room_id[:1])
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = self._candidates_for(key)
        for index, match, rule in candidates:
            if match is None or match(event, moment):
                winner, position = rule, index
                break
        decision = _act(winner, event, active)
        if explain and position:
            misses = tuple(
                RuleMiss(rule=r.name, why=why_not(r.action.when, event, moment) or "did not match")
                for r in rules[:position]
                if isinstance(r.action, Rule)
            )
            decision = decision.model_copy(update={"misses": misses})
        return decision


def _may_start_with(allowed: frozenset[str] | None, first: str) -> bool:
    return allowed is None or first in allowed


def _declined(base: Decision, bucket: int | None, reason: str) -> Decision:
    """The rule matched, but this session is not recorded (sampled out, or the rule at its
    cap): a skip under the rule's name, with no plan and no time limit."""
    return _copy(
        base,
        record=False,
        plan=None,
        max_duration_seconds=None,
        sample_bucket=bucket,
        reason=reason,
    )


def _act(rule: _Compiled, event: RoomEvent, active: ActiveRecordings | None) -> Decision:
    """Apply a rule's action: sampling first (deterministic), then the concurrency cap."""
    base = rule.base
    if not base.record:
        return base
    bucket = None
    reason = base.reason
    if rule.threshold is not None:
        bucket = sample_bucket(rule.name, event.biz_id, event.room_id, event.session)
        percent = f"{rule.threshold * 100 / SAMPLE_BUCKETS:g}%"
        if bucket >= rule.threshold:
            return _declined(
                base,
                bucket,
                f"sampling: bucket {bucket} is not below {rule.threshold} "
                f"(rule {rule.name!r} records {percent} of sessions)",
            )
        reason = f"{reason}; sampled in (bucket {bucket} < {rule.threshold}, {percent})"
    notes: tuple[str, ...] = ()
    if rule.cap is not None:
        if active is None:
            notes = (
                f"quota: rule {rule.name!r} max_concurrent {rule.cap} not enforced "
                "(no active-recording counter configured)",
            )
        else:
            running = active.count(rule.name)
            if running >= rule.cap:
                return _declined(
                    base,
                    bucket,
                    f"quota: rule {rule.name} has {running}/{rule.cap} concurrent recordings",
                )
    if bucket is None and not notes:
        return base
    return _copy(base, reason=reason, sample_bucket=bucket, notes=notes)


def _copy(base: Decision, **changes: Any) -> Decision:
    """A decision differing from a validated one in a few fields (pydantic-core validation of
    the plain fields measured faster than `model_construct` or `model_copy`)."""
    return Decision(**{**base.__dict__, **changes})


def _index(rules: list[Rule]) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]]:
    """Rule positions to try per BizId: rules naming that BizId plus rules naming none."""
    unrestricted = tuple(i for i, r in enumerate(rules) if r.when.biz_id is None)
    named = {b for r in rules for b in (r.when.biz_id or ())}
    by_biz = {
        biz: tuple(i for i, r in enumerate(rules) if r.when.biz_id is None or biz in r.when.biz_id)
        for biz in named
    }
    return unrestricted, by_biz


def _canonical(document: PolicyDocument) -> bytes:
    """The bytes hashed into the policy version: the validated document as sorted JSON, so
    formatting, comments, key order and YAML-vs-JSON do not change the version."""
    data = document.model_dump(mode="json", by_alias=True)
    for part in (*data.get("rules", []), data.get("default") or {}):
        _drop_unset_later_keys(part)
        _drop_unset_later_keys(part.get("when") or {})
    return json.dumps(data, sort_keys=True).encode()


def _drop_unset_later_keys(part: dict[str, Any]) -> None:
    for key in LATER_KEYS & part.keys():
        if part[key] is None:
            del part[key]
