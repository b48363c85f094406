"""What a rule matches (`when`), as written by users: rooms, sources, attributes, times.

Each condition is checked when the document loads (globs and regexes compiled, the timezone
resolved, windows, days and date ranges parsed, empty lists refused), so a rule that could
never match, or would match by mistake, is an error then, not a surprise in production. The
models keep the user's own spelling, which the policy version is hashed over.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from handler.domain.events import EventSource, Scalar
from handler.domain.policy.times import (
    DateRange,
    TimeCondition,
    parse_date_range,
    parse_days,
    parse_window,
    zone,
)

Number = StrictInt | StrictFloat
#: Room id patterns one rule may list.
MAX_PATTERNS = 100


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
