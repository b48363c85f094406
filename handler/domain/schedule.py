"""Scheduled recording windows: which rooms to record when, independent of room events.

A schedules document (YAML or JSON, its own file so the policy document stays as it is):

    version: 1
    schedules:
      - name: friday-finals
        biz_id: 1400000000
        room_id: tourney-final
        start: "0 20 * * 5"          # cron: minute hour day-of-month month day-of-week
        duration: 3h                 # 90m, 1h30m, 2d, or seconds as a number
        timezone: Europe/Berlin      # IANA name; default UTC
        record_mode: mixed           # single | mixed | both (default mixed)
        block_user_ids: [observer-bot]

A window starts at each local time matching `start` (resolved in `timezone`, so it follows
daylight saving) and lasts `duration`. The window's session key is `window-<start in UTC>`, so
every tick that sees the window maps to one idempotency key and one ledger entry. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from handler.domain.decision import Decision, RecordPlan
from handler.domain.durations import duration_seconds
from handler.domain.events import BizId, RoomId

MAX_DURATION_SECONDS = 7 * 86400
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # day of week 7 = Sunday = 0
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class ScheduleError(ValueError):
    """A schedules document we refuse; names the schedule and the field."""


def _cron_field(text: str, index: int) -> frozenset[int]:
    low, high = _CRON_RANGES[index]
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{_CRON_NAMES[index]}: bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                raise ValueError(f"{_CRON_NAMES[index]}: bad range {part!r}")
            first, last = int(a), int(b)
        elif part.isdigit():
            first = last = int(part)
        else:
            raise ValueError(f"{_CRON_NAMES[index]}: {part!r} is not a number, range or *")
        if not (low <= first <= high and low <= last <= high and first <= last):
            raise ValueError(f"{_CRON_NAMES[index]}: {part!r} outside {low}-{high}")
        values.update(range(first, last + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        if len(fields) != 5:
            raise ValueError("cron needs 5 fields: minute hour day-of-month month day-of-week")
        m, h, dom, mon, dow = (_cron_field(f, i) for i, f in enumerate(fields))
        return cls(m, h, dom, mon, dow, any_day=fields[2] == "*", any_weekday=fields[4] == "*")

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        # Classic cron: when both day fields are restricted, either may match.
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    biz_id: BizId
    room_id: RoomId
    start: str
    duration: Annotated[
        int, BeforeValidator(duration_seconds), Field(gt=0, le=MAX_DURATION_SECONDS)
    ]
    timezone: str = "UTC"
    record_mode: str | int = "mixed"
    allow_user_ids: tuple[str, ...] = ()
    block_user_ids: tuple[str, ...] = ()

    @field_validator("start")
    @classmethod
    def _cron(cls, value: str) -> str:
        Cron.parse(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    def plan(self) -> RecordPlan:
        return RecordPlan.model_validate(
            {
                "record_mode": self.record_mode,
                "allow_user_ids": self.allow_user_ids,
                "block_user_ids": self.block_user_ids,
            }
        )

    def window_starts(self, since: datetime, until: datetime) -> Iterator[datetime]:
        """Window starts (UTC) in [since, until], in order. Walks local days, not minutes."""
        cron, zone = Cron.parse(self.start), ZoneInfo(self.timezone)
        day = since.astimezone(zone).date() - timedelta(days=1)
        last = until.astimezone(zone).date() + timedelta(days=1)
        while day <= last:
            if cron.day_matches(day):
                for hour in sorted(cron.hours):
                    for minute in sorted(cron.minutes):
                        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                        start = local.astimezone(UTC)
                        if since <= start <= until:
                            yield start
            day += timedelta(days=1)


@dataclass(frozen=True)
class Window:
    schedule: Schedule
    start: datetime  # UTC
    end: datetime  # UTC

    @property
    def session(self) -> str:
        return "window-" + self.start.strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    schedules: list[Schedule] = []


class Schedules:
    def __init__(self, document: ScheduleDocument, source: str = "<memory>") -> None:
        self.document = document
        self.source = source
        canonical = json.dumps(document.model_dump(mode="json"), sort_keys=True)
        self.version = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def active(self, now: datetime) -> list[Window]:
        """Windows open at `now` (start <= now < end)."""
        found = []
        for schedule in self.document.schedules:
            span = timedelta(seconds=schedule.duration)
            for start in schedule.window_starts(now - span, now):
                if start <= now < start + span:
                    found.append(Window(schedule, start, start + span))
        return found

    def decision(self, window: Window) -> Decision:
        s = window.schedule
        return Decision(
            record=True,
            rule=f"schedule:{s.name}",
            reason=f"scheduled window {window.start.isoformat()} for {s.duration} s",
            policy_version=self.version,
            plan=s.plan(),
        )


def parse_schedules(data: Any, source: str = "<memory>") -> Schedules:
    if data is None:
        data = {"version": 1}
    try:
        document = ScheduleDocument.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = list(err["loc"])
            where = ".".join(str(p) for p in loc)
            if len(loc) >= 2 and loc[0] == "schedules" and isinstance(loc[1], int):
                items = data.get("schedules") if isinstance(data, dict) else None
                name = (
                    items[loc[1]].get("name")
                    if isinstance(items, list) and isinstance(items[loc[1]], dict)
                    else None
                )
                where = f"schedule #{loc[1]} ({name or 'unnamed'}): {'.'.join(map(str, loc[2:]))}"
            problems.append(f"{where}: {err['msg']}")
        raise ScheduleError(f"{source}: " + "; ".join(problems)) from None
    for schedule in document.schedules:
        try:
            schedule.plan()
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "lists"
            raise ScheduleError(
                f"{source}: schedule {schedule.name}: {where}: {err['msg']}"
            ) from None
    names = [s.name for s in document.schedules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ScheduleError(f"{source}: schedule names used twice: {', '.join(dupes)}")
    return Schedules(document, source)


def load_schedules(path: str | Path | None) -> Schedules:
    """No path: no schedules. Otherwise a YAML or JSON file with a `schedules:` list."""
    if not path:
        return parse_schedules(None)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ScheduleError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScheduleError(f"{path}: not valid YAML ({exc})") from None
    return parse_schedules(data, str(path))
