"""The lifecycle at scale, end to end through the scheduler entry point: many windows opening at
once, and nothing due left behind by a batch limit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handler.bootstrap import app
from tests.conftest import BIZ_ID, Stack
from tests.e2e.test_lifecycle import tick


def write_windows(path: Path, count: int, begun: datetime, duration: str = "1h") -> None:
    """`count` schedules, one room each, all opening at `begun` (UTC)."""
    lines = ["version: 1", "schedules:"]
    for i in range(count):
        lines.append(
            f"  - {{name: w{i}, biz_id: {BIZ_ID}, room_id: window-room-{i},"
            f" start: '{begun.minute} {begun.hour} * * *', duration: {duration}}}"
        )
    path.write_text("\n".join(lines) + "\n")


def test_120_windows_open_at_once_all_start_in_one_tick(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    path = tmp_path / "schedules.yaml"
    write_windows(path, 120, begun)
    monkeypatch.setenv("RECORDING_SCHEDULES", str(path))
    app.reset()
    first = tick(stack, time.time())
    assert first["window_started"] == 120, first
    second = tick(stack, time.time() + 60)
    assert second.get("window_started", 0) == 0, second
    rooms = {t.room_id for t in stack.emulator.tasks(running_only=True)}
    assert rooms == {f"window-room-{i}" for i in range(120)}
    assert stack.starts() == 120  # one task per window, never a second


def test_a_slow_gme_cuts_the_tick_at_its_deadline_and_the_next_ticks_finish(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    path = tmp_path / "schedules.yaml"
    write_windows(path, 6, begun)
    monkeypatch.setenv("RECORDING_SCHEDULES", str(path))
    monkeypatch.setenv("TICK_DEADLINE_SECONDS", "1")
    app.reset()
    stack.emulator.delay_next("StartRecord", 0.4, count=6)  # GME answers slowly
    began = time.monotonic()
    first = tick(stack, time.time())
    assert time.monotonic() - began < 2.5  # the deadline plus the one start in flight
    assert first["deadline_reached"] == 1
    assert 1 <= first["window_started"] < 6
    started = first["window_started"]
    for n in range(1, 6):
        started += tick(stack, time.time() + n).get("window_started", 0)
    assert started == 6
    assert len(stack.emulator.tasks(running_only=True)) == 6
    assert stack.starts() == 6  # each window started once
