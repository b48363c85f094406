"""The recording policy: matching, decisions, load-time refusals, versions, the shipped example."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handler.domain.decision import RecordMode
from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.inbound import parse_message
from handler.domain.policy import Policy, PolicyError, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"


def event(
    room_id: str = "room-1",
    biz_id: int = 1400000000,
    source: EventSource = EventSource.WEBHOOK,
    **attributes: Any,
) -> RoomEvent:
    return RoomEvent(
        kind=EventKind.ROOM_CREATED,
        event_id="evt-1",
        biz_id=biz_id,
        room_id=room_id,
        session="s-1",
        occurred_at=datetime(2026, 11, 23, 21, tzinfo=UTC),
        format=InboundFormat.ROOM_EVENT_V1,
        source=source,
        attributes=attributes,
    )


def one_rule(when: dict[str, Any], **action: Any) -> Policy:
    """A policy whose only rule records (or does `action`) when `when` holds; default skips."""
    rule = {"name": "the-rule", "when": when, "action": "record", **action}
    return parse_policy({"version": 1, "rules": [rule]})


def matches(when: dict[str, Any], ev: RoomEvent) -> bool:
    return one_rule(when).decide(ev).rule == "the-rule"


def refusal(doc: Any) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(doc, "test.yaml")
    return str(info.value)


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


# --- refusals at load ----------------------------------------------------------------------


def rules_doc(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "rules": [{"name": "ok", "action": "skip"}, *rules]}


def test_unknown_rule_key_names_rule_index_name_and_field() -> None:
    message = refusal(rules_doc({"name": "bad", "action": "record", "colour": "red"}))
    assert "test.yaml" in message
    assert "rules[1]" in message
    assert "'bad'" in message
    assert "colour" in message


def test_unknown_when_key_is_refused() -> None:
    message = refusal(rules_doc({"name": "bad", "action": "record", "when": {"room": "x"}}))
    assert "rules[1]" in message
    assert "when.room" in message


def test_unknown_attribute_operator_is_refused() -> None:
    message = refusal(
        rules_doc({"name": "bad", "action": "record", "when": {"attributes": {"a": {"eq": 1}}}})
    )
    assert "rules[1]" in message
    assert "eq" in message


def test_empty_attribute_condition_is_refused() -> None:
    message = refusal(
        rules_doc({"name": "bad", "action": "record", "when": {"attributes": {"a": {}}}})
    )
    assert "rules[1]" in message
    assert "at least one" in message


def test_both_user_lists_are_refused() -> None:
    message = refusal(
        rules_doc(
            {"name": "both", "action": "record", "allow_user_ids": ["a"], "block_user_ids": ["b"]}
        )
    )
    assert "rules[1] ('both')" in message
    assert "allow_user_ids" in message
    assert "block_user_ids" in message


@pytest.mark.parametrize("field", ["allow_user_ids", "block_user_ids"])
def test_21_user_ids_are_refused_and_20_accepted(field: str) -> None:
    twenty = [f"user-{i}" for i in range(20)]
    plan = one_rule({}, **{field: twenty}).decide(event()).plan
    assert plan is not None
    assert getattr(plan, field) == tuple(twenty)
    message = refusal(rules_doc({"name": "many", "action": "record", field: [*twenty, "x"]}))
    assert "rules[1] ('many')" in message
    assert field in message


@pytest.mark.parametrize("user_id", ["has space", "", "x" * 128, 5])
def test_bad_user_ids_are_refused(user_id: Any) -> None:
    message = refusal(rules_doc({"name": "u", "action": "record", "allow_user_ids": [user_id]}))
    assert "rules[1] ('u')" in message
    assert "allow_user_ids" in message


def test_bad_regex_is_refused() -> None:
    message = refusal(
        rules_doc({"name": "re", "action": "record", "when": {"room_id_regex": "support-(["}})
    )
    assert "rules[1] ('re')" in message
    assert "room_id_regex" in message


def test_empty_glob_is_refused() -> None:
    message = refusal(rules_doc({"name": "glob", "action": "record", "when": {"room_id": ""}}))
    assert "rules[1] ('glob')" in message
    assert "room_id" in message


def test_duplicate_rule_names_are_refused() -> None:
    message = refusal(rules_doc({"name": "ok", "action": "record"}))
    assert "'ok'" in message
    assert "twice" in message


@pytest.mark.parametrize(
    "extra", [{"record_mode": "mixed"}, {"allow_user_ids": ["a"]}, {"block_user_ids": ["b"]}]
)
def test_skip_with_record_settings_is_refused(extra: dict[str, Any]) -> None:
    message = refusal(rules_doc({"name": "skippy", "action": "skip", **extra}))
    assert "rules[1] ('skippy')" in message
    assert "skip" in message


def test_skip_in_default_with_record_mode_is_refused() -> None:
    message = refusal({"version": 1, "default": {"action": "skip", "record_mode": 2}})
    assert "default" in message


@pytest.mark.parametrize("action", ["start", None, "RECORD"])
def test_unknown_action_is_refused(action: Any) -> None:
    message = refusal(rules_doc({"name": "act", "action": action}))
    assert "rules[1] ('act') field action" in message


def test_rule_without_name_is_refused_by_index() -> None:
    message = refusal(rules_doc({"action": "record"}))
    assert "rules[1] field name" in message


def test_version_missing_is_refused() -> None:
    message = refusal({"rules": []})
    assert "version" in message


def test_version_2_is_refused() -> None:
    message = refusal({"version": 2, "rules": []})
    assert "version" in message


@pytest.mark.parametrize("doc", [None, [], "version: 1", 1])
def test_document_that_is_not_a_mapping_is_refused(doc: Any) -> None:
    assert "invalid policy" in refusal(doc)


def test_every_problem_is_reported_at_once() -> None:
    message = refusal(
        {
            "version": 1,
            "rules": [
                {"name": "a", "action": "record", "colour": 1},
                {"name": "b", "action": "record", "when": {"room_id_regex": "("}},
            ],
        }
    )
    assert "rules[0] ('a')" in message
    assert "rules[1] ('b')" in message


# --- versions ------------------------------------------------------------------------------

BASE = {
    "version": 1,
    "rules": [
        {"name": "a", "when": {"room_id": "x-*"}, "action": "record", "record_mode": "mixed"},
        {"name": "b", "action": "skip", "reason": "rest"},
    ],
}


def test_policy_version_is_stable_for_the_same_content() -> None:
    first = parse_policy(json.loads(json.dumps(BASE)))
    second = parse_policy(json.loads(json.dumps(BASE)), source="elsewhere.yaml")
    assert first.version == second.version
    assert first.version.startswith("sha256:")


def test_policy_version_ignores_spelling_of_the_same_meaning() -> None:
    spelled = json.loads(json.dumps(BASE))
    spelled["rules"][0]["record_mode"] = 2
    spelled["rules"][0]["when"]["room_id"] = ["x-*"]
    assert parse_policy(spelled).version == parse_policy(BASE).version


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["rules"][0].update(record_mode="both"),
        lambda d: d["rules"][0]["when"].update(room_id="y-*"),
        lambda d: d["rules"][1].update(reason="other"),
        lambda d: d["rules"][0].update(name="renamed"),
        lambda d: d["rules"].reverse(),
        lambda d: d.update(default={"action": "record"}),
    ],
)
def test_policy_version_changes_when_a_rule_changes(change: Any) -> None:
    changed = json.loads(json.dumps(BASE))
    change(changed)
    assert parse_policy(changed).version != parse_policy(BASE).version


# --- files ---------------------------------------------------------------------------------

YAML_TEXT = """\
version: 1
rules:
  - name: a
    when:
      room_id: "x-*"
    action: record
    record_mode: mixed
  - name: b
    action: skip
    reason: rest
