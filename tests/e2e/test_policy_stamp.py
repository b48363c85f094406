"""The policy version and rule travel with every decision into the log line and the stored
idempotency record, through the real worker, the emulator and a real SQLite file."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from handler.bootstrap import app
from handler.domain.policy import load_policy
from handler.entrypoints import worker
from tests.conftest import Stack, sqs_event

POLICY = """
version: 1
rules:
  - name: half-of-ranked
    when: {attributes: {mode: ranked}}
    action: record
    record_mode: single
    sample_percent: 50
    max_concurrent: 10
default: {action: skip, reason: not ranked}
"""


def _room(i: int) -> dict[str, object]:
    return {
        "version": 1,
        "type": "room.created",
        "id": f"evt-{i}",
        "time": "2026-11-23T21:00:00Z",
        "biz_id": 1400000000,
        "room_id": f"ranked-{i}",
        "session": f"m-{i}",
        "attributes": {"mode": "ranked"},
    }


def _stored(db: Path) -> list[dict[str, object]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT data FROM idempotency WHERE data IS NOT NULL").fetchall()
    return [json.loads(data) for (data,) in rows]


def test_version_and_rule_are_logged_and_stored(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(POLICY)
    monkeypatch.setenv("RECORDING_POLICY", str(policy_path))
    app.reset()
    version = load_policy(policy_path).version

    with caplog.at_level(logging.INFO):
        response, report = worker.process_batch(
            sqs_event(*[_room(i) for i in range(12)]), stack.context("worker")
        )
    assert response == {"batchItemFailures": []}
    statuses = [r["outcome"]["status"] for r in report]
    assert set(statuses) == {"started", "skipped"}  # sampled at 50%: both happen in 12 rooms
    assert stack.starts() == statuses.count("started")

    stored = _stored(stack.store_path)
    assert len(stored) == 12
    assert {s["policy_version"] for s in stored} == {version}
    assert {s["rule"] for s in stored} == {"half-of-ranked"}
    skipped = [s for s in stored if s["status"] == "skipped"]
    assert all(str(s["reason"]).startswith("sampling: bucket ") for s in skipped)

    lines = [r for r in caplog.records if r.getMessage() == "recording decision"]
    assert len(lines) == 12
    assert {r.__dict__["policy_version"] for r in lines} == {version}
    assert all(isinstance(r.__dict__["sample_bucket"], int) for r in lines)
    started = [r for r in lines if r.__dict__["decision"] == "record"]
    assert started
    assert all("not enforced" in r.__dict__["notes"][0] for r in started)
    warnings = [r for r in caplog.records if "caps are not enforced" in r.getMessage()]
    assert len(warnings) == 1  # once per policy version, not per event
