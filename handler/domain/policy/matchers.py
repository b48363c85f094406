"""Compiled matchers: a rule's `when` turned into small closures at load.

Deciding runs the fast `matches` (plain booleans, no strings built); explaining runs `why_not`,
which says in words which condition failed. Both read the same compiled patterns, so they cannot
disagree. The sampling bucket lives here too: it is the one place a room's identity is hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from handler.domain.events import RoomEvent, Scalar
from handler.domain.policy.conditions import AttributeCondition, When
from handler.domain.policy.document import SAMPLE_BUCKETS

Check = Callable[[RoomEvent, "Moment"], bool]


class Moment:
    """The instant time conditions are checked against, with its local time per zone cached
    (several rules usually share one zone, so each conversion happens once per decision)."""

    __slots__ = ("_local", "instant")

    def __init__(self, instant: datetime) -> None:
        self.instant = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
        self._local: dict[str, datetime] = {}

    def local(self, tz: ZoneInfo) -> datetime:
        found = self._local.get(tz.key)
        if found is None:
            found = self._local[tz.key] = self.instant.astimezone(tz)
        return found


def sample_bucket(rule: str, biz_id: int, room_id: str, session: str) -> int:
    """The room session's sampling bucket for a rule, in [0, 10000).

    sha256 of `"<rule>\\n<biz_id>:<room_id>:<session>"` (UTF-8), first 8 bytes as an unsigned
    big-endian integer, modulo 10000. The same session gets the same bucket on every retry and
    every machine; the rule name is mixed in so that two sampled rules pick independent rooms.
    """
    digest = hashlib.sha256(f"{rule}\n{biz_id}:{room_id}:{session}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SAMPLE_BUCKETS


def compile_when(when: When) -> Check | None:
    """One function deciding whether `when` matches (None: it matches everything). Checks run
    cheapest first; biz_id is left out because the engine indexes rules by BizId and never asks
    a rule about another BizId. Each check is a closure specialised at load for its condition,
    since this runs for every candidate rule of every event."""
    checks: list[Check] = []
    if when.source is not None:
        sources = frozenset(when.source)
        checks.append(lambda e, m: e.source in sources)
    globs = when.room_globs
    if globs is not None:
        glob_match = globs.match
        checks.append(lambda e, m: glob_match(e.room_id) is not None)
    regex = when.room_regex
    if regex is not None:
        search = regex.search
        checks.append(lambda e, m: search(e.room_id) is not None)
    for name, condition in when.attributes.items():
        checks.extend(_attribute_checks(name, condition))
    time = when.time
    if time is not None:
        tz = time.tz
        time_matches = time.matches
        checks.append(lambda e, m: time_matches(m.local(tz)))
    return all_of(checks)


def all_of(checks: list[Check]) -> Check | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda e, m: a(e, m) and b(e, m)
    if len(checks) == 3:
        a, b, c = checks
        return lambda e, m: a(e, m) and b(e, m) and c(e, m)
    first, rest = checks[0], all_of(checks[1:])
    assert rest is not None
    return lambda e, m: first(e, m) and rest(e, m)


#: Stands for a missing attribute; equal to nothing a document can hold.
_MISSING = object()
_NUMBERS = (int, float)


def _attribute_checks(name: str, cond: AttributeCondition) -> list[Check]:
    """One closure per condition on the attribute. `true` never equals `1` here: the key
    compared is (is it a bool, value), so YAML/JSON booleans and numbers stay apart."""
    checks: list[Check] = []
    given = cond.model_fields_set
    if cond.exists is not None:
        if cond.exists:
            checks.append(lambda e, m: name in e.attributes)
        else:
            checks.append(lambda e, m: name not in e.attributes)
    if "equals" in given:
        want = (cond.equals.__class__ is bool, cond.equals)
        checks.append(lambda e, m: _key(e.attributes.get(name, _MISSING)) == want)
    if "not_equals" in given:
        other = (cond.not_equals.__class__ is bool, cond.not_equals)
        checks.append(lambda e, m: _key(e.attributes.get(name, _MISSING)) != other)
    if cond.in_ is not None:
        options = frozenset((o.__class__ is bool, o) for o in cond.in_)
        checks.append(lambda e, m: _key(e.attributes.get(name, _MISSING)) in options)
    for op, bound in _bounds(cond):
        checks.append(_bound_check(name, op, bound))
    return checks


def _key(value: object) -> tuple[bool, object]:
    return (value.__class__ is bool, value)


def _bound_check(name: str, op: str, bound: float) -> Check:
    def number(e: RoomEvent) -> float | None:
        value = e.attributes.get(name)
        return value if value.__class__ in _NUMBERS else None

    if op == "gt":
        return lambda e, m: (v := number(e)) is not None and v > bound
    if op == "gte":
        return lambda e, m: (v := number(e)) is not None and v >= bound
    if op == "lt":
        return lambda e, m: (v := number(e)) is not None and v < bound
    return lambda e, m: (v := number(e)) is not None and v <= bound


def _same(a: Scalar, b: Scalar) -> bool:
    """Equality that keeps `true` apart from `1` (YAML and JSON users mean different things)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _bounds(cond: AttributeCondition) -> list[tuple[str, float]]:
    pairs = (("gt", cond.gt), ("gte", cond.gte), ("lt", cond.lt), ("lte", cond.lte))
    return [(op, bound) for op, bound in pairs if bound is not None]


