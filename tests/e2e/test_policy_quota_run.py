"""A `max_concurrent` cap enforced through the worker with a real counter (a SQLite file, or
the recording ledger): the third room is refused while two record, and a room.closed frees a
slot. The emulator counts StartRecord."""

from __future__ import annotations

from pathlib import Path

import pytest

from handler.bootstrap import app
from handler.entrypoints import worker
from tests.conftest import Stack, sqs_event

POLICY = """
version: 1
rules:
  - name: capped
    when: {room_id: "vip-*"}
    action: record
    max_concurrent: 2
default: {action: skip}
"""


def _event(kind: str, room: str) -> dict[str, object]:
    return {
        "version": 1,
        "type": kind,
        "id": f"{kind}-{room}",
        "time": "2026-11-23T21:00:00Z",
        "biz_id": 1400000000,
        "room_id": room,
        "session": "s-1",
        "attributes": {},
    }


@pytest.mark.parametrize("counter", ["sqlite", "ledger"])
def test_cap_refuses_the_third_room_until_one_closes(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counter: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("RECORDING_POLICY", str(policy))
    setting = f"sqlite:///{tmp_path}/active.db" if counter == "sqlite" else "ledger:"
    monkeypatch.setenv("ACTIVE_RECORDINGS", setting)
    app.reset()

    def run(*events: dict[str, object]) -> list[dict[str, object]]:
        response, report = worker.process_batch(sqs_event(*events), stack.context("worker"))
        assert response == {"batchItemFailures": []}
        return [r["outcome"] for r in report]

    first = run(_event("room.created", "vip-1"), _event("room.created", "vip-2"))
    assert [o["status"] for o in first] == ["started", "started"]
    [third] = run(_event("room.created", "vip-3"))
    assert third["status"] == "skipped"
    assert third["reason"] == "quota: rule capped has 2/2 concurrent recordings"
    assert stack.starts() == 2
    # A duplicate of a started room replays its outcome and does not count twice.
    [again] = run(_event("room.created", "vip-1"))
    assert again["duplicate"] is True
    run(_event("room.closed", "vip-1"))
    [later] = run({**_event("room.created", "vip-3"), "session": "s-2"})
    assert later["status"] == "started"
    assert stack.starts() == 3
