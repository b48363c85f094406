"""How the recording policy decides: the first matching rule wins, else the default; each `when`
field and matcher; the record mode a rule asks for.

The policy decides which rooms get recorded and how, so every matcher is checked both on
what it must match and on what it must not.
"""

from __future__ import annotations

from typing import Any

import pytest

from handler.domain.decision import RecordMode
from handler.domain.events import EventSource
from handler.domain.policy import PolicyError, load_policy, parse_policy
from tests.unit.policy_when_helpers import DEFAULT_POLICY, event, matches, one_rule, refusal

# --- deciding ------------------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    policy = parse_policy(
        {
            "version": 1,
            "rules": [
                {"name": "first", "when": {"room_id": "ranked-*"}, "action": "skip"},
                {"name": "second", "when": {"room_id": "ranked-eu-*"}, "action": "record"},
                {"name": "third", "action": "record"},
            ],
        }
    )
    assert policy.decide(event("ranked-eu-1")).rule == "first"
    assert policy.decide(event("ranked-eu-1")).record is False
    assert policy.decide(event("casual-1")).rule == "third"


def test_default_applies_when_no_rule_matches() -> None:
    policy = parse_policy(
        {
            "version": 1,
            "rules": [{"name": "r", "when": {"biz_id": 1}, "action": "record"}],
            "default": {"action": "record", "record_mode": "single", "reason": "record all"},
        }
    )
    decision = policy.decide(event(biz_id=2))
    assert (decision.record, decision.rule, decision.reason) == (True, "default", "record all")
    assert decision.plan is not None
    assert decision.plan.record_mode is RecordMode.SINGLE


def test_missing_default_skips() -> None:
    decision = parse_policy({"version": 1}).decide(event())
    assert decision.record is False
    assert decision.rule == "default"
    assert decision.plan is None
    assert decision.reason


def test_empty_when_matches_everything() -> None:
    assert matches({}, event("anything", biz_id=42, source=EventSource.SCHEDULE))


def test_record_decision_carries_plan_reason_and_version() -> None:
    policy = one_rule({}, record_mode="both", allow_user_ids=["u1", "u2"], reason="because")
    decision = policy.decide(event())
    assert decision.record is True
    assert decision.reason == "because"
    assert decision.policy_version == policy.version
    assert decision.plan is not None
    assert decision.plan.record_mode is RecordMode.BOTH
    assert decision.plan.allow_user_ids == ("u1", "u2")
    assert decision.plan.block_user_ids == ()


def test_record_without_mode_defaults_to_mixed() -> None:
    plan = one_rule({}).decide(event()).plan
    assert plan is not None
    assert plan.record_mode is RecordMode.MIXED


def test_skip_rule_has_no_plan_and_a_reason() -> None:
    decision = one_rule({}, action="skip").decide(event())
    assert decision.record is False
    assert decision.plan is None
    assert "the-rule" in decision.reason


def test_misses_explain_each_earlier_rule() -> None:
    policy = parse_policy(
        {
            "version": 1,
            "rules": [
                {"name": "by-biz", "when": {"biz_id": 7}, "action": "record"},
                {"name": "by-room", "when": {"room_id": "x-*"}, "action": "record"},
                {"name": "by-mode", "when": {"attributes": {"mode": "ranked"}}, "action": "record"},
                {"name": "catch-all", "action": "skip"},
                {"name": "never-reached", "action": "record"},
            ],
        }
    )
    decision = policy.decide(event("room-1", biz_id=9, mode="casual"))
    assert decision.rule == "catch-all"
    assert [m.rule for m in decision.misses] == ["by-biz", "by-room", "by-mode"]
    why = [m.why for m in decision.misses]
    assert "9" in why[0]
    assert "room-1" in why[1]
    assert "mode" in why[2]
    assert "casual" in why[2]


def test_deciding_is_deterministic() -> None:
    policy = load_policy(DEFAULT_POLICY)
    ev = event("ranked-1", mode="ranked", players=4)
    assert policy.decide(ev) == policy.decide(ev)


# --- matchers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "biz_id", "expected"),
    [
        ({"biz_id": 7}, 7, True),
        ({"biz_id": 7}, 8, False),
        ({"biz_id": [7, 8]}, 8, True),
        ({"biz_id": [7, 8]}, 9, False),
    ],
)
def test_biz_id_single_or_list(when: dict[str, Any], biz_id: int, expected: bool) -> None:
    assert matches(when, event(biz_id=biz_id)) is expected


@pytest.mark.parametrize(
    ("globs", "room_id", "expected"),
    [
        ("ranked-*", "ranked-eu-1", True),
        ("ranked-*", "xranked-1", False),
        (["a-*", "b-?"], "b-1", True),
        (["a-*", "b-?"], "b-12", False),
        (["a-*", "b-?"], "c-1", False),
        ("exact", "exact", True),
        ("exact", "exact-not", False),
        ("Ranked-*", "ranked-1", False),
        ("room-[0-9]", "room-5", True),
        ("room-[0-9]", "room-x", False),
    ],
)
def test_room_id_globs(globs: Any, room_id: str, expected: bool) -> None:
    assert matches({"room_id": globs}, event(room_id)) is expected


@pytest.mark.parametrize(
    ("regex", "room_id", "expected"),
    [
        ("^support-[0-9]+$", "support-12", True),
        ("^support-[0-9]+$", "support-12a", False),
        ("eu", "ranked-eu-1", True),  # unanchored: a search, not a full match
        ("^eu", "ranked-eu-1", False),
    ],
)
def test_room_id_regex(regex: str, room_id: str, expected: bool) -> None:
    assert matches({"room_id_regex": regex}, event(room_id)) is expected


