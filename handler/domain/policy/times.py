"""Time conditions: local time-of-day windows, days of the week and date ranges in a named zone.

Parsed once at load into small immutable values, so checking a rule at decision time is a few
integer comparisons on the event's local wall-clock time. A window whose end is before its start
crosses midnight (`22:00-02:00`); the part after midnight belongs to the day the window *started*,
so `days: [fri]` with `22:00-02:00` matches Friday 23:00 and Saturday 01:00 but not Friday 01:00.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {
    "weekdays": tuple(range(5)),
    "weekends": (5, 6),
    "everyday": tuple(range(7)),
}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
MINUTES_PER_DAY = 24 * 60


def zone(name: str) -> ZoneInfo:
    """An IANA zone, or ValueError naming the problem (never a KeyError from deep inside).
    An empty name, one with spaces around it and a path out of the zone folder are refused by
    ZoneInfo itself."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) in minutes after local midnight; end < start means it crosses midnight."""

    start: int
    end: int
    text: str

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def day_of(self, minute: int, today: date) -> date | None:
        """The day the window containing `minute` started on, or None when outside it."""
        if not self.crosses_midnight:
            return today if self.start <= minute < self.end else None
        if minute >= self.start:
            return today
        if minute < self.end:
            return today - timedelta(days=1)
        return None


def parse_window(text: str) -> Window:
    match = _WINDOW.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a window like '18:00-23:30'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59:
        raise ValueError(f"{text!r}: start {h1:02d}:{m1:02d} is not a time of day")
    if h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r}: end {h2:02d}:{m2:02d} is not a time of day (24:00 is)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"{text!r} is empty: start and end are the same time")
    if start == 0 and end == MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is the whole day: leave time_of_day out instead")
    return Window(start, end, text.strip())


def parse_days(items: list[str]) -> frozenset[int]:
    """`mon`, `mon-fri` (wrapping allowed: `fri-mon`), `weekdays`, `weekends`, `everyday`."""
    days: set[int] = set()
    for item in items:
        key = item.strip().lower() if isinstance(item, str) else ""
        if key in _DAY_ALIASES:
            days.update(_DAY_ALIASES[key])
            continue
        first, sep, last = key.partition("-")
        if not _is_day_name(first) or (sep and not _is_day_name(last)):
            raise ValueError(
                f"{item!r} is not a day: use mon..sun, a range like mon-fri, weekdays or weekends"
            )
        day = DAY_NAMES.index(first[:3])
        end = DAY_NAMES.index(last[:3]) if sep else day
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    if not days:
        raise ValueError("days is empty: the rule could never match")
    return frozenset(days)


def _is_day_name(text: str) -> bool:
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return text in DAY_NAMES or text in full


@dataclass(frozen=True, slots=True)
class DateRange:
    """Inclusive range of local calendar dates."""

    first: date
    last: date

    def __contains__(self, day: date) -> bool:
        return self.first <= day <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


#: The one documented form; Python's own parser also takes `20261224` and `2026-W52-4`.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _as_date(value: object) -> date:
    """Text only: the policy document keeps YAML's dates (and date-times) as ISO text."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(text := value.strip()):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")


def parse_date_range(value: object) -> DateRange:
    """`2026-12-24`, `2026-12-20..2027-01-06`, or `{from: ..., to: ...}` (both inclusive)."""
    if isinstance(value, dict):
        unknown = set(value) - {"from", "to"}
        if unknown or not value:
            raise ValueError(f"a date range takes keys from and to, not {sorted(unknown)}")
        first = _as_date(value["from"]) if "from" in value else date.min
        last = _as_date(value["to"]) if "to" in value else date.max
    elif isinstance(value, str) and ".." in value:
        a, _, b = value.partition("..")
        first, last = _as_date(a), _as_date(b)
    else:
        first = last = _as_date(value)
    if last < first:
        raise ValueError(f"date range {first}..{last} ends before it starts")
    return DateRange(first, last)


@dataclass(frozen=True, slots=True)
class TimeCondition:
    """Everything a rule says about time, in one zone. Checked against one instant."""

    tz: ZoneInfo
    windows: tuple[Window, ...]
    days: frozenset[int] | None
    dates: tuple[DateRange, ...]

    def window_days(self, local: datetime) -> list[date]:
        """The days whose windows contain this local time (all of today when no windows)."""
        today = local.date()
        if not self.windows:
            return [today]
        minute = local.hour * 60 + local.minute
        found = []
        for window in self.windows:
            day = window.day_of(minute, today)
            if day is not None:
                found.append(day)
        return found

    def day_ok(self, day: date) -> bool:
        if self.days is not None and day.weekday() not in self.days:
            return False
        return not self.dates or any(day in r for r in self.dates)

    def matches(self, local: datetime) -> bool:
        return any(self.day_ok(day) for day in self.window_days(local))

    def why_not(self, local: datetime) -> str | None:
        where = f"{local:%a %Y-%m-%d %H:%M} {self.tz.key}"
        days = self.window_days(local)
        if not days:
            return f"local time {where} is outside {', '.join(w.text for w in self.windows)}"
        for day in days:
            if self.day_ok(day):
                return None
        day = days[0]
        if self.days is not None and day.weekday() not in self.days:
            listed = ",".join(DAY_NAMES[d] for d in sorted(self.days))
            started = " (the window started that day)" if day != local.date() else ""
            return f"local time {where}: {DAY_NAMES[day.weekday()]}{started} is not in {listed}"
        ranges = ", ".join(str(r) for r in self.dates)
        return f"local time {where}: date {day} is outside {ranges}"

    def never_matches(self) -> bool:
        """True when the listed days fall on no date of any listed range (refused at load)."""
        if self.days is None or not self.dates:
            return False
        for r in self.dates:
            # A week of the range holds every weekday it can (open ends are date.min/max).
            for offset in range(min((r.last - r.first).days, 6) + 1):
                if (r.first + timedelta(days=offset)).weekday() in self.days:
                    return False
        return True
