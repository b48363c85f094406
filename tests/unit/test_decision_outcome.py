"""The recorder's plan, command and outcome models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from handler.domain.decision import Decision, RecordMode, RecordPlan
from handler.domain.events import EventKind, InboundFormat, RoomEvent
from handler.domain.outcome import Outcome, OutcomeStatus, StartCommand


def test_plan_defaults_to_mixed_with_no_lists() -> None:
    plan = RecordPlan()
    assert plan.record_mode is RecordMode.MIXED
    assert (plan.allow_user_ids, plan.block_user_ids) == ((), ())


def test_record_modes_are_gme_numbers() -> None:
    assert [int(m) for m in (RecordMode.SINGLE, RecordMode.MIXED, RecordMode.BOTH)] == [1, 2, 3]


def test_plan_refuses_both_lists_and_more_than_20_ids() -> None:
    with pytest.raises(ValidationError, match="not both"):
        RecordPlan(allow_user_ids=("a",), block_user_ids=("b",))
    with pytest.raises(ValidationError):
        RecordPlan(allow_user_ids=tuple(f"u{i}" for i in range(21)))
    assert len(RecordPlan(block_user_ids=tuple(f"u{i}" for i in range(20))).block_user_ids) == 20


def test_plan_is_frozen() -> None:
    plan = RecordPlan()
    with pytest.raises(ValidationError):
        plan.record_mode = RecordMode.SINGLE  # type: ignore[misc]


def test_start_command_copies_the_session_key_from_the_event() -> None:
    event = RoomEvent(
        kind=EventKind.ROOM_CREATED,
        event_id="evt-1",
        biz_id=1400000000,
        room_id="room-1",
        session="s-1",
        occurred_at=datetime(2026, 11, 23, 21, tzinfo=UTC),
        format=InboundFormat.ROOM_EVENT_V1,
    )
    decision = Decision(record=True, rule="r", reason="why", policy_version="sha256:x")
    cmd = StartCommand.for_event(event, decision)
    assert (cmd.biz_id, cmd.room_id, cmd.session, cmd.event_id) == (
        1400000000,
        "room-1",
        "s-1",
        "evt-1",
    )
    assert cmd.occurred_at == event.occurred_at
    assert cmd.decision == decision


@pytest.mark.parametrize("status", list(OutcomeStatus))
def test_only_failed_outcomes_are_not_ok(status: OutcomeStatus) -> None:
    assert Outcome(status=status).ok is (status is not OutcomeStatus.FAILED)


def test_outcome_keeps_task_ids_beyond_2_53_exactly() -> None:
    task_id = "9007199254741993123"
    again = Outcome.model_validate_json(
        Outcome(status=OutcomeStatus.STARTED, task_id=task_id).model_dump_json()
    )
    assert again.task_id == task_id
