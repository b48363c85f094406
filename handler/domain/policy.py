"""The recording policy: an ordered list of rules, first match wins, then a default.

Documents are YAML or JSON. Everything that can be checked is checked at load (globs and regexes
compiled, user lists bounded, unknown keys refused) so that deciding is a cheap, pure function and
a broken document never reaches production traffic.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from handler.domain.decision import Decision, RecordModeField, RecordPlan, RuleMiss, UserList
from handler.domain.events import EventSource, RoomEvent, Scalar

Number = int | float


def _as_list(value: object) -> object:
    return [value] if value is not None and not isinstance(value, list | tuple) else value


NonEmpty = Field(min_length=1)


def _as_condition(value: object) -> object:
    """`mode: ranked` is shorthand for `mode: {equals: ranked}`."""
    return value if isinstance(value, dict) else {"equals": value}


class AttributeCondition(BaseModel):
    """Conditions on one event attribute; all given conditions must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    equals: Scalar = None
    not_equals: Scalar = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    exists: bool | None = None
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
        return self

    def why_not(self, name: str, attributes: dict[str, Scalar]) -> str | None:
        present = name in attributes
        value = attributes.get(name)
        if self.exists is not None and present != self.exists:
            return f"attribute {name!r} {'is missing' if self.exists else 'is present'}"
        if "equals" in self.model_fields_set and (not present or not _same(value, self.equals)):
            return f"attribute {name!r} is {value!r}, not {self.equals!r}"
        if "not_equals" in self.model_fields_set and present and _same(value, self.not_equals):
            return f"attribute {name!r} is {value!r}"
        if self.in_ is not None and (
            not present or not any(_same(value, option) for option in self.in_)
        ):
            return f"attribute {name!r} is {value!r}, not one of {self.in_!r}"
        for op, bound in (("gt", self.gt), ("gte", self.gte), ("lt", self.lt), ("lte", self.lte)):
            if bound is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"attribute {name!r} is {value!r}, not a number"
            if not _compare(op, value, bound):
                return f"attribute {name!r} is {value!r}, not {op} {bound!r}"
        return None


def _same(a: Scalar, b: Scalar) -> bool:
    """Equality that keeps booleans apart from numbers (in Python, True == 1)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _compare(op: str, value: Number, bound: Number) -> bool:
    return {
        "gt": value > bound,
        "gte": value >= bound,
        "lt": value < bound,
        "lte": value <= bound,
    }[op]


class When(BaseModel):
    """What a rule matches. Every given field must match; an empty `when` matches everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Empty lists are refused: "match none of nothing" is always a mistake in a policy.
    biz_id: Annotated[
        list[Annotated[int, Field(gt=0)]] | None, BeforeValidator(_as_list), NonEmpty
    ] = None
    room_id: Annotated[list[str] | None, BeforeValidator(_as_list), NonEmpty] = None
    room_id_regex: str | None = None
    source: Annotated[list[EventSource] | None, BeforeValidator(_as_list), NonEmpty] = None
    attributes: dict[str, Annotated[AttributeCondition, BeforeValidator(_as_condition)]] = Field(
        default_factory=dict
    )

    _room_patterns: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> When:
        parts: list[str] = []
        for glob in self.room_id or []:
            if not glob:
                raise ValueError("room_id: empty pattern")
            parts.append(fnmatch.translate(glob))
        if self.room_id_regex is not None:
            try:
                re.compile(self.room_id_regex)
            except re.error as exc:
                raise ValueError(f"room_id_regex: invalid regular expression ({exc})") from None
        self._room_patterns = re.compile("|".join(parts)) if parts else None
        return self

    def why_not(self, event: RoomEvent) -> str | None:
        if self.biz_id is not None and event.biz_id not in self.biz_id:
            return f"biz_id {event.biz_id} not in {self.biz_id}"
        if self._room_patterns is not None and not self._room_patterns.match(event.room_id):
            return f"room_id {event.room_id!r} matches none of {self.room_id}"
        if self.room_id_regex is not None and not re.search(self.room_id_regex, event.room_id):
            return f"room_id {event.room_id!r} does not match /{self.room_id_regex}/"
        if self.source is not None and event.source not in self.source:
            return f"source {event.source.value} not in {[s.value for s in self.source]}"
        for name, condition in self.attributes.items():
            why = condition.why_not(name, event.attributes)
            if why:
                return why
        return None


class Action(BaseModel):
    """What to do: skip (with a reason) or record with a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["record", "skip"]
    reason: str | None = None
    record_mode: RecordModeField | None = None
    allow_user_ids: UserList = ()
    block_user_ids: UserList = ()

    @model_validator(mode="after")
    def _consistent(self) -> Action:
        if self.action == "skip" and (
            self.record_mode is not None or self.allow_user_ids or self.block_user_ids
        ):
            raise ValueError("a skip action takes only a reason")
        if self.allow_user_ids and self.block_user_ids:
            raise ValueError("set allow_user_ids or block_user_ids, not both (GME takes one list)")
        return self

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


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    rules: list[Rule] = Field(default_factory=list)
    default: Action = Field(default_factory=lambda: Action(action="skip", reason="no rule matched"))

    @model_validator(mode="after")
    def _unique_names(self) -> PolicyDocument:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self


class PolicyError(ValueError):
    """A policy document we refuse; the message names the rule and the field."""


class Policy:
    """A loaded, validated policy, ready to decide."""

    def __init__(self, document: PolicyDocument, source: str = "<memory>") -> None:
        self.document = document
        self.source = source
        canonical = json.dumps(document.model_dump(mode="json", by_alias=True), sort_keys=True)
        self.version = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
        self._plans = [rule.plan() for rule in document.rules]
        self._default_plan = document.default.plan()

    def decide(self, event: RoomEvent) -> Decision:
        """First matching rule wins; otherwise the default. Pure and deterministic."""
        misses: list[RuleMiss] = []
        for rule, plan in zip(self.document.rules, self._plans, strict=True):
            why = rule.when.why_not(event)
            if why is not None:
                misses.append(RuleMiss(rule=rule.name, why=why))
                continue
            return Decision(
                record=rule.action == "record",
                rule=rule.name,
                reason=rule.reason or f"matched rule {rule.name!r}",
                policy_version=self.version,
                plan=plan,
                misses=tuple(misses),
            )
        default = self.document.default
        return Decision(
            record=default.action == "record",
            rule="default",
            reason=default.reason or "no rule matched; default applies",
            policy_version=self.version,
            plan=self._default_plan,
            misses=tuple(misses),
        )


def parse_policy(data: Any, source: str = "<memory>") -> Policy:
    try:
        return Policy(PolicyDocument.model_validate(data), source)
    except ValidationError as exc:
        raise PolicyError(_describe(exc, data, source)) from None


def load_policy(path: str | Path) -> Policy:
    """Load a YAML or JSON policy file; every problem becomes a `PolicyError` naming the spot."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: policy must be UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML/JSON: {exc}") from None
    return parse_policy(data, str(path))


def _describe(exc: ValidationError, data: Any, source: str) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            name = _rule_name(data, loc[1])
            field = ".".join(str(p) for p in loc[2:]) or "(rule)"
            where = f"rules[{loc[1]}]" + (f" ({name!r})" if name else "") + f" field {field}"
        lines.append(f"{where}: {error['msg']}")
    return f"{source}: invalid policy: " + "; ".join(lines)


def _rule_name(data: Any, index: int) -> str | None:
    try:
        name = data["rules"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) else None
