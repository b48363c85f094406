"""What is due at a tick, as lifecycle commands. Reads the schedules and the ledger; calls no GME.

Nothing due is ever hidden behind a batch limit, and a tick cut short by its deadline leaves
the rest where the next tick finds it first:

* windows: every open window the ledger does not know yet. When the units are deferred to the
  queue the planner *claims* each one in the ledger (the `starting` entry the start would write
  anyway), so the next tick skips it; a claim whose message is lost is a stale `starting` entry,
  which the sweep starts.
* window ends (a schedule window's, or a policy's `max_duration`): each ended session is marked
  closed first (the claim), page after page.
* renewals: the tasks started longest ago first, a pace share per tick;
* checks: the entries checked longest ago first, a pace share per tick. Renewals and checks are
  not claimed: one planned again before a worker ran it is stale when it runs (the generation,
  or `checked_at`, moved on) and costs no GME call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from handler.domain.commands import AnyCommand, Check, EndWindow, Renew, StartWindow
from handler.domain.ledger import GME_TASK_CAP_SECONDS, Ledger, LedgerState
from handler.domain.ledger_rules import closing, starting
from handler.domain.schedule import Schedules
from handler.service_layer.lifecycle.follow import FollowPlanner
from handler.service_layer.lifecycle.settings import LifecycleSettings

if TYPE_CHECKING:
    from handler.domain.policy import Policy

#: Ended windows read per ledger query; the planner pages on while a page brings new ones.
ENDING_PAGE = 500


class Planner:
    def __init__(
        self,
        ledger: Ledger,
        schedules: Callable[[], Schedules],
        settings: LifecycleSettings,
        policy: Callable[[], Policy] | None = None,
    ) -> None:
        self.ledger = ledger
        self._schedules = schedules
        self.settings = settings
        self.follows = FollowPlanner(ledger, policy)  # running sessions of apply_to_running

    def plan(self, now: datetime, claim: bool) -> Iterator[AnyCommand]:
        """Lazily, so the caller can stop at its deadline between two units (a unit handed out
        is always one the caller takes: claims happen just before their unit is yielded)."""
        stamp = now.timestamp()
        yield from self.windows(now, claim)
        yield from self.window_ends(stamp)
        yield from self.renewals(stamp)
        yield from self.follows.plan(stamp, self.settings.follows_per_tick)
        yield from self.checks(stamp)

    def windows(self, now: datetime, claim: bool) -> Iterator[StartWindow]:
        schedules = self._schedules()
        stamp = now.timestamp()
        for window in schedules.active(now):
            s = window.schedule
            key = (s.biz_id, s.room_id, window.session)
            known = self.ledger.get(*key)
            if known is not None and not (known.state is LedgerState.FAILED and known.retryable):
                continue  # known: the sweep, renewal and window end look after it
            decision = schedules.decision(window)
            ends_at = window.end.timestamp()
            if claim:
                detail = "planned by the scheduler"
                self.ledger.update(*key, starting(*key, decision, stamp, ends_at, detail))
            yield StartWindow(
                biz_id=s.biz_id,
                room_id=s.room_id,
                session=window.session,
                at=stamp,
                schedule=s.name,
                ends_at=ends_at,
                decision=decision,
            )

    def window_ends(self, now: float) -> Iterator[EndWindow]:
        while True:
            page = self.ledger.ending(now, ENDING_PAGE)
            fresh = 0
            for entry in page:
                why = entry.end_detail()  # a window's end, or the policy's max_duration
                if self.ledger.update(*entry.key, closing(*entry.key, now, why)):
                    fresh += 1
                    yield EndWindow.for_entry(entry, now)
            if fresh == 0 or len(page) < ENDING_PAGE:
                return

    def renewals(self, now: float) -> Iterator[Renew]:
        """The oldest tasks first, `renewals_per_tick` of them. Entries that need no renewal
        (their window or `max_duration` ends before the cap) do not use up the budget: the
        query is read further, a doubled page at a time, until the budget is planned."""
        started_before = now - (GME_TASK_CAP_SECONDS - self.settings.renew_before_seconds)
        budget = self.settings.renewals_per_tick
        limit, seen, planned = budget, 0, 0
        while planned < budget:
            page = self.ledger.nearing_cap(started_before, limit)
            for entry in page[seen:]:
                if planned == budget:
                    return
                started = entry.task_started_at or now
                if entry.ends_at is not None and entry.ends_at <= started + GME_TASK_CAP_SECONDS:
                    continue  # it ends before the cap: its window end or time limit stops it
                if entry.task_id is None or entry.closed:
                    continue
                planned += 1
                yield Renew.for_entry(
                    entry, now, generation=entry.generation, task_id=entry.task_id
                )
            if len(page) < limit:
                return
            seen, limit = len(page), limit * 2

    def checks(self, now: float) -> Iterator[Check]:
        checked_before = now - self.settings.sweep_min_age_seconds
        for entry in self.ledger.due_for_check(checked_before, self.settings.checks_per_tick):
            yield Check.for_entry(entry, now, checked_at=entry.checked_at)
