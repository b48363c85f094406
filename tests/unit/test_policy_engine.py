"""The indexed, compiled engine must pick exactly the rule a plain in-order walk picks."""

from __future__ import annotations

import random

import pytest

from handler.domain.policy import parse_policy
from handler.domain.policy.matchers import Moment, first_chars, why_not
from tests.unit.policy_helpers import room

TRICKY_REGEXES = [
    r"^ab",
    r"^a?b",  # optional first character: not indexable
    r"^a|^b",  # top-level alternative
    r"^(a|b)x",
    r"^a[|]",  # '|' inside a class
    r"^a\|b",  # escaped '|'
    r"b$",  # unanchored
    r"^.b",
    r"^a{0}b",
]
GLOBS = ["a*", "b*", "*a", "?b*", "[ab]*", "ab", "c?"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"room_id": ["ab*", "c*"]}, {"a", "c"}),
        ({"room_id": ["ab*", "*c"]}, None),
        ({"room_id": "[ab]*"}, None),
        ({"room_id_regex": r"^support-\d+$"}, {"s"}),
        ({"room_id_regex": r"^a?b"}, None),
        ({"room_id_regex": r"^a|^b"}, None),
        ({"room_id_regex": r"^(a|b)x"}, None),
        ({"room_id_regex": r"^a(x|y)"}, {"a"}),
        ({"room_id_regex": r"^a[|]"}, {"a"}),
        ({"room_id": "ab*", "room_id_regex": "^b"}, set()),
    ],
)
def test_first_chars(when: dict[str, object], expected: set[str] | None) -> None:
    rule = parse_policy({"version": 1, "rules": [{"name": "r", "action": "skip", "when": when}]})
    found = first_chars(rule.document.rules[0].when)
    assert (None if found is None else set(found)) == expected


def test_indexed_decisions_equal_an_in_order_walk() -> None:
    rng = random.Random(11)
    rules = []
    for i in range(120):
        when: dict[str, object] = {}
        if rng.random() < 0.5:
            when["biz_id"] = rng.sample([1, 2, 3, 4], rng.randint(1, 2))
        if rng.random() < 0.4:
            when["room_id"] = rng.sample(GLOBS, rng.randint(1, 2))
        if rng.random() < 0.4:
            when["room_id_regex"] = rng.choice(TRICKY_REGEXES)
        if rng.random() < 0.3:
            when["attributes"] = {"n": {"gte": rng.randint(0, 5)}, "k": rng.choice(["x", True, 1])}
        if rng.random() < 0.2:
            when["time_of_day"] = f"{rng.randint(0, 23):02d}:00-{rng.randint(0, 23):02d}:30"
        rules.append({"name": f"r{i}", "action": "record", "when": when})
    policy = parse_policy({"version": 1, "rules": rules})
    alphabet = "abcx|"
    for n in range(3000):
        event = room(
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))),
            biz_id=rng.randint(1, 6),
            at=f"2026-11-23T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
            n=rng.randint(0, 6),
            k=rng.choice(["x", True, 1, 1.0]),
        )
        moment = Moment(event.occurred_at)
        walk = next(
            (r.name for r in policy.document.rules if why_not(r.when, event, moment) is None),
            "default",
        )
        assert policy.decide(event, explain=False).rule == walk, (n, event.room_id)
