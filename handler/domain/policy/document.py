"""The policy document as written by users: pydantic models that refuse anything doubtful.

Everything that can be checked is checked here, at load (user lists bounded, durations and
sample rates parsed, rule names unique, unknown keys refused; the `when` conditions are checked
in `conditions`), so deciding is cheap and a broken document never reaches production traffic.
The models keep the user's own spelling (strings), which is what the content hash (the policy
version) is computed over.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from handler.domain.decision import RecordModeField, RecordPlan, UserList
from handler.domain.durations import format_duration, seconds
from handler.domain.policy.conditions import Number, When

#: The rule name the default action reports (and counts its quota under); refused for rules.
DEFAULT_RULE = "default"
#: Sampling resolution: a room's bucket is in [0, SAMPLE_BUCKETS); 0.01 percent per bucket.
SAMPLE_BUCKETS = 10_000
#: How long a session recorded by an action without `max_duration` may record: it then ends,
#: closed or not, so a lost close costs at most this much recording (docs/policy.md).
DEFAULT_MAX_DURATION_SECONDS = 6 * 3600
#: `max_duration` bounds: below a minute the scheduler's tick could not keep it; above a year,
#: write `none`.
MAX_DURATION_RANGE = (60, 366 * 86400)
NO_LIMIT = "none"


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
