"""What one tick plans, on a real SQLite ledger: the sweep's share of GME's pace per tick (far
beyond the old cap of 50, bounded by SWEEP_BATCH), renewals oldest first, and the settings'
arithmetic that makes a 50,000-session sweep cycle fit in an hour; bad settings are refused
naming the variable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from handler.adapters.ledgers import build_ledger
from handler.bootstrap.config import ConfigError, Settings
from handler.domain.commands import Check, Renew
from handler.domain.decision import Decision, RecordPlan
from handler.domain.ledger import GME_TASK_CAP_SECONDS, Ledger
from handler.domain.ledger_rules import after_outcome, starting
from handler.domain.outcome import Outcome, OutcomeStatus
from handler.domain.schedule import parse_schedules
from handler.service_layer.lifecycle.plan import Planner
from handler.service_layer.lifecycle.settings import LifecycleSettings

BIZ = 1400000000
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DECISION = Decision(record=True, rule="r", reason="test", policy_version="v", plan=RecordPlan())


def ledger_with(
    tmp_path: Path,
    sessions: int,
    started_at: float,
    ends_after: float | None = None,
    first: int = 0,
) -> Ledger:
    """Recording entries room-<first>..., started a second apart from `started_at`; with
    `ends_after`, each ends that long after its start (a window or a `max_duration`)."""
    ledger = build_ledger(f"sqlite:///{tmp_path}/ledger.db", 30 * 86400)
    for i in range(first, first + sessions):
        key = (BIZ, f"room-{i}", "s")
        ends_at = None if ends_after is None else started_at + i + ends_after
        ledger.update(*key, starting(*key, DECISION, started_at + i, ends_at))
        started = Outcome(status=OutcomeStatus.STARTED, task_id=str(10**18 + i))
        ledger.update(*key, after_outcome(started, started_at + i))
    return ledger


def planner(ledger: Ledger, **env: str) -> Planner:
    return Planner(ledger, lambda: parse_schedules(None), LifecycleSettings.from_env(env))


def test_a_tick_plans_the_sweeps_pace_share_far_beyond_the_old_cap(tmp_path: Path) -> None:
    ledger = ledger_with(tmp_path, 1200, NOW.timestamp() - 3600)
    checks = [c for c in planner(ledger).plan(NOW, claim=False) if isinstance(c, Check)]
    assert len(checks) == 900  # 15/s x 60 s: one minute of DescribeTaskInfo at the sweep's share
    assert len({c.key for c in checks}) == 900
    capped = [c for c in planner(ledger, SWEEP_BATCH="100").plan(NOW, claim=False)]
    assert sum(isinstance(c, Check) for c in capped) == 100


def test_renewals_are_planned_oldest_first_a_pace_share_per_tick(tmp_path: Path) -> None:
    ledger = ledger_with(tmp_path, 30, NOW.timestamp() - GME_TASK_CAP_SECONDS + 1800)
    plan = planner(ledger, RENEW_CALLS_PER_SECOND="0.2", SWEEP_MIN_AGE_SECONDS="999999")
    renewals = [c for c in plan.plan(NOW, claim=False) if isinstance(c, Renew)]
    assert [r.room_id for r in renewals] == [f"room-{i}" for i in range(12)]  # 0.2 x 60 s
    assert all(r.generation == 0 and r.task_id for r in renewals)


def test_sessions_ending_before_the_cap_do_not_use_up_the_renewal_budget(tmp_path: Path) -> None:
    oldest = NOW.timestamp() - GME_TASK_CAP_SECONDS + 1800
    ledger_with(tmp_path, 40, oldest, ends_after=GME_TASK_CAP_SECONDS - 600)  # end first
    ledger = ledger_with(tmp_path, 12, oldest + 100, first=40)
    plan = planner(ledger, RENEW_CALLS_PER_SECOND="0.2", SWEEP_MIN_AGE_SECONDS="999999")
    renewals = [c for c in plan.plan(NOW, claim=False) if isinstance(c, Renew)]
    assert [r.room_id for r in renewals] == [f"room-{i}" for i in range(40, 52)]


def test_the_defaults_sweep_50000_sessions_within_an_hour_under_the_fleet_pace() -> None:
    s = LifecycleSettings.from_env({})
    assert s.checks_per_tick * (3600 / s.tick_seconds) >= 50_000
    assert s.sweep_calls_per_second < Settings().gme_rate_limit_per_second  # room for adoption
    burst = s.renew_calls_per_second * (s.renew_before_seconds - s.tick_seconds)
    assert burst >= 5_000  # a burst of 5,000 starts is renewed before the cap


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RENEW_BEFORE_SECONDS": "100"}, "RENEW_BEFORE_SECONDS must be at least 2 x TICK_SECONDS"),
        ({"TICK_DEADLINE_SECONDS": "0"}, "TICK_DEADLINE_SECONDS:"),
        ({"TICK_SECONDS": "soon"}, "TICK_SECONDS:"),
        ({"RENEW_CALLS_PER_SECOND": "25"}, "RENEW_CALLS_PER_SECOND:"),
        ({"SWEEP_CALLS_PER_SECOND": "-1"}, "SWEEP_CALLS_PER_SECOND:"),
    ],
)
def test_bad_lifecycle_settings_are_refused_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        LifecycleSettings.from_env(env)
    assert named in str(refused.value)
    assert "Value error" not in str(refused.value)


def test_every_ended_session_is_planned_in_one_tick_however_many_pages(tmp_path: Path) -> None:
    """More ended windows than one ledger page (ENDING_PAGE): the planner pages on while a page
    brings new ones, and a second tick finds nothing left to end."""
    from handler.domain.commands import EndWindow
    from handler.service_layer.lifecycle.plan import ENDING_PAGE

    count = ENDING_PAGE + 120
    started = NOW.timestamp() - 7200
    ledger = ledger_with(tmp_path, count, started, ends_after=60)  # all ended by NOW
    plan = planner(ledger, SWEEP_MIN_AGE_SECONDS="999999")
    ends = [c for c in plan.window_ends(NOW.timestamp()) if isinstance(c, EndWindow)]
    assert len(ends) == count
    assert len({e.key for e in ends}) == count
    assert list(plan.window_ends(NOW.timestamp())) == []


def test_renewals_skip_sessions_without_a_task_or_closed(tmp_path: Path) -> None:
    from handler.domain.ledger_rules import closing, task_lost

    oldest = NOW.timestamp() - GME_TASK_CAP_SECONDS + 1800
    ledger = ledger_with(tmp_path, 6, oldest)
    ledger.update(BIZ, "room-0", "s", task_lost(1, oldest + 10, "lost"))  # no task now
    ledger.update(BIZ, "room-1", "s", closing(BIZ, "room-1", "s", oldest + 10, "closed"))
    plan = planner(ledger, SWEEP_MIN_AGE_SECONDS="999999")
    renewals = [c.room_id for c in plan.renewals(NOW.timestamp())]
    assert renewals == ["room-2", "room-3", "room-4", "room-5"]


def test_a_command_id_names_its_kind_and_session() -> None:
    check = Check(biz_id=BIZ, room_id="r-1", session="s", at=NOW.timestamp(), checked_at=0.0)
    assert check.command_id == f"session.check:{BIZ}:r-1:s"


def test_a_window_that_outlives_the_cap_is_renewed(tmp_path: Path) -> None:
    """A session whose window (or time limit) ends after GME's 24 h cap needs a new task."""
    oldest = NOW.timestamp() - GME_TASK_CAP_SECONDS + 1800
    ledger = ledger_with(tmp_path, 3, oldest, ends_after=GME_TASK_CAP_SECONDS + 600)
    plan = planner(ledger, SWEEP_MIN_AGE_SECONDS="999999")
    assert [c.room_id for c in plan.renewals(NOW.timestamp())] == ["room-0", "room-1", "room-2"]


