"""Time conditions: time of day in a named zone, days of the week, date ranges, DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handler.domain.policy.times import parse_days
from tests.unit.policy_helpers import one_rule, room, yaml_policy


def test_evening_window_in_berlin_is_start_inclusive_end_exclusive() -> None:
    policy = one_rule(when={"timezone": "Europe/Berlin", "time_of_day": "18:00-23:00"})
    # November: Berlin is UTC+1.
    assert not policy.decide(room(at="2026-11-23T16:59:59Z")).record  # 17:59:59 local
    assert policy.decide(room(at="2026-11-23T17:00:00Z")).record  # 18:00 local
    assert policy.decide(room(at="2026-11-23T21:59:59Z")).record  # 22:59:59 local
    assert not policy.decide(room(at="2026-11-23T22:00:00Z")).record  # 23:00 local


def test_window_across_midnight_belongs_to_the_day_it_started() -> None:
    policy = one_rule(
        when={"timezone": "Europe/Berlin", "time_of_day": "22:00-02:00", "days": ["fri"]}
    )
    assert policy.decide(room(at="2026-11-27T22:00:00Z")).record  # Fri 23:00
    assert policy.decide(room(at="2026-11-28T00:30:00Z")).record  # Sat 01:30, Friday's window
    assert not policy.decide(room(at="2026-11-27T00:30:00Z")).record  # Fri 01:30: Thursday's
    assert not policy.decide(room(at="2026-11-28T22:30:00Z")).record  # Sat 23:30
    assert not policy.decide(room(at="2026-11-28T01:00:00Z")).record  # Sat 02:00: ended


def test_explanation_names_the_started_day_for_after_midnight_times() -> None:
    policy = one_rule(
        when={"timezone": "Europe/Berlin", "time_of_day": "22:00-02:00", "days": ["fri"]}
    )
    miss = policy.decide(room(at="2026-11-27T00:30:00Z")).misses[0].why
    assert "Fri 2026-11-27 01:30 Europe/Berlin" in miss
    assert "thu (the window started that day) is not in fri" in miss


def test_explanation_with_two_windows_open_names_the_first_one_listed() -> None:
    """At Sat 01:00 both Friday's 22:00-02:00 and Saturday's 00:00-03:00 are open; the miss
    names the day of the window listed first, whose start it counts from."""
    policy = one_rule(when={"time_of_day": ["22:00-02:00", "00:00-03:00"], "days": ["mon"]})
    miss = policy.decide(room(at="2026-11-28T01:00:00Z")).misses[0].why
    assert "fri (the window started that day) is not in mon" in miss


def test_a_window_counts_its_minutes() -> None:
    policy = one_rule(when={"time_of_day": "18:30-23:45"})  # UTC
    for at, inside in [("18:29", False), ("18:30", True), ("23:44", True), ("23:45", False)]:
        assert policy.decide(room(at=f"2026-11-23T{at}:00Z")).record is inside, at


def test_day_aliases_are_the_days_they_name() -> None:
    assert parse_days(["weekends"]) == parse_days(["sat", "sun"]) == frozenset({5, 6})
    assert parse_days(["weekdays"]) == parse_days(["mon-fri"]) == frozenset(range(5))
    assert parse_days(["everyday"]) == parse_days(["mon-sun"]) == frozenset(range(7))


def test_several_windows_and_day_ranges() -> None:
    policy = one_rule(
        when={"time_of_day": ["06:00-08:00", "18:00-20:00"], "days": ["mon-wed", "sun"]}
    )
    assert policy.decide(room(at="2026-11-23T07:00:00Z")).record  # Mon, first window
    assert policy.decide(room(at="2026-11-29T19:00:00Z")).record  # Sun, second window
    assert not policy.decide(room(at="2026-11-23T12:00:00Z")).record  # Mon, between
    assert not policy.decide(room(at="2026-11-27T07:00:00Z")).record  # Fri


def test_day_range_may_wrap_around_the_week() -> None:
    policy = one_rule(when={"days": "fri-mon"})
    for day, expected in [(23, True), (24, False), (26, False), (27, True), (28, True)]:
        assert policy.decide(room(at=f"2026-11-{day}T12:00:00Z")).record is expected, day


def test_days_may_be_written_out_in_full() -> None:
    """docs/policy.md: `mon`…`sun` or full names, in ranges too; a half-written name is not one."""
    assert parse_days(["Friday-monday"]) == parse_days(["fri-mon"])
    assert parse_days(["sunday", "WEDNESDAY"]) == parse_days(["sun", "wed"])
    for not_a_day in ("mond", "fri-mond", "sundays"):
        with pytest.raises(ValueError, match="is not a day"):
            parse_days([not_a_day])


def test_the_zone_decides_which_day_it_is() -> None:
    tuesday_in_tokyo = room(at="2026-11-23T23:30:00Z")  # Mon in UTC, Tue 08:30 in Tokyo
    assert one_rule(when={"timezone": "Asia/Tokyo", "days": "tue"}).decide(tuesday_in_tokyo).record
    assert not one_rule(when={"days": "tue"}).decide(tuesday_in_tokyo).record  # UTC default


def test_date_ranges_are_local_and_inclusive_in_every_spelling() -> None:
    policy = yaml_policy(
        """
        version: 1
        rules:
          - name: holidays
            when:
              timezone: America/New_York
              dates: [2026-12-24..2026-12-26, {from: 2026-12-31, to: 2027-01-01}, 2027-01-06]
            action: record
        """
    )
    assert policy.decide(room(at="2026-12-27T03:00:00Z")).record  # Dec 26 22:00 New York
    assert not policy.decide(room(at="2026-12-27T06:00:00Z")).record  # Dec 27 01:00
    assert policy.decide(room(at="2027-01-01T12:00:00Z")).record
    assert policy.decide(room(at="2027-01-06T12:00:00Z")).record
    assert not policy.decide(room(at="2027-01-05T12:00:00Z")).record
    miss = policy.decide(room(at="2027-01-05T12:00:00Z")).misses[0]
    assert miss.rule == "holidays"
    assert "date 2027-01-05 is outside 2026-12-24..2026-12-26" in miss.why


def test_open_ended_date_range() -> None:
    policy = one_rule(when={"dates": {"from": "2027-01-01"}})
    assert not policy.decide(room(at="2026-12-31T23:59:00Z")).record
    assert policy.decide(room(at="2030-06-01T00:00:00Z")).record


def test_daylight_saving_changes_use_local_wall_time() -> None:
    policy = one_rule(when={"timezone": "Europe/Berlin", "time_of_day": "02:00-03:00"})
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST; no instant has a local time in the window.
    assert not policy.decide(room(at="2026-03-29T00:59:59Z")).record  # 01:59:59 CET
    assert not policy.decide(room(at="2026-03-29T01:00:00Z")).record  # 03:00 CEST
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice, both match.
    assert policy.decide(room(at="2026-10-25T00:30:00Z")).record  # 02:30 CEST
    assert policy.decide(room(at="2026-10-25T01:30:00Z")).record  # 02:30 CET


def test_now_overrides_the_event_time() -> None:
    policy = one_rule(when={"time_of_day": "09:00-17:00"})
    event = room(at="2026-11-23T20:00:00Z")
    assert not policy.decide(event).record
    assert policy.decide(event, now=datetime(2026, 11, 23, 10, tzinfo=UTC)).record


def test_deciding_twice_is_the_same_decision() -> None:
    policy = one_rule(when={"timezone": "Asia/Kolkata", "time_of_day": "20:00-23:30"})
    event = room(at="2026-11-23T15:00:00Z")  # 20:30 in Kolkata (+05:30)
    assert policy.decide(event) == policy.decide(event)
    assert policy.decide(event).record


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"timezone": "Mars/Olympus", "days": "mon"}, "unknown timezone 'Mars/Olympus'"),
        ({"timezone": "../../etc/passwd", "days": "mon"}, "unknown timezone"),
        ({"timezone": "", "days": "mon"}, "unknown timezone '' (use an IANA name"),
        ({"timezone": " Europe/Berlin", "days": "mon"}, "unknown timezone ' Europe/Berlin'"),
        ({"timezone": "UTC"}, "no time_of_day, days or dates"),
        ({"time_of_day": "18:00-18:00"}, "is empty"),
        ({"time_of_day": "00:00-24:00"}, "whole day"),
        ({"time_of_day": "25:00-26:00"}, "is not a time of day"),
        ({"time_of_day": "24:00-02:00"}, "start 24:00 is not a time of day"),
        ({"time_of_day": "18:60-19:00"}, "start 18:60 is not a time of day"),
        ({"time_of_day": "18:00-25:00"}, "end 25:00 is not a time of day"),
        ({"time_of_day": "18:00-19:60"}, "end 19:60 is not a time of day"),
        ({"time_of_day": "18:00-24:30"}, "is not a time of day"),
        ({"time_of_day": "6pm-11pm"}, "is not a window like"),
        ({"time_of_day": []}, "could never match"),
        ({"days": []}, "could never match"),
        ({"days": ["someday"]}, "is not a day"),
        ({"dates": "2026-12-31..2026-12-01"}, "ends before it starts"),
        ({"dates": "2026-02-30"}, "is not a date"),
        ({"dates": ["2026-12-01", "2026-02-30"]}, "field when.dates: dates[1]: '2026-02-30' is"),
        ({"dates": []}, "dates is empty: the rule could never match"),
        # YAML reads `2026-12-24 10:00` as a date-time: a rule's dates are whole days.
        ({"dates": [datetime(2026, 12, 24, 10)]}, "'2026-12-24T10:00:00' is not a date"),
        # Python reads these as dates too; the documented form is YYYY-MM-DD, nothing looser.
        ({"dates": "20261224"}, "'20261224' is not a date (YYYY-MM-DD)"),
        ({"dates": "2026-W52-4"}, "'2026-W52-4' is not a date (YYYY-MM-DD)"),
        ({"dates": "2026-12-01..20261224"}, "'20261224' is not a date (YYYY-MM-DD)"),
        ({"dates": {"from": "2026-W01-1"}}, "'2026-W01-1' is not a date (YYYY-MM-DD)"),
        ({"dates": {"from": "2026-12-01", "until": "2026-12-02"}}, "takes keys from and to"),
        # Christmas 2026 is a Friday: a weekend-only rule on it can never match.
        ({"dates": "2026-12-25", "days": "weekends"}, "never coincide"),
    ],
)
def test_impossible_or_malformed_time_conditions_are_refused(
    when: dict[str, object], message: str
) -> None:
    from handler.domain.policy import PolicyError

    with pytest.raises(PolicyError) as err:
        one_rule(when=when)
    assert "rules[0] ('r') field when" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("when", "on"),
    [
        ({"dates": "2026-12-24", "days": "thu"}, "2026-12-24"),  # one date, on a listed day
        ({"dates": "2026-12-21..2026-12-22", "days": "tue"}, "2026-12-22"),  # its last day only
        ({"dates": "2026-12-21..2027-01-31", "days": "sun"}, "2026-12-27"),  # over a week long
        ({"dates": {"from": "2026-12-21"}, "days": "sun"}, "2026-12-27"),  # open-ended ranges
        ({"dates": {"to": "2026-12-21"}, "days": "sat"}, "2026-12-19"),
        ({"dates": ["2026-12-25", "2026-12-26"], "days": "weekends"}, "2026-12-26"),
    ],
)
def test_days_and_dates_that_meet_are_accepted(when: dict[str, object], on: str) -> None:
    """The load-time check that days and dates coincide refuses none of these, and each rule
    records on the day they meet."""
    assert one_rule(when=when).decide(room(at=f"{on}T12:00:00Z")).record


def test_zones_work_without_system_zone_files() -> None:
    """Lambda images may lack /usr/share/zoneinfo: the pinned tzdata package must suffice."""
    import os
    import subprocess
    import sys

    code = (
        "import zoneinfo; assert zoneinfo.TZPATH == ();"
        "from handler.domain.policy import parse_policy;"
        "parse_policy({'version': 1, 'rules': [{'name': 'r', 'action': 'record',"
        " 'when': {'timezone': 'Asia/Kolkata', 'days': 'mon'}}]}); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONTZPATH": ""},
    )
    assert result.stdout == "ok\n", result.stderr
