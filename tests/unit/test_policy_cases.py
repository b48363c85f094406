"""Policy test cases: each expectation field is compared, and only the fields given."""

from __future__ import annotations

import pytest

from handler.domain.policy import parse_policy_text
from handler.tools.policy_cases import load_cases, run_cases

POLICY = parse_policy_text(
    """
version: 1
rules:
  - name: casters
    when: {room_id: "cup-*"}
    action: record
    record_mode: both
    allow_user_ids: [caster-1, referee]
  - name: no-bots
    when: {room_id: "ranked-*"}
    action: record
    block_user_ids: [bot]
default: {action: skip}
""",
    "test-policy",
)


def one(expect: str, room: str = "cup-1") -> tuple[str, bool]:
    text = f"cases:\n  - name: c\n    event: {{biz_id: 1, room_id: {room}}}\n    expect: {expect}\n"
    return run_cases(POLICY, load_cases(text, "cases.yaml"))


@pytest.mark.parametrize(
    "expect",
    [
        "{action: record}",
        "{action: record, rule: casters}",
        "{action: record, record_mode: both}",
        "{action: record, record_mode: 3}",
        "{action: record, allow_user_ids: [caster-1, referee]}",
        "{action: record, block_user_ids: []}",
    ],
)
def test_a_right_expectation_holds(expect: str) -> None:
    report, held = one(expect)
    assert held, report
    assert report.splitlines()[0] == "ok    c"


@pytest.mark.parametrize(
    ("expect", "differ"),
    [
        ("{action: skip}", "action"),
        ("{action: record, rule: no-bots}", "rule"),
        ("{action: record, record_mode: mixed}", "record_mode"),
        ("{action: record, allow_user_ids: [caster-1]}", "allow_user_ids"),
        ("{action: record, allow_user_ids: [referee, caster-1]}", "allow_user_ids"),
        ("{action: record, block_user_ids: [bot]}", "block_user_ids"),
    ],
)
def test_each_wrong_field_fails_and_is_named(expect: str, differ: str) -> None:
    report, held = one(expect)
    assert not held
    assert report.splitlines()[0] == f"FAIL  c ({differ} differ)"
    assert "  decided   action=record rule=casters record_mode=both" in report
    assert "allow_user_ids=['caster-1', 'referee']" in report


def test_a_skip_has_no_plan_so_a_record_mode_never_holds() -> None:
    report, held = one("{action: skip, record_mode: mixed}", room="casual-1")
    assert not held
    assert "FAIL  c (record_mode differ)" in report
    assert "  decided   action=skip rule=default" in report
    assert "plan    none (not recorded)" in report