def test_room_id_glob_and_regex_must_both_hold() -> None:
    when = {"room_id": "ranked-*", "room_id_regex": "-eu-"}
    assert matches(when, event("ranked-eu-1"))
    assert not matches(when, event("ranked-us-1"))
    assert not matches(when, event("casual-eu-1"))


@pytest.mark.parametrize(
    ("sources", "source", "expected"),
    [
        ("queue", EventSource.QUEUE, True),
        ("queue", EventSource.WEBHOOK, False),
        (["webhook", "schedule"], EventSource.SCHEDULE, True),
        (["webhook", "schedule"], EventSource.QUEUE, False),
    ],
)
def test_source(sources: Any, source: EventSource, expected: bool) -> None:
    assert matches({"source": sources}, event(source=source)) is expected


@pytest.mark.parametrize(
    ("condition", "attributes", "expected"),
    [
        ("ranked", {"mode": "ranked"}, True),  # shorthand scalar means equals
        ("ranked", {"mode": "casual"}, False),
        ("ranked", {}, False),
        (10, {"mode": 10}, True),
        ({"equals": "ranked"}, {"mode": "ranked"}, True),
        ({"equals": "ranked"}, {}, False),
        ({"not_equals": "ranked"}, {"mode": "casual"}, True),
        ({"not_equals": "ranked"}, {"mode": "ranked"}, False),
        ({"not_equals": "ranked"}, {}, True),
        ({"in": ["a", "b"]}, {"mode": "b"}, True),
        ({"in": ["a", "b"]}, {"mode": "c"}, False),
        ({"in": ["a", "b"]}, {}, False),
        ({"exists": True}, {"mode": None}, True),
        ({"exists": True}, {}, False),
        ({"exists": False}, {}, True),
        ({"exists": False}, {"mode": "x"}, False),
        ({"gt": 2}, {"mode": 3}, True),
        ({"gt": 2}, {"mode": 2}, False),
        ({"gte": 2}, {"mode": 2}, True),
        ({"gte": 2}, {"mode": 1.5}, False),
        ({"lt": 2}, {"mode": 1.5}, True),
        ({"lt": 2}, {"mode": 2}, False),
        ({"lte": 2}, {"mode": 2}, True),
        ({"lte": 2}, {"mode": 3}, False),
        ({"gte": 2, "lt": 5}, {"mode": 4}, True),
        ({"gte": 2, "lt": 5}, {"mode": 5}, False),
        ({"gt": 0}, {"mode": "5"}, False),  # strings are not numbers
        ({"gt": 0}, {"mode": True}, False),  # nor are booleans
        ({"gt": 0}, {}, False),
        ({"exists": True, "equals": "x"}, {"mode": "x"}, True),
        ({"exists": True, "equals": "x"}, {"mode": "y"}, False),
    ],
)
def test_attribute_conditions(condition: Any, attributes: dict[str, Any], expected: bool) -> None:
    assert matches({"attributes": {"mode": condition}}, event(**attributes)) is expected


def test_all_attribute_conditions_must_hold() -> None:
    when = {"attributes": {"mode": "ranked", "players": {"gte": 2}}}
    assert matches(when, event(mode="ranked", players=2))
    assert not matches(when, event(mode="ranked", players=1))
    assert not matches(when, event(mode="casual", players=10))


def test_every_when_field_must_hold() -> None:
    when = {"biz_id": 1, "room_id": "r-*", "source": "queue", "attributes": {"a": 1}}
    assert matches(when, event("r-1", biz_id=1, source=EventSource.QUEUE, a=1))
    assert not matches(when, event("r-1", biz_id=2, source=EventSource.QUEUE, a=1))
    assert not matches(when, event("x-1", biz_id=1, source=EventSource.QUEUE, a=1))
    assert not matches(when, event("r-1", biz_id=1, source=EventSource.WEBHOOK, a=1))
    assert not matches(when, event("r-1", biz_id=1, source=EventSource.QUEUE, a=2))


@pytest.mark.parametrize(
    ("condition", "value"),
    [(True, 1), (1, True), ({"in": [1]}, True), ({"equals": 0}, False)],
)
def test_equality_does_not_conflate_booleans_and_numbers(condition: Any, value: Any) -> None:
    assert not matches({"attributes": {"flag": condition}}, event(flag=value))


def test_empty_room_id_list_does_not_match_every_room() -> None:
    try:
        policy = one_rule({"room_id": []})
    except PolicyError:
        return  # refusing it at load is fine too
    assert policy.decide(event("any-room")).rule == "default"


@pytest.mark.parametrize("field", ["biz_id", "room_id", "source"])
def test_empty_match_lists_are_refused_at_load(field: str) -> None:
    with pytest.raises(PolicyError, match=f"field when.{field}"):
        one_rule({field: []})


# --- record modes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        ("single", RecordMode.SINGLE),
        ("mixed", RecordMode.MIXED),
        ("both", RecordMode.BOTH),
        ("Both", RecordMode.BOTH),
        (1, RecordMode.SINGLE),
        (2, RecordMode.MIXED),
        (3, RecordMode.BOTH),
        ("3", RecordMode.BOTH),
    ],
)
def test_record_mode_accepts_names_and_numbers(given: Any, mode: RecordMode) -> None:
    plan = one_rule({}, record_mode=given).decide(event()).plan
    assert plan is not None
    assert plan.record_mode is mode
    assert int(plan.record_mode) == {"SINGLE": 1, "MIXED": 2, "BOTH": 3}[mode.name]


@pytest.mark.parametrize("given", ["stereo", 0, 4, "", "4"])
def test_record_mode_refuses_others(given: Any) -> None:
    message = refusal(
        {"version": 1, "rules": [{"name": "r", "action": "record", "record_mode": given}]}
    )
    assert "record_mode" in message
