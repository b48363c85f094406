"""`python -m handler check-policy POLICY --cases CASES.yaml`, run as CI would run it: the shipped
case files hold, a wrong expectation fails naming what was expected, decided and why, and a
malformed cases file is one line naming the case and the field, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from handler.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
SHIPPED = sorted(POLICIES.glob("*.cases.yaml"))


def check(policy: Path | str, cases: Path | str) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter, as CI runs it."""
    env = {k: v for k, v in os.environ.items() if k != "RECORDING_POLICY"}
    return subprocess.run(
        [sys.executable, "-m", "handler", "check-policy", str(policy), "--cases", str(cases)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_shipped_policy_has_a_case_file() -> None:
    policies = {p.name for p in POLICIES.glob("*.yaml")} - {p.name for p in SHIPPED}
    policies -= {p for p in policies if p.startswith("schedules")}  # schedules, not policies
    assert {p.removesuffix(".yaml") + ".cases.yaml" for p in policies} == {p.name for p in SHIPPED}


@pytest.mark.parametrize("cases", SHIPPED, ids=lambda p: p.name)
def test_the_shipped_cases_hold(cases: Path) -> None:
    policy = cases.with_name(cases.name.removesuffix(".cases.yaml") + ".yaml")
    done = check(policy, cases)
    count = len(yaml.safe_load(cases.read_text())["cases"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("\nok    ") + done.stdout.startswith("ok    ") == count
    assert f"{count} cases, {count} hold, 0 fail" in done.stdout


def test_a_wrong_expectation_fails_naming_expected_decided_and_why(tmp_path: Path) -> None:
    doc = yaml.safe_load((POLICIES / "default.cases.yaml").read_text())
    doc["cases"][0]["expect"] = {"action": "record", "rule": "ranked-mixed"}
    doc["cases"][4]["expect"]["record_mode"] = "single"  # the ranked room is mixed
    cases = tmp_path / "wrong.cases.yaml"
    cases.write_text(yaml.safe_dump(doc))
    done = check(POLICIES / "default.yaml", cases)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "FAIL  practice rooms are never recorded (action, rule differ)" in out
    assert "  expected  action=record rule=ranked-mixed" in out
    assert "  decided   action=skip rule=practice-rooms-never" in out
    assert "yes   practice-rooms-never: SKIP: practice and test rooms are not recorded" in out
    assert "FAIL  ranked rooms are recorded mixed, without the observer bot" in out
    assert "expected  action=record rule=ranked-mixed record_mode=single" in out
    assert "decided   action=record rule=ranked-mixed record_mode=mixed" in out
    assert "8 cases, 6 hold, 2 fail" in out
    assert "ok    gold tournaments get both streams" in out  # the others still run


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"event": {"biz_id": 1, "room_id": "r"}}, "cases[0] ('c') field expect: Field required"),
        (
            {"event": {"biz_id": 1, "room_id": "r"}, "expect": {"action": "maybe"}},
            "cases[0] ('c') field expect.action: Input should be 'record' or 'skip'",
        ),
        (
            {"event": {"biz_id": 1, "room_id": "r"}, "expect": {"action": "record", "mode": 2}},
            "cases[0] ('c') field expect.mode: Extra inputs are not permitted",
        ),
        (
            {"event": {"biz_id": "1", "room_id": "r"}, "expect": {"action": "skip"}},
            "cases[0] ('c') field event.biz_id: Input should be a valid integer",
        ),
        (
            {"event": {"biz_id": 1, "room_id": "r", "colour": 1}, "expect": {"action": "skip"}},
            "cases[0] ('c') field event.colour: Extra inputs are not permitted",
        ),
        (
            {
                "event": {"biz_id": 1, "room_id": "r", "attributes": {"players": float("inf")}},
                "expect": {"action": "skip"},
            },
            "cases[0] ('c') field event.attributes.players: number out of range (not finite)",
        ),
        (
            {
                "event": {"biz_id": 1, "room_id": "r"},
                "now": "tonight",
                "expect": {"action": "skip"},
            },
            "cases[0] ('c') field now: not an ISO 8601 date-time",
        ),
        (
            {
                "event": {"biz_id": 1, "room_id": "r"},
                "now": "2026-12-04T20:00:00",
                "expect": {"action": "skip"},
            },
            "cases[0] ('c') field now: needs a timezone (e.g. Z or +01:00)",
        ),
        (
            {
                "event": {"biz_id": 1, "room_id": "r", "type": "room.closed"},
                "expect": {"action": "skip"},
            },
            "cases[0] ('c') field event.type: a case checks a decision, so only room.created",
        ),
    ],
)
def test_a_malformed_case_is_one_line_naming_the_case_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: dict[str, object], expected: str
) -> None:
    cases = tmp_path / "bad.cases.yaml"
    cases.write_text(yaml.safe_dump({"cases": [{"name": "c", **case}]}))
    code = main(["check-policy", str(POLICIES / "default.yaml"), "--cases", str(cases)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"error: {cases}: {expected}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cases: []\n", "field cases: List should have at least 1 item after validation, not 0"),
        ("- just a list\n", "the document must be a mapping with a `cases` list"),
        ("cases: [\n", "not valid YAML/JSON: "),
    ],
)
def test_a_malformed_cases_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    cases = tmp_path / "bad.cases.yaml"
    cases.write_text(text)
    code = main(["check-policy", str(POLICIES / "default.yaml"), "--cases", str(cases)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {cases}: {expected}")
    assert err.count("\n") == 1


def test_a_missing_cases_file_is_exit_2_and_a_broken_policy_exit_1(tmp_path: Path) -> None:
    missing = check(POLICIES / "default.yaml", tmp_path / "none.yaml")
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)
    assert "none.yaml: No such file or directory" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: [{name: x, action: loud}]\n")
    broken = check(bad, POLICIES / "default.cases.yaml")
    assert broken.returncode == 1
    assert "rules[0] ('x') field action" in broken.stderr
