"""Plans that follow the policy (`apply_to_running`), through the real entry points: a room event
at the webhook starts a recording, the policy file changes (the app's policy provider, on a
clock the test moves past its interval, reads it again), and the scheduler's next tick brings
the running task to the new decision over the real SDK against the emulator (ModifyRecordInfo,
or StopRecord when the rule now skips), noting it in the SQLite ledger; a rule without
`apply_to_running` leaves its sessions as they started. The same unit taken off the queue by
the worker does the same, once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from handler.bootstrap import app
from handler.domain.commands import Follow
from handler.domain.decision import RecordMode
from handler.domain.ledger import LedgerState
from handler.domain.recording_events import StopReason, changes, stop_reason
from tests.conftest import ROOT, Stack
from tests.e2e.test_lifecycle import created, entry, running, send, tick
from tests.e2e.test_lifecycle_commands import deliver, results

RULE = "ranked-mixed"


@pytest.fixture
def edit_policy(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`edit_policy(**changes)`: the shipped policy with the ranked rule's keys changed (None
    removes a key), written where the stack reads it; its version in force is returned."""
    from handler.adapters.policy_source import FileSource, PolicyProvider

    path = tmp_path / "policy.yaml"
    clock = [0.0]
    doc = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())

    def write(**keys: Any) -> None:
        rule = next(r for r in doc["rules"] if r["name"] == RULE)
        for key, value in keys.items():
            if value is None:
                rule.pop(key, None)
            else:
                rule[key] = value
        path.write_text(yaml.safe_dump(doc))

    def edit(**keys: Any) -> str:
        write(**keys)
        clock[0] += 2  # past the provider's interval: the next use reads the file again
        return app.policy().version

    write()
    monkeypatch.setenv("RECORDING_POLICY", str(path))
    app.reset()
    app.policy_provider.provide(PolicyProvider(FileSource(path), 1, clock=lambda: clock[0]))
    return edit


def the_task(stack: Stack) -> Any:
    [task] = running(stack)
    return task


def test_a_changed_mode_reaches_the_running_task_within_a_tick(
    stack: Stack, edit_policy: Any
) -> None:
    edit_policy(apply_to_running=True)
    task_id = send(stack, created())["task_id"]
    assert (the_task(stack).record_mode, the_task(stack).unsubscribe_user_ids) == (
        2,
        ("observer-bot",),
    )
    before = entry()
    version = edit_policy(record_mode="single", block_user_ids=None, allow_user_ids=["p1", "p2"])

    report = tick(stack, time.time())
    assert report["follow_modified"] == 1
    task = the_task(stack)
    assert (str(task.task_id), task.record_mode) == (task_id, 1)
    assert (task.subscribe_user_ids, task.unsubscribe_user_ids) == (("p1", "p2"), ())
    after = entry()
    assert (after.state, after.policy_version, after.rule) == (
        LedgerState.RECORDING,
        version,
        RULE,
    )
    assert (after.record_mode, after.allow_user_ids) == (RecordMode.SINGLE, ("p1", "p2"))
    note = after.history[-1]
    assert (note.what, note.task_id) == ("modify", task_id)
    assert note.detail.endswith("mixed, all but observer-bot -> single, only p1, p2")
    [event] = [c.event for c in changes(before, after) if c.event is not None]
    assert (event.type, event.reason, event.task_id) == ("recording.modified", "policy", task_id)

    calls = len(stack.emulator.calls("ModifyRecordInfo"))
    assert calls == 1
    again = tick(stack, time.time() + 60)  # applied: the next tick plans nothing for it
    assert again.get("follow_modified", 0) == again.get("follow_stale", 0) == 0
    assert len(stack.emulator.calls("ModifyRecordInfo")) == calls
    assert stack.starts() == 1  # the same task all along