"""


def test_load_policy_from_yaml_and_json_files(tmp_path: Path) -> None:
    yaml_file = tmp_path / "policy.yaml"
    yaml_file.write_text(YAML_TEXT)
    json_file = tmp_path / "policy.json"
    json_file.write_text(json.dumps(BASE))
    from_yaml = load_policy(yaml_file)
    from_json = load_policy(str(json_file))
    assert from_yaml.version == from_json.version == parse_policy(BASE).version
    assert from_yaml.source == str(yaml_file)
    assert from_yaml.decide(event("x-1")).rule == "a"
    assert from_json.decide(event("z-1")).rule == "b"


def test_load_policy_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy(missing)
    assert str(missing) in str(info.value)


def test_load_policy_on_a_directory_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        load_policy(tmp_path)


def test_load_policy_with_broken_yaml_names_the_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nrules: [\n")
    with pytest.raises(PolicyError) as info:
        load_policy(broken)
    assert str(broken) in str(info.value)


def test_load_policy_with_invalid_rule_names_path_and_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML_TEXT.replace("record_mode: mixed", "record_mode: loud"))
    with pytest.raises(PolicyError) as info:
        load_policy(bad)
    assert str(bad) in str(info.value)
    assert "rules[0] ('a') field record_mode" in str(info.value)


def test_load_policy_on_an_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(PolicyError):
        load_policy(empty)


def test_load_policy_on_a_non_utf8_file_is_a_policy_error(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("version: 1\n# café\n".encode("latin-1"))
    with pytest.raises(PolicyError) as info:
        load_policy(latin)
    assert str(latin) in str(info.value)


# --- the shipped example policy ------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(DEFAULT_POLICY)


def sample(name: str, app_id: str | None = None) -> RoomEvent:
    ev = parse_message(json.loads((EVENTS / name).read_text()), EventSource.WEBHOOK, app_id)
    assert isinstance(ev, RoomEvent)
    return ev


def test_shipped_policy_records_ranked_mixed_without_the_observer_bot(shipped: Policy) -> None:
    decision = shipped.decide(sample("room-created.json"))
    assert (decision.record, decision.rule) == (True, "ranked-mixed")
    assert decision.plan is not None
    assert decision.plan.record_mode is RecordMode.MIXED
    assert decision.plan.block_user_ids == ("observer-bot",)
    assert decision.plan.allow_user_ids == ()


def test_shipped_policy_skips_practice_rooms(shipped: Policy) -> None:
    decision = shipped.decide(sample("room-created-practice.json"))
    assert (decision.record, decision.rule) == (False, "practice-rooms-never")
    assert decision.plan is None
    assert "practice" in decision.reason


def test_shipped_policy_records_support_calls_single(shipped: Policy) -> None:
    decision = shipped.decide(sample("trtc-room-created.json", app_id="1400000000"))
    assert (decision.record, decision.rule) == (True, "support-calls-single")
    assert decision.plan is not None
    assert decision.plan.record_mode is RecordMode.SINGLE
    assert [m.rule for m in decision.misses] == [
        "practice-rooms-never",
        "tournaments-both-streams",
        "ranked-mixed",
    ]


def test_shipped_policy_records_gold_tournaments_both(shipped: Policy) -> None:
    decision = shipped.decide(event("tourney-final-1", tier="gold"))
    assert (decision.record, decision.rule) == (True, "tournaments-both-streams")
    assert decision.plan is not None
    assert decision.plan.record_mode is RecordMode.BOTH


@pytest.mark.parametrize(
    "ev",
    [
        event("tourney-final-1", tier="bronze"),
        event("ranked-eu-9", mode="ranked", players=1),
        event("support-12a"),
        event("test-room", mode="ranked", players=10),
    ],
    ids=["bronze-tourney", "ranked-solo", "support-not-numeric", "test-room-even-if-ranked"],
)
def test_shipped_policy_skips_everything_else(shipped: Policy, ev: RoomEvent) -> None:
    decision = shipped.decide(ev)
    assert decision.record is False
    assert decision.plan is None


def test_shipped_policy_default_is_skip_with_a_reason(shipped: Policy) -> None:
    decision = shipped.decide(event("lobby-1"))
    assert (decision.record, decision.rule) == (False, "default")
    assert decision.reason == "no rule asks for this room to be recorded"
    assert len(decision.misses) == len(shipped.document.rules)
