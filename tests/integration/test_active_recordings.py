"""The SQLite active-recordings counter on real files, and the ACTIVE_RECORDINGS setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from handler.adapters.active_recordings import SqliteActiveRecordings, build_active_recordings
from handler.bootstrap.config import ConfigError, Settings
from handler.domain.policy import InMemoryActiveRecordings


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_counts_per_rule_across_instances_sharing_a_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "active.db"
    one, two = SqliteActiveRecordings(path), SqliteActiveRecordings(path)
    one.started("vip", 1, "room-a")
    two.started("vip", 1, "room-b")
    two.started("rest", 2, "room-a")
    assert (one.count("vip"), two.count("vip"), one.count("rest"), one.count("none")) == (
        2,
        2,
        1,
        0,
    )
    one.started("vip", 1, "room-a")  # a repeat start of the same room is one room
    assert two.count("vip") == 2
    two.stopped(1, "room-a")
    two.stopped(9, "never-started")
    assert one.count("vip") == 1


def test_a_lost_close_frees_the_slot_after_max_age(tmp_path: Path) -> None:
    clock = Clock()
    counter = SqliteActiveRecordings(tmp_path / "a.db", max_age_seconds=3600, clock=clock)
    counter.started("vip", 1, "room-a")
    clock.now += 3600
    assert counter.count("vip") == 1
    clock.now += 1
    assert counter.count("vip") == 0


def test_setting_forms(tmp_path: Path) -> None:
    assert build_active_recordings(None) is None
    assert isinstance(build_active_recordings("memory:"), InMemoryActiveRecordings)
    built = build_active_recordings(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(built, SqliteActiveRecordings)
    assert built.path == tmp_path / "x.db"
    assert not built.path.exists()  # nothing opened until used
    for bad in ("sqlite:///", "redis://localhost", "memory"):
        with pytest.raises(ValueError, match="is not one of ledger:, memory:"):
            build_active_recordings(bad)
    with pytest.raises(ConfigError, match="ACTIVE_RECORDINGS"):
        Settings.from_env({"ACTIVE_RECORDINGS": "postgres://db"})
    assert Settings.from_env({"ACTIVE_RECORDINGS": "ledger:"}).active_recordings == "ledger:"
