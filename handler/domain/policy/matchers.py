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
from handler.domain.policy.document import SAMPLE_BUCKETS, AttributeCondition, When

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


def compile_when(when: When) -> tuple[Check, ...]:
    """The checks of one `when`, cheapest and most selective first. biz_id is left out: the
    engine indexes rules by biz_id and never asks a rule about another BizId."""
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
        checks.append(_attribute_check(name, condition))
    time = when.time
    if time is not None:
        tz = time.tz
        time_matches = time.matches
        checks.append(lambda e, m: time_matches(m.local(tz)))
    return tuple(checks)


def _attribute_check(name: str, cond: AttributeCondition) -> Check:
    tests: list[Callable[[bool, Scalar], bool]] = []
    given = cond.model_fields_set
    if cond.exists is not None:
        want = cond.exists
        tests.append(lambda present, v: present == want)
    if "equals" in given:
        equals = cond.equals
        tests.append(lambda present, v: present and _same(v, equals))
    if "not_equals" in given:
        other = cond.not_equals
        tests.append(lambda present, v: not (present and _same(v, other)))
    if cond.in_ is not None:
        options = list(cond.in_)
        tests.append(lambda present, v: present and any(_same(v, o) for o in options))
    bounds = [(op, b) for op, b in _bounds(cond)]
    if bounds:

        def in_bounds(present: bool, value: Scalar) -> bool:
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            return all(_compare(op, value, bound) for op, bound in bounds)

        tests.append(in_bounds)

    def check(event: RoomEvent, moment: Moment) -> bool:
        attributes = event.attributes
        present = name in attributes
        value = attributes.get(name)
        return all(test(present, value) for test in tests)

    return check


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
    if when.source is not None and event.source not in when.source:
        return f"source {event.source.value} not in {[s.value for s in when.source]}"
    if when.room_globs is not None and not when.room_globs.match(event.room_id):
        return f"room_id {event.room_id!r} matches none of {when.room_id}"
    if when.room_regex is not None and not when.room_regex.search(event.room_id):
        return f"room_id {event.room_id!r} does not match /{when.room_id_regex}/"
    for name, condition in when.attributes.items():
        why = _attribute_why_not(name, condition, event.attributes)
        if why:
            return why
    if when.time is not None:
        return when.time.why_not(moment.local(when.time.tz))
    return None


def _attribute_why_not(name: str, cond: AttributeCondition, attrs: dict[str, Scalar]) -> str | None:
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
