"""The recording policy as a document: its version, loading it from files, the shipped example.

Decisions carry the policy's version, so it must change with the meaning and only with it; a file
that cannot be read must name its path; and the example in `policies/default.yaml` must decide
the sample events the way its comments say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handler.domain.decision import RecordMode
from handler.domain.events import EventSource, RoomEvent
from handler.domain.inbound import parse_message
from handler.domain.policy import Policy, PolicyError, load_policy, parse_policy
from tests.unit.policy_when_helpers import DEFAULT_POLICY, EVENTS, event

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
