"""`max_duration`: parsed and refused like every policy field, carried by the decision, kept in
the ledger entry as its end (a window's earlier end wins; a retry never extends it)."""

from __future__ import annotations

from typing import Any

import pytest

from handler.domain.decision import Decision, RecordPlan
from handler.domain.durations import format_duration, seconds
from handler.domain.ledger import MAX_DURATION_END
from handler.domain.ledger_rules import start_retry_later, starting
from handler.domain.policy import PolicyError, parse_policy
from handler.domain.policy.explain import explain, time_limits
from tests.unit.policy_helpers import BIZ, one_rule, room

HOUR = 3600


@pytest.mark.parametrize(
    ("written", "expected"),
    [(None, 6 * HOUR), ("90m", 5400), ("1h30m", 5400), ("2d", 2 * 86400), (7200, 7200),
     ("none", None), ("None", None)],
)  # fmt: skip
def test_the_decision_carries_the_rules_limit(written: Any, expected: int | None) -> None:
    rule = {} if written is None else {"max_duration": written}
    decision = one_rule(**rule).decide(room())
    assert (decision.record, decision.max_duration_seconds) == (True, expected)


def test_the_default_action_has_its_own_limit_and_skips_have_none() -> None:
    policy = parse_policy(
        {"version": 1, "rules": [{"name": "never", "action": "skip",
                                  "when": {"room_id": "practice-*"}}],
         "default": {"action": "record", "max_duration": "12h"}}
    )  # fmt: skip
    assert policy.decide(room()).max_duration_seconds == 12 * HOUR
    assert policy.decide(room("practice-1")).max_duration_seconds is None
    sampled_out = one_rule(sample_percent=0).decide(room())
    assert (sampled_out.record, sampled_out.max_duration_seconds) == (False, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "write none to record without a time limit, or leave max_duration out"),
        ("10s", "must be from 1m to 366d (none: no time limit)"),
        ("400d", "must be from 1m to 366d"),
        ("6 hours", "use a duration like 90m, 6h, 1h30m, 2d (or seconds), or none"),
        (True, "use a duration like"),
        (1.5, "use a duration like"),
    ],
)
def test_bad_limits_are_refused_naming_rule_and_field(value: Any, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        one_rule(max_duration=value)
    assert "rules[0] ('r') field max_duration" in str(err.value)
    assert message in str(err.value)


def test_a_skip_takes_no_limit() -> None:
    with pytest.raises(PolicyError, match="a skip action takes only a reason, not max_duration"):
        one_rule(action="skip", max_duration="1h")


def test_explain_and_check_policy_show_the_limit() -> None:
    policy = one_rule(max_duration="90m", default="record")
    assert "limit   max_duration 1h30m: ended then" in explain(room(), policy).text()
    assert explain(room(), policy).as_dict()["decision"]["max_duration_seconds"] == 5400
    assert time_limits(policy) == "max_duration: r 1h30m, default 6h (default)"
    unlimited = one_rule(max_duration="none")
    assert "max_duration none: records until the room closes" in explain(room(), unlimited).text()


def test_durations_read_back_as_written() -> None:
    for text in ("6h", "1h30m", "2d", "45s", "1d1h1m1s"):
        assert format_duration(seconds(text)) == text


def _decision(limit: int | None) -> Decision:
    return Decision(
        record=True, rule="r", reason="x", policy_version="v", plan=RecordPlan(),
        max_duration_seconds=limit,
    )  # fmt: skip


def test_the_entry_ends_at_the_limit_unless_its_window_ends_first() -> None:
    at = 1_000_000.0
    limited = starting(BIZ, "r", "s", _decision(6 * HOUR), at)(None)
    assert limited is not None
    assert (limited.ends_at, limited.end_reason) == (at + 6 * HOUR, MAX_DURATION_END)
    assert not limited.in_window
    assert limited.end_detail() == "max_duration: 6h since the session began (rule 'r')"
    window = starting(BIZ, "r", "s", _decision(6 * HOUR), at, ends_at=at + HOUR)(None)
    assert window is not None
    assert (window.ends_at, window.end_reason, window.in_window) == (at + HOUR, None, True)
    later_window = starting(BIZ, "r", "s", _decision(HOUR), at, ends_at=at + 6 * HOUR)(None)
    assert later_window is not None
    assert (later_window.ends_at, later_window.end_reason) == (at + HOUR, MAX_DURATION_END)
    unlimited = starting(BIZ, "r", "s", _decision(None), at)(None)
    assert unlimited is not None
    assert unlimited.ends_at is None


def test_a_retried_start_never_moves_the_end_later() -> None:
    at = 1_000_000.0
    first = starting(BIZ, "r", "s", _decision(6 * HOUR), at)(None)
    assert first is not None
    failed = start_retry_later("InternalError", "try again", at + 60)(first)
    assert failed is not None
    again = starting(BIZ, "r", "s", _decision(6 * HOUR), at + 5 * HOUR)(failed)
    assert again is not None
    assert again.ends_at == at + 6 * HOUR
