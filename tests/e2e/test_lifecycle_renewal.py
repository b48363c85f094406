"""Renewal keeps up with a burst: 500 tasks started within a minute, then 25 hours on the
emulator's task clock with a scheduler tick every TICK_SECONDS, and not one recording is cut by
GME's 24-hour cap. Ticks run at the old deployed period (5 minutes), where the old scheduler
(50 renewals a tick, 15 minutes ahead) renewed 150 of the 500 and let GME cut the other 350.

The emulator and the fleet pace run ten times GME's rate here (200/s, paced at 180/s) only to
keep the test short; the renewal budget per tick is scaled down with it (0.5/s x 300 s = 150 a
tick), so the burst still needs several ticks of the renewal window, as at full scale."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulator import GmeEmulator
from handler.bootstrap import app
from tests.conftest import Stack
from tests.e2e.test_lifecycle import created, send, tick

pytestmark = pytest.mark.slow
HOUR = 3600.0
CAP = 24 * HOUR
TASKS = 500


@pytest.fixture
def emulator() -> Iterator[GmeEmulator]:
    with GmeEmulator(rate_limit_per_second=200) as emu:
        yield emu


def test_a_burst_of_500_starts_is_renewed_before_the_cap(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, policy_limits: Any
) -> None:
    policy_limits(**{"ranked-mixed": "none"})  # rooms the policy wants for days
    for name, value in {
        "GME_RATE_LIMIT_PER_SECOND": "180",
        "TICK_SECONDS": "300",
        "RENEW_CALLS_PER_SECOND": "0.5",  # 150 renewals a tick: the burst takes four ticks
        "SWEEP_MIN_AGE_SECONDS": str(int(3 * CAP)),  # no sweep: it would hide a cut task
    }.items():
        monkeypatch.setenv(name, value)
    app.reset()
    emu = stack.emulator
    begun = emu.now()
    for i in range(TASKS):
        send(stack, created(session=f"burst-{i}", room=f"burst-room-{i}"))
    assert emu.now() - begun < 60  # started within a minute
    assert len(emu.tasks(running_only=True)) == TASKS
    emu.advance(23 * HOUR - 600)  # the first tick that matters comes before the renewals
    renewed = 0
    while emu.now() < begun + 25 * HOUR:
        report = tick(stack, emu.now())
        renewed += report.get("renewed", 0)
        assert report.get("renew_errors", 0) == 0, report
        emu.advance(300)
    tasks = emu.tasks()
    cut = [t for t in tasks if t.stopped_at is not None and t.stopped_at - t.started_at >= CAP]
    assert cut == []  # no recording ran into GME's cap
    assert renewed == TASKS
    assert len(emu.tasks(running_only=True)) == TASKS  # every room still records
    assert all(c.error_code is None for c in emu.calls())  # and GME never throttled us