def _compare(op: str, value: float, bound: float) -> bool:
    if op == "gt":
        return value > bound
    if op == "gte":
        return value >= bound
    if op == "lt":
        return value < bound
    return value <= bound


def why_not(when: When, event: RoomEvent, moment: Moment) -> str | None:
    """The first condition of `when` that the event fails, in words; None when it matches."""
    if when.biz_id is not None and event.biz_id not in when.biz_id:
        return f"biz_id {event.biz_id} not in {when.biz_id}"
    if when.room_globs is not None and not when.room_globs.match(event.room_id):
        return f"room_id {event.room_id!r} matches none of {when.room_id}"
    if when.room_regex is not None and not when.room_regex.search(event.room_id):
        return f"room_id {event.room_id!r} does not match /{when.room_id_regex}/"
    if when.source is not None and event.source not in when.source:
        return f"source {event.source.value} not in {[s.value for s in when.source]}"
    for name, condition in when.attributes.items():
        why = attribute_why_not(name, condition, event.attributes)
        if why:
            return why
    if when.time is not None:
        return when.time.why_not(moment.local(when.time.tz))
    return None


def attribute_why_not(name: str, cond: AttributeCondition, attrs: dict[str, Scalar]) -> str | None:
    present = name in attrs
    value = attrs.get(name)
    shown = repr(value) if present else "missing"
    if cond.exists is not None and present != cond.exists:
        return f"attribute {name!r} {'is missing' if cond.exists else 'is present'}"
    if "equals" in cond.model_fields_set and not (present and _same(value, cond.equals)):
        return f"attribute {name!r} is {shown}, not {cond.equals!r}"
    if "not_equals" in cond.model_fields_set and present and _same(value, cond.not_equals):
        return f"attribute {name!r} is {value!r}"
    if cond.in_ is not None and not (present and any(_same(value, o) for o in cond.in_)):
        return f"attribute {name!r} is {shown}, not one of {cond.in_!r}"
    for op, bound in _bounds(cond):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"attribute {name!r} is {shown}, not a number"
        if not _compare(op, value, bound):
            return f"attribute {name!r} is {value!r}, not {op} {bound!r}"
    return None


_GLOB_SPECIAL = "*?["
_REGEX_SPECIAL = set(".^$*+?{}[]\\|()")
_QUANTIFIERS = set("*?{+")


def first_chars(when: When) -> frozenset[str] | None:
    """The characters a matching room_id can start with, when its globs / regex pin that down
    (None: any). The engine uses it as a second index key beside the BizId."""
    allowed: frozenset[str] | None = None
    if when.room_id and all(g[0] not in _GLOB_SPECIAL for g in when.room_id):
        allowed = frozenset(g[0] for g in when.room_id)
    if when.room_id_regex is not None:
        first = _regex_first_char(when.room_id_regex)
        if first is not None:
            allowed = frozenset({first}) if allowed is None else allowed & {first}
    return allowed


def _regex_first_char(pattern: str) -> str | None:
    """The literal first character of an anchored regex like `^support-\\d+`, when certain."""
    if len(pattern) < 2 or pattern[0] != "^" or pattern[1] in _REGEX_SPECIAL:
        return None
    if len(pattern) > 2 and pattern[2] in _QUANTIFIERS:
        return None
    depth, in_class, escaped = 0, False, False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return None  # a top-level alternative may start anywhere
    return pattern[1]