def test_a_window_is_planned_again_only_after_a_retryable_failure(tmp_path: Path) -> None:
    """Known windows are left to the sweep and their end, except one whose start failed
    retryably: that one is planned again; a permanent refusal is not."""
    from handler.domain.commands import StartWindow
    from handler.domain.ledger_rules import start_retry_later

    doc = {
        "version": 1,
        "schedules": [
            {"name": f"w{i}", "biz_id": BIZ, "room_id": f"win-{i}", "start": "0 * * * *",
             "duration": "1h", "timezone": "UTC"}
            for i in range(3)
        ],
    }  # fmt: skip
    ledger = build_ledger(f"sqlite:///{tmp_path}/ledger.db", 30 * 86400)
    plan = Planner(ledger, lambda: parse_schedules(doc), LifecycleSettings.from_env({}))
    first = [c for c in plan.windows(NOW, claim=True) if isinstance(c, StartWindow)]
    assert [c.room_id for c in first] == ["win-0", "win-1", "win-2"]
    assert list(plan.windows(NOW, claim=True)) == []  # all known now
    retry, final = (BIZ, "win-0", first[0].session), (BIZ, "win-1", first[1].session)
    ledger.update(*retry, start_retry_later("InternalError", "boom", NOW.timestamp()))
    refused = Outcome(status=OutcomeStatus.FAILED, error_code="InvalidParameter", reason="no")
    ledger.update(*final, after_outcome(refused, NOW.timestamp()))
    assert [c.room_id for c in plan.windows(NOW, claim=False)] == ["win-0"]