def test_a_rule_that_now_skips_stops_the_running_task_with_the_reason(
    stack: Stack, edit_policy: Any
) -> None:
    edit_policy(apply_to_running=True)
    task_id = send(stack, created())["task_id"]
    version = edit_policy(
        action="skip",
        reason="ranked rooms are no longer recorded",
        record_mode=None,
        block_user_ids=None,
    )
    report = tick(stack, time.time())
    assert report["follow_stopped"] == 1
    assert running(stack) == []
    [stop] = stack.emulator.calls("StopRecord")
    assert str(stop.task_id) == task_id
    e = entry()
    assert (e.state, e.closed) == (LedgerState.STOPPED, True)
    [close] = [h.detail for h in e.history if h.what == "close"]
    assert close.startswith(f"policy now skips: policy {version}, rule {RULE!r}")
    assert close.endswith("ranked rooms are no longer recorded")
    assert stop_reason(e) is StopReason.POLICY
    assert send(stack, created())["status"] == "skipped"  # a late duplicate delivery...
    assert running(stack) == []  # ...records nothing: the session is closed


def test_a_rule_without_apply_to_running_leaves_its_sessions_as_they_started(
    stack: Stack, edit_policy: Any
) -> None:
    send(stack, created())
    old = entry().policy_version
    edit_policy(record_mode="both")
    report = tick(stack, time.time())
    assert not any(k.startswith("follow_") for k in report)
    assert the_task(stack).record_mode == 2
    assert stack.emulator.calls("ModifyRecordInfo") == []
    assert entry().policy_version == old
    # Turned on later, the rule takes its running sessions along at the next tick.
    edit_policy(apply_to_running=True)
    assert tick(stack, time.time() + 60)["follow_modified"] == 1
    assert the_task(stack).record_mode == 3


def test_the_worker_runs_a_queued_unit_once(stack: Stack, edit_policy: Any) -> None:
    edit_policy(apply_to_running=True)
    task_id = send(stack, created())["task_id"]
    version = edit_policy(record_mode="both")
    e = entry()
    unit = Follow(
        biz_id=e.biz_id,
        room_id=e.room_id,
        session=e.session,
        at=time.time(),
        task_id=task_id,
        policy_version=version,
    )
    assert results(deliver(stack, unit)) == ["follow_modified"]
    assert results(deliver(stack, unit)) == ["follow_stale"]  # a duplicate delivery
    assert len(stack.emulator.calls("ModifyRecordInfo")) == 1
    assert the_task(stack).record_mode == 3
    other = unit.model_copy(update={"policy_version": "sha256:0000000000000000"})
    assert results(deliver(stack, other)) == ["follow_stale"]  # not the policy in force


def test_on_the_deployed_dynamodb_ledger_a_tick_modifies_and_the_next_reads_nothing_new(
    stack: Stack, edit_policy: Any, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from tests.servers import moto_env

    moto_env(monkeypatch, moto_url, "dynamodb")
    monkeypatch.setenv("LEDGER_STORE", f"dynamodb://ledger-{uuid.uuid4().hex[:8]}")
    provider = app.policy_provider()
    app.reset()
    app.policy_provider.provide(provider)  # the test's provider, on its clock
    app.ledger().inner.create_table()
    edit_policy(apply_to_running=True)
    rooms = [f"ranked-eu-{i}" for i in range(3)]
    for i, name in enumerate(rooms):
        send(stack, created(session=f"m-{i}", room=name))
    version = edit_policy(record_mode="single")
    assert tick(stack, time.time())["follow_modified"] == 3
    assert {t.record_mode for t in stack.emulator.tasks(running_only=True)} == {1}
    for i, name in enumerate(rooms):
        assert entry(session=f"m-{i}", room=name).policy_version == version
    assert app.ledger().count_open(RULE) == 3  # still counted under the rule
    report = tick(stack, time.time() + 60)
    assert not any(k.startswith("follow_") for k in report)
    assert len(stack.emulator.calls("ModifyRecordInfo")) == 3
