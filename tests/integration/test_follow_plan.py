"""Planning the units that bring running sessions to a changed policy, on a real SQLite ledger:
at most the tick's budget, on from where the last tick stopped, every session once, and no
ledger read at all once a whole pass found nothing left to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handler.adapters.ledger_sqlite import SQLiteLedger
from handler.domain.ledger import DecidedOn, LedgerEntry
from handler.domain.ledger_rules import after_outcome, following, starting
from handler.domain.outcome import Outcome, OutcomeStatus
from handler.domain.policy import Policy, parse_policy
from handler.service_layer.lifecycle.follow import FollowPlanner
from tests.unit.policy_helpers import BIZ, room


def policy(mode: str, follow: bool = True) -> Policy:
    rule = {"name": "all", "action": "record", "record_mode": mode, "apply_to_running": follow}
    return parse_policy({"version": 1, "rules": [rule]})


class Counting:
    """The ledger, counting the pages read."""

    def __init__(self, inner: SQLiteLedger) -> None:
        self.inner = inner
        self.pages = 0

    def rule_page(self, rule: str, limit: int, after: str | None = None) -> Any:
        self.pages += 1
        return self.inner.rule_page(rule, limit, after)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def recording(ledger: SQLiteLedger, p: Policy, n: int) -> None:
    for i in range(n):
        event = room(f"room-{i:02d}")
        key = (BIZ, event.room_id, event.session)
        decision = p.decide(event)
        ledger.update(*key, starting(*key, decision, 1.0, decided_on=DecidedOn.of(event)))
        started = Outcome(status=OutcomeStatus.STARTED, task_id=str(100 + i))
        ledger.update(*key, after_outcome(started, 2.0))


def test_units_are_planned_within_the_budget_once_each_then_nothing_is_read(
    tmp_path: Path,
) -> None:
    inner = SQLiteLedger(tmp_path / "ledger.db")
    recording(inner, policy("mixed", follow=False), 5)
    ledger = Counting(inner)
    new = policy("single")
    current = [new]
    planner = FollowPlanner(ledger, lambda: current[0])  # type: ignore[arg-type]

    ticks = [list(planner.plan(10.0, budget=2)) for _ in range(3)]
    assert [len(t) for t in ticks] == [2, 2, 1]
    rooms = [u.room_id for t in ticks for u in t]
    assert sorted(rooms) == [f"room-{i:02d}" for i in range(5)]
    assert {u.policy_version for t in ticks for u in t} == {new.version}

    for unit in (u for t in ticks for u in t):  # the workers ran them
        entry: LedgerEntry | None = inner.get(*unit.key)
        assert entry is not None
        decision = new.decide(room(unit.room_id))
        inner.update(*unit.key, following(decision, unit.task_id, 11.0, "x", modified=True))
    assert list(planner.plan(20.0, budget=2)) == []  # the pass ends: nothing left
    pages = ledger.pages
    assert list(planner.plan(30.0, budget=2)) == []
    assert ledger.pages == pages  # applied: no further reads for this version

    current[0] = policy("both")  # a newer version starts a fresh pass
    assert len(list(planner.plan(40.0, budget=10))) == 5
    assert list(planner.plan(40.0, budget=0)) == []
