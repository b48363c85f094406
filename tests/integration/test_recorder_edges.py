"""The recorder's operator-facing edges, through the real SDK against the emulator and a real
SQLite idempotency file: clearing a stored failure from a fresh process, stopping tasks, and the
key prefix that every deployed outcome is stored under.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from handler.adapters.gme_client import TencentGme
from handler.adapters.stores import build_persistence_layer
from handler.domain.decision import Decision, RecordPlan
from handler.domain.gme import GmeError
from handler.domain.outcome import OutcomeStatus, StartCommand
from handler.service_layer.recorder import KEY_PREFIX, Recorder
from tests.conftest import BIZ_ID
from tests.integration.idempotency import FakeLambdaContext

ROOM = "ranked-eu-77"
COMMAND = StartCommand(
    biz_id=BIZ_ID,
    room_id=ROOM,
    session="s-1",
    event_id="evt-1",
    occurred_at=datetime(2020, 1, 1, tzinfo=UTC),  # old: RoomNotFound would be final
    decision=Decision(record=True, rule="r", reason="test", policy_version="v", plan=RecordPlan()),
)


@pytest.fixture
def gme(emulator: GmeEmulator) -> TencentGme:
    return TencentGme(emulator.url, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, timeout_seconds=2)


def recorder(gme: TencentGme, path: Path) -> Recorder:
    """A recorder as a new process builds it: a fresh persistence layer on the shared file."""
    built = Recorder(gme, build_persistence_layer(f"sqlite:///{path}"), expiry_seconds=3600)
    built.register_context(FakeLambdaContext())
    return built


def test_a_fresh_process_clears_a_stored_failure_and_the_replay_calls_gme(
    emulator: GmeEmulator, gme: TencentGme, tmp_path: Path
) -> None:
    store = tmp_path / "idempotency.db"
    emulator.fail_next("StartRecord", "InvalidParameterValue.InvalidRoomId")
    first = recorder(gme, store).ensure(COMMAND)
    assert first.status is OutcomeStatus.FAILED
    # The operator's replay runs in another process: its layer was never used for an ensure.
    assert recorder(gme, store).forget_failure(BIZ_ID, ROOM, "s-1") is True
    replayed = recorder(gme, store).ensure(COMMAND)
    assert (replayed.status, replayed.duplicate) == (OutcomeStatus.STARTED, False)
    assert len(emulator.tasks(BIZ_ID, ROOM)) == 1


def test_a_stored_success_is_never_forgotten(
    emulator: GmeEmulator, gme: TencentGme, tmp_path: Path
) -> None:
    store = tmp_path / "idempotency.db"
    started = recorder(gme, store).ensure(COMMAND)
    assert started.status is OutcomeStatus.STARTED
    assert recorder(gme, store).forget_failure(BIZ_ID, ROOM, "s-1") is False
    calls = len(emulator.calls("StartRecord"))
    again = recorder(gme, store).ensure(COMMAND)
    assert (again.status, again.duplicate, again.task_id) == (
        OutcomeStatus.STARTED,
        True,
        started.task_id,
    )
    assert len(emulator.calls("StartRecord")) == calls  # replayed, GME not asked again


def test_forgetting_an_unknown_key_is_a_no(gme: TencentGme, tmp_path: Path) -> None:
    assert recorder(gme, tmp_path / "i.db").forget_failure(BIZ_ID, "never-seen", "s") is False


def test_stop_task_says_whether_gme_had_it_and_raises_every_other_error(
    emulator: GmeEmulator, gme: TencentGme, tmp_path: Path
) -> None:
    rec = recorder(gme, tmp_path / "i.db")
    task_id = rec.ensure(COMMAND).task_id
    assert task_id is not None
    emulator.fail_next("StopRecord", "InternalError")
    with pytest.raises(GmeError) as info:
        rec.stop_task(BIZ_ID, task_id)
    assert info.value.code == "InternalError"
    assert len(emulator.tasks(BIZ_ID, ROOM, running_only=True)) == 1  # still recording
    assert rec.stop_task(BIZ_ID, task_id) is True
    assert emulator.tasks(BIZ_ID, ROOM, running_only=True) == []
    assert rec.stop_task(BIZ_ID, task_id) is False  # GME no longer has it


def test_outcomes_are_stored_under_the_stable_key_prefix(gme: TencentGme, tmp_path: Path) -> None:
    """Renaming the prefix would silently reset duplicate protection on the next deploy."""
    assert KEY_PREFIX == "gme-autorecord.ensure-recording"
    store = tmp_path / "idempotency.db"
    recorder(gme, store).ensure(COMMAND)
    with sqlite3.connect(store) as db:
        ids = [row[0] for row in db.execute("SELECT id FROM idempotency")]
    assert len(ids) == 1
    assert ids[0].startswith(f"{KEY_PREFIX}#")


def test_the_key_is_the_hash_of_biz_id_room_id_and_session_alone(
    gme: TencentGme, tmp_path: Path
) -> None:
    """The key every stored outcome is found by (Powertools: md5 of the sorted JSON of what
    KEY_FIELDS selects): a different decision for the same session is the same key."""
    selected = json.dumps([BIZ_ID, ROOM, "s-1"], sort_keys=True).encode()
    expected = f"{KEY_PREFIX}#{hashlib.md5(selected).hexdigest()}"  # noqa: S324 (Powertools')
    store = tmp_path / "idempotency.db"
    recorder(gme, store).ensure(COMMAND)
    other = COMMAND.decision.model_copy(update={"rule": "another", "policy_version": "v2"})
    again = recorder(gme, store).ensure(COMMAND.model_copy(update={"decision": other}))
    assert again.duplicate
    with sqlite3.connect(store) as db:
        assert [row[0] for row in db.execute("SELECT id FROM idempotency")] == [expected]


def test_modify_and_running_task_answer_what_gme_says(
    emulator: GmeEmulator, gme: TencentGme, tmp_path: Path
) -> None:
    from handler.domain.decision import RecordMode

    rec = recorder(gme, tmp_path / "i.db")
    assert rec.running_task(BIZ_ID, ROOM) is None
    task_id = rec.ensure(COMMAND).task_id
    assert task_id is not None
    running = rec.running_task(BIZ_ID, ROOM)
    assert running is not None
    assert running.task_id == task_id
    single = RecordPlan(record_mode=RecordMode.SINGLE)
    assert rec.modify_task(BIZ_ID, task_id, single) is True
    assert [t.record_mode for t in emulator.tasks(BIZ_ID, ROOM)] == [1]
    assert rec.stop_task(BIZ_ID, task_id) is True
    assert rec.modify_task(BIZ_ID, task_id, single) is False  # gone: an answer, not an error


def test_a_decision_to_record_without_a_plan_records_nothing(
    emulator: GmeEmulator, gme: TencentGme, tmp_path: Path
) -> None:
    planless = COMMAND.model_copy(
        update={"decision": COMMAND.decision.model_copy(update={"plan": None})}
    )
    outcome = recorder(gme, tmp_path / "i.db").ensure(planless)
    assert outcome.status is OutcomeStatus.SKIPPED
    assert emulator.calls() == []
