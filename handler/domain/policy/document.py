"""The policy document as written by users: pydantic models that refuse anything doubtful.

Everything that can be checked is checked here, at load (globs and regexes compiled, timezones
resolved, windows and date ranges parsed, user lists bounded, unknown keys refused), so deciding
is cheap and a broken document never reaches production traffic. The models keep the user's own
spelling (strings), which is what the content hash (the policy version) is computed over.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from handler.domain.decision import RecordModeField, RecordPlan, UserList
from handler.domain.durations import format_duration, seconds
from handler.domain.events import EventSource, RoomEvent, Scalar
from handler.domain.policy.times import (
    DateRange,
    TimeCondition,
    parse_date_range,
    parse_days,
    parse_window,
    zone,
)

Number = StrictInt | StrictFloat
#: The rule name the default action reports (and counts its quota under); refused for rules.
DEFAULT_RULE = "default"
#: Sampling resolution: a room's bucket is in [0, SAMPLE_BUCKETS); 0.01 percent per bucket.
SAMPLE_BUCKETS = 10_000
MAX_PATTERNS = 100
#: How long a session recorded by an action without `max_duration` may record: it then ends,
#: closed or not, so a lost close costs at most this much recording (docs/policy.md).
DEFAULT_MAX_DURATION_SECONDS = 6 * 3600
#: `max_duration` bounds: below a minute the scheduler's tick could not keep it; above a year,
#: write `none`.
MAX_DURATION_RANGE = (60, 366 * 86400)
NO_LIMIT = "none"


def _as_list(value: object) -> object:
    return [value] if value is not None and not isinstance(value, list | tuple) else value


def _as_condition(value: object) -> object:
    """`mode: ranked` is shorthand for `mode: {equals: ranked}`."""
    return value if isinstance(value, dict) else {"equals": value}


class AttributeCondition(BaseModel):
    """Conditions on one event attribute; all given conditions must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    equals: Scalar = None
    not_equals: Scalar = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    exists: StrictBool | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> AttributeCondition:
        if not self.model_fields_set:
            raise ValueError(
                "give at least one of equals, not_equals, in, exists, gt, gte, lt, lte"
            )
        low = self.gt if self.gt is not None else self.gte
        high = self.lt if self.lt is not None else self.lte
        if low is not None and high is not None:
            empty = low > high or (low == high and (self.gt is not None or self.lt is not None))
            if empty:
                raise ValueError(f"no number is above {low} and below {high}: impossible range")
        return self

    def why_not(self, name: str, attributes: dict[str, Scalar]) -> str | None:
        """Why the attribute fails this condition, in words; None when it holds."""
        from handler.domain.policy.matchers import attribute_why_not

        return attribute_why_not(name, self, attributes)


def _check_each(name: str, value: Sequence[Any] | None, parse: Callable[[Any], object]) -> None:
    """An empty list could never match; each item must parse, its index named on error."""
    if value is None:
        return
    if not value:
        raise ValueError(f"{name} is empty: the rule could never match")
    for i, item in enumerate(value):
        try:
            parse(item)
        except ValueError as exc:
            raise ValueError(f"{name}[{i}]: {exc}") from None


