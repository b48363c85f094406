"""Schedule windows: cron parsing, time zones (including daylight-saving nights), validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handler.domain.schedule import Cron, ScheduleError, load_schedules, parse_schedules


def _doc(**over: object) -> dict[str, object]:
    item = {
        "name": "s",
        "biz_id": 1400000000,
        "room_id": "r",
        "start": "0 20 * * 5",
        "duration": "3h",
        **over,
    }
    return {"version": 1, "schedules": [item]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_friday_evening_window_in_berlin() -> None:
    schedules = parse_schedules(_doc(timezone="Europe/Berlin"))
    # 2026-11-27 is a Friday; 20:00 CET is 19:00 UTC.
    [window] = schedules.active(at("2026-11-27T21:30:00+01:00"))
    assert window.start == at("2026-11-27T19:00:00+00:00")
    assert window.end - window.start == timedelta(hours=3)
    assert window.session == "window-2026-11-27T19:00:00Z"
    assert schedules.active(at("2026-11-27T23:00:00+01:00")) == []  # end is exclusive
    assert schedules.active(at("2026-11-26T21:00:00+01:00")) == []  # Thursday


def test_window_follows_daylight_saving() -> None:
    schedules = parse_schedules(_doc(start="0 20 * * *", duration="1h", timezone="Europe/Berlin"))
    [summer] = schedules.active(at("2026-07-01T18:30:00+00:00"))
    [winter] = schedules.active(at("2026-12-01T19:30:00+00:00"))
    assert summer.start.hour == 18  # 20:00 CEST
    assert winter.start.hour == 19  # 20:00 CET


def test_window_across_midnight_is_one_session() -> None:
    schedules = parse_schedules(_doc(start="30 23 * * *", duration="2h", timezone="Asia/Tokyo"))
    before = schedules.active(at("2026-11-23T23:45:00+09:00"))
    after = schedules.active(at("2026-11-24T01:15:00+09:00"))
    assert [w.session for w in before] == [w.session for w in after]
    assert schedules.active(at("2026-11-24T01:30:00+09:00")) == []


def test_cron_fields() -> None:
    cron = Cron.parse("*/15 9-17 1,15 * 1-5")
    assert cron.minutes == frozenset({0, 15, 30, 45})
    assert cron.hours == frozenset(range(9, 18))
    assert Cron.parse("0 0 * * 7").weekdays == frozenset({0})  # 7 is Sunday too
    for bad in ("* * * *", "60 * * * *", "a * * * *", "*/0 * * * *", "5-1 * * * *"):
        with pytest.raises(ValueError, match=r"cron|minute|hour|day|month"):
            Cron.parse(bad)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"start": "0 25 * * *"}, "start"),
        ({"duration": "forever"}, "duration"),
        ({"duration": "8d"}, "duration"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"record_mode": "stereo"}, "record_mode"),
        ({"allow_user_ids": ["a"], "block_user_ids": ["b"]}, "not both"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(over: dict[str, object], field: str) -> None:
    with pytest.raises(ScheduleError, match=field):
        parse_schedules(_doc(**over))


def test_load_from_file_and_none(tmp_path: Path) -> None:
    assert load_schedules(None).document.schedules == []
    path = tmp_path / "s.yaml"
    path.write_text(
        "version: 1\nschedules:\n  - {name: a, biz_id: 1, room_id: r,"
        " start: '0 0 * * *', duration: 60}\n"
    )
    assert load_schedules(path).document.schedules[0].duration == 60
    with pytest.raises(ScheduleError, match=r"missing\.yaml"):
        load_schedules(tmp_path / "missing.yaml")


def test_check_schedules_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from handler.tools.cli import main

    example = Path(__file__).resolve().parents[2] / "policies" / "schedules.example.yaml"
    assert main(["check-schedules", str(example)]) == 0
    assert "2 schedules" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nschedules:\n  - {name: x, biz_id: 1, room_id: r, start: '0 0 * *'"
        ", duration: 1h}\n"
    )
    assert main(["check-schedules", str(bad)]) == 1
    assert "schedule #0 (x): start" in capsys.readouterr().err
