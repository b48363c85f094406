"""Explain: the library call and `python -m handler explain`, a dry run touching nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handler.domain.policy import InMemoryActiveRecordings, explain
from tests.unit.policy_helpers import room, yaml_policy

ROOT = Path(__file__).resolve().parents[2]

POLICY = """
version: 1
rules:
  - name: practice-never
    when: {room_id: ["practice-*"]}
    action: skip
    reason: practice rooms are not recorded
  - name: ranked-evenings
    when:
      biz_id: 1400000000
      attributes: {mode: ranked}
      timezone: Europe/Berlin
      time_of_day: "18:00-23:00"
    action: record
    record_mode: both
    max_concurrent: 2
  - name: ranked-sample
    when: {attributes: {mode: ranked}}
    action: record
    sample_percent: 100
default:
  action: skip
  reason: nothing asked for this room
"""


def test_library_explain_names_the_match_and_every_earlier_miss() -> None:
    policy = yaml_policy(POLICY)
    event = room("ranked-eu-1042", mode="ranked", at="2026-11-23T21:00:00Z")  # 22:00 Berlin
    result = explain(event, policy, active=InMemoryActiveRecordings({"ranked-evenings": 1}))
    assert result.decision.rule == "ranked-evenings"
    assert result.decision.record
    assert [m.rule for m in result.decision.misses] == ["practice-never"]
    text = result.text()
    assert "  no    practice-never: room_id 'ranked-eu-1042' matches none of ['practice-*']" in text
    assert "  yes   ranked-evenings: RECORD: matched rule 'ranked-evenings'" in text
    assert "plan    record_mode=both" in text


def test_library_explain_at_another_time_and_under_a_full_quota() -> None:
    policy = yaml_policy(POLICY)
    event = room("ranked-eu-1042", mode="ranked", at="2026-11-23T21:00:00Z")
    morning = explain(event, policy, now=datetime(2026, 11, 23, 8, tzinfo=UTC))
    assert morning.decision.rule == "ranked-sample"
    assert "local time Mon 2026-11-23 09:00 Europe/Berlin is outside 18:00-23:00" in morning.text()
    full = explain(event, policy, active=InMemoryActiveRecordings({"ranked-evenings": 2}))
    assert not full.decision.record
    assert "SKIP: quota: rule ranked-evenings has 2/2 concurrent recordings" in full.text()
    assert "plan    none (not recorded)" in full.text()
    no_counter = explain(event, policy)
    assert "note: quota: rule 'ranked-evenings' max_concurrent 2 not enforced" in no_counter.text()


def test_a_sampled_match_shows_its_bucket() -> None:
    """The bucket is what tells an operator why a session was (not) in the sample."""
    policy = yaml_policy(POLICY)
    event = room("ranked-eu-1042", mode="ranked", at="2026-11-23T08:00:00Z")
    result = explain(event, policy)
    assert result.decision.rule == "ranked-sample"
    assert result.decision.sample_bucket is not None
    assert f"sampling bucket {result.decision.sample_bucket} of 10000" in result.text()


def test_explaining_and_deciding_agree() -> None:
    policy = yaml_policy(POLICY)
    for i in range(300):
        event = room(
            f"{['practice', 'ranked', 'casual'][i % 3]}-{i}",
            biz_id=[1400000000, 1400000001][i % 2],
            at=f"2026-11-23T{i % 24:02d}:30:00Z",
            mode=["ranked", "casual"][i % 5 % 2],
        )
        fast = policy.decide(event, explain=False)
        full = explain(event, policy).decision
        assert full.model_copy(update={"misses": ()}) == fast
        names = [r.name for r in policy.document.rules]
        earlier = names.index(fast.rule) if fast.rule in names else len(names)
        assert [m.rule for m in full.misses] == names[:earlier]


def _cli(*args: str, stdin: str | None = None, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        # Pointed at nothing reachable: a dry run that tried GME or the store would fail or
        # leave a file behind.
        "GME_ENDPOINT": "http://127.0.0.1:9",
        "IDEMPOTENCY_STORE": f"sqlite:///{tmp}/must-not-exist.db",
    }
    return subprocess.run(
        [sys.executable, "-m", "handler", "explain", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=stdin,
        env=env,
        timeout=60,
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def test_cli_explains_a_room_event_file(tmp_path: Path, policy_file: Path) -> None:
    result = _cli("events/room-created.json", "--policy", str(policy_file), tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "yes   ranked-evenings: RECORD" in result.stdout
    assert not (tmp_path / "must-not-exist.db").exists()


def test_cli_explains_every_message_of_an_sqs_event(tmp_path: Path, policy_file: Path) -> None:
    result = _cli(
        "events/sqs-mixed-batch.json", "--policy", str(policy_file), "--json", tmp=tmp_path
    )
    assert result.returncode == 1  # some messages are invalid on purpose
    items = json.loads(result.stdout)
    assert items[0]["event"]["source"] == "queue"
    assert items[0]["decision"]["rule"] == "ranked-evenings"
    assert items[1]["invalid"]["code"] == "invalid_json"


def test_cli_http_trtc_file_with_now_and_source(tmp_path: Path, policy_file: Path) -> None:
    result = _cli(
        "events/http-trtc-room-created.json",
        "--policy",
        str(policy_file),
        "--now",
        "2026-11-23T12:00:00+01:00",
        "--source",
        "schedule",
        tmp=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "room_id=support-1001" in result.stdout
    assert "source=schedule" in result.stdout
    assert "time    2026-11-23T12:00:00+01:00" in result.stdout
    assert "yes   default: SKIP: nothing asked for this room" in result.stdout


def test_cli_reads_stdin_and_takes_active_counts(tmp_path: Path, policy_file: Path) -> None:
    body = (ROOT / "events" / "room-created.json").read_text()
    args = ("-", "--policy", str(policy_file), "--active", "ranked-evenings=2")
    result = _cli(*args, stdin=body, tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "quota: rule ranked-evenings has 2/2 concurrent recordings" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("events/room-created.json", "--now", "yesterday"), 2, "not an ISO 8601"),
        (("events/room-created.json", "--now", "2026-11-23T10:00:00"), 2, "needs a timezone"),
        (("events/room-created.json", "--active", "ranked"), 2, "RULE=COUNT"),
        (("events/missing.json",), 2, "missing.json"),
        (("events/invalid/not-json.txt",), 2, "invalid_json"),
    ],
)
def test_cli_usage_errors(args: tuple[str, ...], code: int, message: str, tmp_path: Path) -> None:
    result = _cli(*args, tmp=tmp_path)
    assert result.returncode == code
    assert message in result.stderr


def test_cli_refuses_a_broken_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: [{name: x, action: record, sample_percent: 101}]\n")
    result = _cli("events/room-created.json", "--policy", str(bad), tmp=tmp_path)
    assert result.returncode == 1
    assert "rules[0] ('x') field sample_percent" in result.stderr


@pytest.mark.parametrize(
    ("users", "line"),
    [
        (
            "allow_user_ids: [host-1, host-2]",
            "plan    record_mode=mixed, record only ['host-1', 'host-2']",
        ),
        (
            "block_user_ids: [observer-bot]",
            "plan    record_mode=mixed, never record ['observer-bot']",
        ),
        ("record_mode: mixed", "plan    record_mode=mixed\n"),
    ],
)
def test_the_plan_line_names_whose_audio_is_recorded(users: str, line: str) -> None:
    policy = yaml_policy(
        f"version: 1\nrules:\n  - name: all\n    action: record\n    record_mode: mixed\n"
        f"    {users}\ndefault: {{action: skip}}\n"
    )
    text = explain(room("ranked-1", mode="ranked"), policy).text() + "\n"
    assert line in text
