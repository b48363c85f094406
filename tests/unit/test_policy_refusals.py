"""Policy documents refused at load, and what each refusal names.

A mistaken policy must be refused when it is loaded, naming the rule, its index and the field,
and every problem at once, rather than be half-applied and decide the wrong rooms.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.policy_when_helpers import event, one_rule, refusal

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
