"""`python -m handler check-policy POLICY --cases CASES.yaml`: a policy's test cases.

A studio writes down what it expects the policy to decide for some rooms, and CI runs it:

    cases:
      - name: ranked rooms are recorded mixed
        event: {biz_id: 1400000000, room_id: ranked-eu-1, attributes: {mode: ranked}}
        now: "2026-12-04T20:00:00Z"                   # optional
        expect: {action: record, rule: ranked-mixed, record_mode: mixed}

Each case's event goes through the same parser as a webhook body (room event v1; `type`, `id`,
`time` and `session` filled in when missing) and the same `explain` the dry run uses, so a case
holds exactly when the deployed function would decide that way. A failing case prints what was
expected, what was decided and the explain text; a malformed file is one line naming the case
and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from handler.domain.decision import Decision, RecordModeField
from handler.domain.events import EventKind, EventSource, RoomEvent, UserId
from handler.domain.inbound import InvalidEvent, parse_json, parse_room_event_v1
from handler.domain.policy import Explanation, InMemoryActiveRecordings, Policy, explain


class CasesError(ValueError):
    """A cases file we cannot run; the message names the case and the field."""


def _instant(value: object) -> object:
    """`now` / `time` as YAML gives them: a quoted string or an unquoted timestamp."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("not an ISO 8601 date-time") from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("needs a timezone (e.g. Z or +01:00)")
    return value


class Expectation(BaseModel):
    """What the case expects; only the fields given are compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["record", "skip"]
    rule: str | None = None
    record_mode: RecordModeField | None = None
    allow_user_ids: tuple[UserId, ...] | None = None
    block_user_ids: tuple[UserId, ...] | None = None

    @classmethod
    def of(cls, decision: Decision) -> Expectation:
        """Everything the decision says, in the terms of an expectation."""
        plan = decision.plan
        return cls(
            action="record" if decision.record else "skip",
            rule=decision.rule,
            record_mode=plan.record_mode if plan else None,
            allow_user_ids=plan.allow_user_ids if plan else (),
            block_user_ids=plan.block_user_ids if plan else (),
        )

    def mismatches(self, decided: Expectation) -> list[str]:
        """The fields this expectation gives that the decision does not match."""
        return [
            name
            for name, expected in self.model_dump(exclude_none=True).items()
            if getattr(decided, name) != expected
        ]

    def text(self) -> str:
        parts = []
        for name, value in self.model_dump(exclude_none=True).items():
            if value == ():
                continue  # an empty list, shown only by its absence
            shown = value.name.lower() if name == "record_mode" else value
            parts.append(f"{name}={list(shown) if isinstance(shown, tuple) else shown}")
        return " ".join(parts)


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    event: dict[str, Any]
    now: datetime | None = None
    source: Literal["webhook", "queue", "schedule"] | None = None
    active: dict[str, Annotated[int, Field(ge=0)]] | None = None
    expect: Expectation

    _check_now = field_validator("now", mode="before")(_instant)


class CasesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cases: Annotated[list[Case], Field(min_length=1)]


def load_cases(text: str, label: str) -> list[tuple[Case, RoomEvent]]:
    """Parse a cases file and build each case's room event; raises CasesError (one line)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CasesError(f"{label}: not valid YAML/JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise CasesError(f"{label}: the document must be a mapping with a `cases` list")
    try:
        cases = CasesFile.model_validate(data).cases
    except ValidationError as exc:
        raise CasesError(f"{label}: {_describe(exc, data)}") from None
    return [(case, _event(case, i, label)) for i, case in enumerate(cases)]


def _case_label(data: Any, index: int) -> str:
    try:
        name = data["cases"][index]["name"]
    except (KeyError, IndexError, TypeError):
        name = None
    return f"cases[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")


def _describe(exc: ValidationError, data: Any) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = list(error["loc"])
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        field = ".".join(str(p) for p in loc[2:]) or "(case)"
        where = f"{_case_label(data, loc[1])} field {field}"
    else:
        where = "field " + (".".join(str(p) for p in loc) or "(document)")
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


def _event(case: Case, index: int, label: str) -> RoomEvent:
    """The case's event as a webhook body, parsed by the webhook's parser (so a case cannot use
    a value the webhook would refuse, such as a non-finite number)."""
    digest = hashlib.sha256(case.name.encode()).hexdigest()[:16]
    now = case.now or datetime.now(UTC)
    body = {
        "type": "room.created",
        "id": f"case-{digest}",
        "time": now,
        "session": f"case-{digest}",
        **case.event,
    }
    where = f"{label}: cases[{index}] ({case.name!r}) field event"
    try:
        body["time"] = _instant(body["time"])
        _refuse_non_finite(body, "")
        event = parse_room_event_v1(parse_json(json.dumps(body, default=_iso)))
    except InvalidEvent as exc:
        message = exc.message.removeprefix(f"{exc.field}: ")
        raise CasesError(f"{where}{'.' + exc.field if exc.field else ''}: {message}") from None
    except ValueError as exc:  # a `time` that is no instant
        raise CasesError(f"{where}.time: {exc}") from None
    if event.kind is not EventKind.ROOM_CREATED:
        raise CasesError(f"{where}.type: a case checks a decision, so only room.created")
    return event.with_source(EventSource(case.source)) if case.source else event


def _refuse_non_finite(value: object, path: str) -> None:
    """YAML's `.inf` and `.nan`: refused as the webhook refuses 1e400, naming the field."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent("non_finite_number", "number out of range (not finite)", path)
    items = value.items() if isinstance(value, dict) else ()
    for key, item in items:
        _refuse_non_finite(item, f"{path}.{key}" if path else str(key))


def _iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def run_cases(policy: Policy, cases: list[tuple[Case, RoomEvent]]) -> tuple[str, bool]:
    """The report, and whether every case held."""
    lines: list[str] = []
    failed = 0
    for case, event in cases:
        active = InMemoryActiveRecordings(case.active) if case.active is not None else None
        result: Explanation = explain(event, policy, now=case.now, active=active)
        decided = Expectation.of(result.decision)
        wrong = case.expect.mismatches(decided)
        if not wrong:
            lines.append(f"ok    {case.name}")
            continue
        failed += 1
        why = "\n".join("        " + line for line in result.text().splitlines())
        lines += [
            f"FAIL  {case.name} ({', '.join(wrong)} differ)",
            f"  expected  {case.expect.text()}",
            f"  decided   {decided.text()}",
            f"  why\n{why}",
        ]
    held = len(cases) - failed
    count = f"{len(cases)} case" + ("" if len(cases) == 1 else "s")
    lines.append(f"{policy.source}: {count}, {held} hold, {failed} fail")
    return "\n".join(lines), failed == 0
