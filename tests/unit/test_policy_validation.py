"""Every refused document names the rule (index and name) and the field path; v1 stays v1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from handler.domain.policy import PolicyError, load_policy, parse_policy, parse_policy_text
from tests.unit.policy_helpers import one_rule, room

ROOT = Path(__file__).resolve().parents[2]


def refused(rule: dict[str, Any], name: str = "r", **doc: Any) -> str:
    data = {"version": 1, "rules": [{"name": "ok", "action": "skip"}, {"name": name, **rule}]}
    with pytest.raises(PolicyError) as err:
        parse_policy({**data, **doc}, "p.yaml")
    return str(err.value)


@pytest.mark.parametrize(
    ("rule", "where", "what"),
    [
        ({"action": "record", "colour": "red"}, "field colour", "Extra inputs"),
        ({"action": "record", "when": {"roomid": "x"}}, "field when.roomid", "Extra inputs"),
        (
            {"action": "record", "when": {"attributes": {"mode": {"equal": "x"}}}},
            "field when.attributes.mode.equal",
            "Extra inputs",
        ),
        ({"action": "record", "when": {"biz_id": "abc"}}, "field when.biz_id.0", "integer"),
        ({"action": "record", "when": {"biz_id": [0]}}, "field when.biz_id.0", "greater than 0"),
        ({"action": "record", "when": {"source": "email"}}, "field when.source.0", "webhook"),
        ({"action": "maybe"}, "field action", "'record' or 'skip'"),
        ({"action": "record", "record_mode": "loud"}, "field record_mode", "single, mixed"),
        (
            {"action": "record", "when": {"attributes": {"n": {"exists": "yes"}}}},
            "field when.attributes.n.exists",
            "boolean",
        ),
        (
            {"action": "record", "when": {"attributes": {"n": {"gt": 5, "lt": 3}}}},
            "field when.attributes.n",
            "impossible range",
        ),
        (
            {"action": "record", "when": {"attributes": {"n": {"gt": 5, "lte": 5}}}},
            "field when.attributes.n",
            "impossible range",
        ),
        (
            {"action": "record", "when": {"attributes": {"n": {"gte": 5, "lt": 5}}}},
            "field when.attributes.n",
            "impossible range",
        ),
        (
            {"action": "record", "when": {"room_id_regex": ""}},
            "field when.room_id_regex",
            "empty regular expression",
        ),
        (
            {"action": "record", "when": {"room_id": "room-[abc"}},
            "field when.room_id",
            "never closed",
        ),
        ({"action": "record", "when": {"room_id": ""}}, "field when.room_id", "empty pattern"),
        (
            {"action": "record", "when": {"room_id_regex": "^(unclosed"}},
            "field when.room_id_regex",
            "invalid regular expression",
        ),
        (
            {"action": "record", "allow_user_ids": [f"u{i}" for i in range(21)]},
            "field allow_user_ids",
            "at most 20",
        ),
        (
            {"action": "record", "allow_user_ids": ["a"], "block_user_ids": ["b"]},
            "field block_user_ids",
            "not both",
        ),
        ({"action": "record", "allow_user_ids": [7]}, "field allow_user_ids.0", "string"),
        ({"action": "skip", "record_mode": "both"}, "field (rule)", "takes only a reason"),
        (
            {"action": "record", "when": {"timezone": "Europe/Atlantis", "days": "mon"}},
            "field when.timezone",
            "unknown timezone",
        ),
        (
            {"action": "record", "when": {"time_of_day": "23:00-23:00"}},
            "field when.time_of_day",
            "is empty",
        ),
    ],
)
def test_refusals_name_rule_and_field(rule: dict[str, Any], where: str, what: str) -> None:
    message = refused(rule)
    assert message.startswith("p.yaml: invalid policy: ")
    assert f"rules[1] ('r') {where}" in message
    assert what in message


def test_rule_without_a_usable_name_is_named_by_index() -> None:
    message = refused({"action": "record", "when": {"days": "funday"}}, name="")
    assert "rules[1] field name" in message
    assert "rules[1] field when.days" in message  # every problem is listed, not just the first


def test_document_level_problems() -> None:
    for data, expected in [
        ({"version": 2}, "version: Input should be 1"),
        ({"version": 1, "rule": []}, "rule: Extra inputs"),
        ({"version": 1, "default": {"action": "record", "bogus": 1}}, "default.bogus"),
        (
            {"version": 1, "rules": [{"name": "a", "action": "skip"}] * 2},
            "rule name 'a' is used twice",
        ),
        ({"version": 1, "rules": [{"name": "default", "action": "skip"}]}, "names the default"),
    ]:
        with pytest.raises(PolicyError, match=expected):
            parse_policy(data)
    with pytest.raises(PolicyError, match="the document is empty"):
        parse_policy_text("")
    with pytest.raises(PolicyError, match="not valid YAML"):
        parse_policy_text("version: [1")


def test_shipped_v1_document_keeps_its_version_hash() -> None:
    """Format 1 grew new keys; a document not using them hashes exactly as before."""
    assert load_policy(ROOT / "policies" / "default.yaml").version == "sha256:f49cfea0dc39a66b"


def test_version_ignores_formatting_but_not_meaning(tmp_path: Path) -> None:
    text = (ROOT / "policies" / "default.yaml").read_text()
    data = yaml.safe_load(text)
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(data, indent=4))
    base = load_policy(ROOT / "policies" / "default.yaml").version
    assert load_policy(as_json).version == base
    data["rules"][1]["sample_percent"] = 50
    assert parse_policy(data).version != base


def test_regex_and_globs_are_compiled_once_at_load() -> None:
    policy = one_rule(when={"room_id_regex": r"^support-\d+$", "room_id": ["support-*"]})
    when = policy.document.rules[0].when
    assert when.room_regex is not None
    assert when.room_regex.pattern == r"^support-\d+$"
    assert when.room_globs is not None
    assert policy.decide(room("support-12")).record
    assert not policy.decide(room("support-x")).record


def test_booleans_are_not_numbers_and_true_is_not_one() -> None:
    policy = one_rule(when={"attributes": {"players": {"gte": 1}, "ranked": True}})
    assert policy.decide(room(players=2, ranked=True)).record
    assert not policy.decide(room(players=True, ranked=True)).record
    assert not policy.decide(room(players=2, ranked=1)).record


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handler", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_check_policy_command_refuses_with_the_spot(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nrules:\n  - name: nights\n    action: record\n"
        "    when: {timezone: Moon/Base, time_of_day: '22:00-02:00'}\n"
    )
    result = _cli("check-policy", str(bad))
    assert result.returncode == 1
    assert "rules[0] ('nights') field when.timezone: unknown timezone 'Moon/Base'" in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text(bad.read_text().replace("Moon/Base", "Europe/Paris"))
    ok = _cli("check-policy", str(good))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"ok: {good}: 1 rules, version sha256:")


def test_the_full_example_policy_loads_and_decides_as_its_comments_say() -> None:
    policy = load_policy(ROOT / "policies" / "example-full.yaml")
    assert [r.name for r in policy.document.rules] == [
        "no-test-rooms",
        "cup-finals",
        "ranked-evenings",
        "winter-event",
        "ranked-sample",
    ]
    ranked = {"mode": "ranked", "players": 4}
    saturday_early = room(at="2026-11-28T00:30:00Z", **ranked)  # Sat 01:30 Berlin
    monday_early = room(at="2026-11-23T00:30:00Z", **ranked)  # Mon 01:30 Berlin
    assert policy.decide(saturday_early).rule == "ranked-evenings"
    assert policy.decide(monday_early).rule == "ranked-sample"


def test_a_rule_lists_at_most_100_room_id_patterns() -> None:
    """docs/policy.md: a longer list is refused naming the field (a room table belongs in a
    regex or in the game's own attributes, not in a policy file)."""
    globs = [f"cup-{i}-*" for i in range(101)]
    one_rule(when={"room_id": globs[:100]})
    with pytest.raises(
        PolicyError, match=r"field when\.room_id: Value should have at most 100 items"
    ):
        one_rule(when={"room_id": globs})


def test_a_closed_range_of_one_number_is_allowed() -> None:
    """gte and lte on the same number leave exactly that number: not an impossible range."""
    policy = one_rule(when={"attributes": {"players": {"gte": 4, "lte": 4}}})
    assert [policy.decide(room(players=n)).record for n in (3, 4, 5)] == [False, True, False]