class When(BaseModel):
    """What a rule matches. Every given field must match; an empty `when` matches everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Empty lists are refused: "match any of nothing" is always a mistake in a policy.
    biz_id: Annotated[
        list[Annotated[StrictInt, Field(gt=0, lt=2**63)]] | None,
        BeforeValidator(_as_list),
        Field(min_length=1),
    ] = None
    room_id: Annotated[
        list[str] | None, BeforeValidator(_as_list), Field(min_length=1, max_length=MAX_PATTERNS)
    ] = None
    room_id_regex: str | None = None
    source: Annotated[list[EventSource] | None, BeforeValidator(_as_list), Field(min_length=1)] = (
        None
    )
    attributes: dict[str, Annotated[AttributeCondition, BeforeValidator(_as_condition)]] = {}
    timezone: str | None = None
    time_of_day: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    days: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    dates: Annotated[list[str | dict[str, object]] | None, BeforeValidator(_as_list)] = None

    _room_globs: re.Pattern[str] | None = PrivateAttr(default=None)
    _room_regex: re.Pattern[str] | None = PrivateAttr(default=None)
    _time: TimeCondition | None = PrivateAttr(default=None)

    @field_validator("dates", mode="before")
    @classmethod
    def _dates_as_text(cls, value: object) -> object:
        """YAML reads `2026-12-24` as a date; keep the user's text so the hash is stable."""
        if isinstance(value, list):
            return [_date_text(v) for v in value]
        return _date_text(value)

    @field_validator("room_id")
    @classmethod
    def _globs(cls, value: list[str] | None) -> list[str] | None:
        for i, glob in enumerate(value or []):
            if not glob:
                raise ValueError(f"room_id[{i}]: empty pattern")
            _check_glob(glob, i)
        return value

    @field_validator("room_id_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            if not value:
                raise ValueError("empty regular expression (it would match every room)")
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @field_validator("time_of_day")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        _check_each("time_of_day", value, parse_window)
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            parse_days(value)
        return value

    @field_validator("dates")
    @classmethod
    def _date_ranges(cls, value: list[str | dict[str, object]] | None) -> object:
        _check_each("dates", value, parse_date_range)
        return value

    @model_validator(mode="after")
    def _compile(self) -> When:
        if self.room_id:
            self._room_globs = re.compile("|".join(fnmatch.translate(g) for g in self.room_id))
        if self.room_id_regex is not None:
            self._room_regex = re.compile(self.room_id_regex)
        timed = self.time_of_day is not None or self.days is not None or self.dates is not None
        if self.timezone is not None and not timed:
            raise ValueError("timezone is set but there is no time_of_day, days or dates to use it")
        if timed:
            ranges: tuple[DateRange, ...] = tuple(parse_date_range(d) for d in self.dates or [])
            self._time = TimeCondition(
                tz=zone(self.timezone or "UTC"),
                windows=tuple(parse_window(w) for w in self.time_of_day or []),
                days=parse_days(self.days) if self.days is not None else None,
                dates=ranges,
            )
            if self._time.never_matches():
                raise ValueError("days and dates never coincide: the rule could never match")
        return self

    def why_not(self, event: RoomEvent, at: datetime | None = None) -> str | None:
        """The first condition the event fails, in words (time conditions checked at `at`,
        default the event's time); None when it matches. The engine uses compiled checks."""
        from handler.domain.policy.matchers import Moment, why_not

        return why_not(self, event, Moment(at if at is not None else event.occurred_at))

    @property
    def room_globs(self) -> re.Pattern[str] | None:
        return self._room_globs

    @property
    def room_regex(self) -> re.Pattern[str] | None:
        return self._room_regex

    @property
    def time(self) -> TimeCondition | None:
        return self._time


def _date_text(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _date_text(v) for k, v in value.items()}
    return value


def _check_glob(glob: str, index: int) -> None:
    """fnmatch accepts anything; refuse what is surely a mistake: an unclosed `[` class."""
    depth = 0
    for ch in glob:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth = 0
    if depth:
        raise ValueError(f"room_id[{index}] {glob!r}: '[' is never closed")


class Action(BaseModel):
    """What to do: skip (with a reason) or record with a plan, a sample rate and a cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["record", "skip"]
    reason: str | None = None
    record_mode: RecordModeField | None = None
    allow_user_ids: UserList = ()
    block_user_ids: UserList = ()
    sample_percent: Annotated[Number, Field(ge=0, le=100)] | None = None
    max_concurrent: Annotated[StrictInt, Field(ge=1)] | None = None
    #: The user's spelling (`6h`, `90m`, seconds, or `none`); unset: the 6 h default.
    max_duration: StrictInt | str | None = None
    #: Running sessions this rule decided follow a changed policy (ModifyRecordInfo or
    #: StopRecord at the next ticks); unset or false: a plan is kept as it started.
    apply_to_running: StrictBool | None = None

    @field_validator("max_duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if value is None:  # only an explicit null gets here
            raise ValueError(
                f"write {NO_LIMIT} to record without a time limit, or leave max_duration out "
                f"for the {format_duration(DEFAULT_MAX_DURATION_SECONDS)} default"
            )
        if isinstance(value, str) and value.strip().lower() == NO_LIMIT:
            return NO_LIMIT
        try:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            given = seconds(value)
        except ValueError:
            raise ValueError(
                f"use a duration like 90m, 6h, 1h30m, 2d (or seconds), or {NO_LIMIT}"
            ) from None
        low, high = MAX_DURATION_RANGE
        if not low <= given <= high:
            raise ValueError(
                f"must be from {format_duration(low)} to {format_duration(high)} "
                f"({NO_LIMIT}: no time limit)"
            )
        return value

    @field_validator("sample_percent")
    @classmethod
    def _resolution(cls, value: float | None) -> float | None:
        if value is not None and not math.isclose(value * 100, round(value * 100), abs_tol=1e-6):
            raise ValueError("sampling resolution is 0.01 percent (at most two decimals)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Action:
        if self.action == "skip":
            extra = [
                name
                for name in (
                    "record_mode",
                    "allow_user_ids",
                    "block_user_ids",
                    "sample_percent",
                    "max_concurrent",
                    "max_duration",
                )
                if getattr(self, name) not in (None, ())
            ]
            if extra:
                raise ValueError(f"a skip action takes only a reason, not {', '.join(extra)}")
        return self

    @field_validator("block_user_ids")
    @classmethod
    def _one_list(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and info.data.get("allow_user_ids"):
            raise ValueError(
                "allow_user_ids is set too: give one list, not both (GME takes one list)"
            )
        return value

    @property
    def sample_threshold(self) -> int | None:
        """Buckets below this are sampled in (None: no sampling, every room)."""
        if self.sample_percent is None:
            return None
        return round(self.sample_percent * SAMPLE_BUCKETS / 100)

    @property
    def follows_changes(self) -> bool:
        """Whether the sessions this action decided are brought to a changed policy."""
        return self.apply_to_running is True

    @property
    def max_duration_seconds(self) -> int | None:
        """How long a session this action records may record (None: no limit, or a skip)."""
        if self.action == "skip" or self.max_duration == NO_LIMIT:
            return None
        if self.max_duration is None:
            return DEFAULT_MAX_DURATION_SECONDS
        return seconds(self.max_duration)

    def plan(self) -> RecordPlan | None:
        if self.action == "skip":
            return None
        return RecordPlan.model_validate(
            {
                "allow_user_ids": self.allow_user_ids,
                "block_user_ids": self.block_user_ids,
                **({"record_mode": self.record_mode} if self.record_mode is not None else {}),
            }
        )


class Rule(Action):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    when: When = Field(default_factory=When)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == DEFAULT_RULE:
            raise ValueError(f"{DEFAULT_RULE!r} names the default action; pick another name")
        return value


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    rules: list[Rule] = []
    default: Action = Field(default_factory=lambda: Action(action="skip", reason="no rule matched"))

    @model_validator(mode="after")
    def _unique_names(self) -> PolicyDocument:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self


#: Keys added after the first release of format 1; left out of the hash while unset, so the
#: version of a document written before them does not change.
LATER_KEYS = frozenset(
    {
        "sample_percent",
        "max_concurrent",
        "max_duration",
        "apply_to_running",
        "timezone",
        "time_of_day",
        "days",
        "dates",
    }
)
