"""Plans that follow the policy (`apply_to_running`): planning the units, and carrying one out.

Planning: for each rule the policy in force marks `apply_to_running`, the planner pages through
that rule's starting-or-recording sessions (the ledger's open-rule index) and plans one
`session.follow` unit for each session that is not at the policy's version yet, at most
`follows_per_tick` a tick. Where it stopped is remembered (per process) and the next tick goes
on from there; a pass over the whole index that finds nothing left to do ends the work for that
policy version, so a policy that stays the same costs no ledger read. A new process (or a new
version) starts a fresh pass; units planned twice are stale the second time.

Carrying out (a worker, or the tick without a queue): the session is decided again by the policy
in force there (`handler.domain.follow`), and then, at the fleet's GME pace: nothing (only the
entry's version moves on), ModifyRecordInfo with the new plan, or a close and StopRecord when the
new decision is to skip. Each is noted in the session's history, which the watched ledger turns
into `recording.modified` / `recording.stopped` (reason `policy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handler.bootstrap.observability import logger
from handler.domain.commands import Follow
from handler.domain.follow import FollowKind, adjust, follows, redecide
from handler.domain.gme import GmeError, is_retryable
from handler.domain.ledger import Ledger
from handler.domain.ledger_rules import closing, follow_refused, following
from handler.domain.policy import Policy

if TYPE_CHECKING:
    from handler.service_layer.lifecycle.context import StepContext

#: Entries read per ledger page, at most (and never more than the tick's budget left).
FOLLOW_PAGE = 100
#: Pages one tick reads per followed rule, at most, however few of them need anything.
PAGES_PER_TICK = 10


@dataclass
class _Pass:
    version: str
    after: str | None = None  # the ledger cursor to go on from
    found: bool = False  # whether this pass planned anything yet
    done: bool = False  # a whole pass found nothing: this version is applied


class FollowPlanner:
    """Remembers, per followed rule, how far the pass over its sessions got."""

    def __init__(self, ledger: Ledger, policy: Callable[[], Policy] | None) -> None:
        self.ledger = ledger
        self._policy = policy
        self._passes: dict[str, _Pass] = {}

    def plan(self, now: float, budget: int) -> Iterator[Follow]:
        if self._policy is None or budget <= 0:
            return
        try:
            policy = self._policy()
        except Exception as exc:  # the rest of the tick must not depend on the policy source
            logger.warning("policy not read: running sessions not followed", extra={"error": exc})
            return
        for rule in policy.followed_rules:
            for unit in self._rule(rule, policy, now, budget):
                budget -= 1
                yield unit
            if budget <= 0:
                return

    def _rule(self, rule: str, policy: Policy, now: float, budget: int) -> Iterator[Follow]:
        state = self._passes.get(rule)
        if state is None or state.version != policy.version:
            state = self._passes[rule] = _Pass(policy.version)
        for _ in range(PAGES_PER_TICK):
            if state.done or budget <= 0:
                return
            # Never more entries than units left: every unit a page brings fits the budget.
            page, after = self.ledger.rule_page(rule, min(FOLLOW_PAGE, budget), state.after)
            for entry in page:
                if follows(entry, policy) is not None or entry.task_id is None:
                    continue
                state.found = True
                budget -= 1
                yield Follow.for_entry(
                    entry, now, task_id=entry.task_id, policy_version=policy.version
                )
            state.after = after
            if after is None:  # the end of the index: another pass, unless this one was idle
                state.done = not state.found
                state.found = False
                return


def follow(steps: StepContext, cmd: Follow, policy: Policy) -> tuple[str, str | None]:
    """Carry out one `session.follow` unit (stale: no GME call, nothing changed)."""
    entry = steps.ledger.get(*cmd.key)
    if entry is None or entry.task_id != cmd.task_id or policy.version != cmd.policy_version:
        return "follow_stale", None if entry is None else entry.task_id
    if follows(entry, policy) is not None:
        return "follow_stale", entry.task_id
    decision = redecide(entry, policy)
    change = adjust(entry, decision)
    task_id = cmd.task_id
    if change.kind is FollowKind.NOTHING:
        steps.ledger.update(*cmd.key, following(decision, task_id, cmd.at))
        return "follow_unchanged", task_id
    if change.kind is FollowKind.MODIFY:
        assert change.plan is not None
        try:
            found = steps.recorder.modify_task(entry.biz_id, task_id, change.plan)
        except GmeError as exc:
            if is_retryable(exc.code, room_is_new=False):
                raise  # the queue delivers the unit again; or the next pass plans it again
            why = f"{change.reason}: GME refused ModifyRecordInfo: {exc.code}: {exc.message}"
            steps.ledger.update(*cmd.key, follow_refused(policy.version, task_id, cmd.at, why))
            return "follow_refused", task_id
        if not found:
            return "follow_task_gone", task_id  # the sweep finds it gone and starts anew
        steps.ledger.update(
            *cmd.key, following(decision, task_id, cmd.at, change.reason, modified=True)
        )
        return "follow_modified", task_id
    closed = steps.ledger.update(*cmd.key, closing(*cmd.key, cmd.at, change.reason))
    if closed is None or not closed.closed:
        return "follow_stale", task_id
    steps.service.stop_entry(closed, change.reason, cmd.at)
    return "follow_stopped", task_id
