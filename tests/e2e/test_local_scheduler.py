"""`make run` ticks the scheduler by itself: a schedule window open now gets recorded."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.test_local_run import _env, local_runner


def test_local_runner_starts_an_open_schedule_window(tmp_path: Path) -> None:
    begun = datetime.now(UTC) - timedelta(minutes=2)
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(
        "version: 1\nschedules:\n  - {name: now, biz_id: 1400000000, room_id: scheduled-room,"
        f" start: '{begun.minute} {begun.hour} * * *', duration: 1h}}\n"
    )
    env = {**_env(tmp_path), "RECORDING_SCHEDULES": str(schedules), "LOCAL_TICK_SECONDS": "0.5"}
    with local_runner(env) as lines:
        emulator = None
        ticking = False
        while emulator is None or not ticking:
            line = lines.get(timeout=30)
            if m := re.search(r"EMULATOR at (http://\S+)", line):
                emulator = m.group(1)
            ticking = ticking or "scheduler: every 0.5 s" in line
        deadline = time.monotonic() + 20
        rooms: list[str] = []
        while time.monotonic() < deadline and not rooms:
            time.sleep(0.3)
            with urllib.request.urlopen(f"{emulator}/_emulator/tasks", timeout=5) as resp:
                rooms = [t["room_id"] for t in json.loads(resp.read())["tasks"]]
        assert rooms == ["scheduled-room"]
        time.sleep(1.5)  # more ticks: still one task (one key per window)
        with urllib.request.urlopen(f"{emulator}/_emulator/tasks", timeout=5) as resp:
            assert len(json.loads(resp.read())["tasks"]) == 1
