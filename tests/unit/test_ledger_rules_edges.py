"""Ledger rules at the edges of the lifecycle: late answers, failures after success, renewals.

Each test pins a state change that a one-line slip in `ledger_rules` would get wrong while every
other test still passed (found by mutation testing). Entries are built in memory.
"""

from __future__ import annotations

import pytest

from handler.domain.decision import Decision, RecordMode, RecordPlan
from handler.domain.ledger import (
    FILES_BYTES,
    MAX_DURATION_END,
    MAX_TEXT_BYTES,
    CallbackNote,
    LedgerEntry,
    LedgerState,
    json_string_bytes,
)
from handler.domain.ledger_rules import (
    after_outcome,
    callback,
    checked,
    closing,
    follow_refused,
    following,
    new_task,
    start_retry_later,
    starting,
    stopped,
    task_lost,
)
from handler.domain.outcome import Outcome, OutcomeStatus

PLAN = RecordPlan(record_mode=RecordMode.SINGLE, allow_user_ids=("u1",))
RECORD = Decision(record=True, rule="r", reason="x", policy_version="v", plan=PLAN)
SKIP = Decision(record=False, rule="s", reason="no", policy_version="v")
KEY = (1, "room", "s")


def applied(entry: LedgerEntry | None, *changes: object) -> LedgerEntry:
    for change in changes:
        result = change(entry)  # type: ignore[operator]
        assert result is not None, f"{change} left the entry unchanged"
        entry = result
    assert entry is not None
    return entry


def started(task: str = "7", *, duplicate: bool = False, adopted: bool = False) -> Outcome:
    status = OutcomeStatus.ADOPTED if adopted else OutcomeStatus.STARTED
    return Outcome(status=status, task_id=task, duplicate=duplicate, reason="ok")


def failed(code: str = "InvalidParameter") -> Outcome:
    return Outcome(status=OutcomeStatus.FAILED, error_code=code, reason="refused")


def fresh(at: float = 1.0) -> LedgerEntry:
    return applied(None, starting(*KEY, RECORD, at, ends_at=50.0, detail="event e"))


def recording(task: str = "7") -> LedgerEntry:
    return applied(fresh(), after_outcome(started(task), 2.0))


# ------------------------------------------------------------------ starting


def test_starting_keeps_the_decision_and_plan() -> None:
    entry = fresh()
    assert (entry.state, entry.rule, entry.policy_version) == (LedgerState.STARTING, "r", "v")
    assert (entry.record_mode, entry.allow_user_ids, entry.ends_at) == (
        RecordMode.SINGLE,
        ("u1",),
        50.0,
    )
    assert entry.checked_at == 1.0
    assert entry.history[-1].what == "decision: record"
    assert entry.history[-1].detail == "r: x (event e)"


def test_a_skip_has_no_plan_and_says_skip() -> None:
    entry = applied(None, starting(*KEY, SKIP, 1.0))
    assert (entry.state, entry.record_mode) == (LedgerState.SKIPPED, None)
    assert entry.history[-1].what == "decision: skip"
    assert entry.history[-1].detail == "s: no"


@pytest.mark.parametrize("state", ["recording", "stopping"])
def test_a_repeated_create_never_moves_a_running_session_back_to_starting(state: str) -> None:
    entry = recording()
    if state == "stopping":
        entry = applied(entry, closing(*KEY, 3.0, "closed"))
    assert starting(*KEY, RECORD, 4.0)(entry) is None


def test_a_skipped_session_may_later_be_decided_to_record() -> None:
    skipped = applied(None, starting(*KEY, SKIP, 1.0))
    entry = applied(skipped, starting(*KEY, RECORD, 2.0))
    assert entry.state is LedgerState.STARTING


def test_a_retryably_failed_session_starts_again_on_a_new_create() -> None:
    failed_entry = applied(fresh(), start_retry_later("InternalError", "boom", 2.0))
    assert applied(failed_entry, starting(*KEY, RECORD, 3.0)).state is LedgerState.STARTING


# ------------------------------------------------------------- after_outcome


def test_no_entry_no_outcome() -> None:
    assert after_outcome(started(), 2.0)(None) is None


def test_a_start_records_task_and_time() -> None:
    entry = recording("7")
    assert (entry.state, entry.task_id, entry.task_started_at) == (LedgerState.RECORDING, "7", 2.0)
    assert entry.history[-1].what == "started"
    assert entry.history[-1].task_id == "7"


def test_an_adoption_of_the_same_task_keeps_its_start_time() -> None:
    entry = recording("7")
    later = applied(
        applied(entry, task_lost(0, 3.0, "x")),  # back to starting, same generation
        after_outcome(started("7", adopted=True), 9.0),
    )
    assert later.task_started_at == 9.0  # the task_lost cleared it: a new start time
    again = after_outcome(started("7"), 10.0)(recording("7"))
    assert again is None  # same task, already recording: a duplicate delivery


def test_a_duplicate_answer_never_overwrites_a_session_that_moved_to_a_new_generation() -> None:
    renewed = applied(recording("7"), task_lost(1, 5.0, "renewal"))
    assert (renewed.task_id, renewed.generation) == (None, 1)
    # The first delivery's stored answer (task 7) replays after the renewal stopped task 7.
    assert after_outcome(started("7", duplicate=True), 6.0)(renewed) is None


def test_a_duplicate_answer_is_applied_while_nothing_newer_is_known() -> None:
    entry = applied(fresh(), after_outcome(started("7", duplicate=True), 2.0))
    assert (entry.state, entry.task_id) == (LedgerState.RECORDING, "7")


def test_a_success_after_a_retryable_failure_clears_the_error() -> None:
    failed_entry = applied(fresh(), start_retry_later("InternalError", "boom", 2.0))
    assert failed_entry.retryable
    entry = applied(
        applied(failed_entry, starting(*KEY, RECORD, 3.0)), after_outcome(started(), 4.0)
    )
    assert (entry.last_error, entry.retryable) == (None, False)


def test_a_start_on_a_stopped_session_does_not_reopen_it() -> None:
    closed = applied(recording("7"), closing(*KEY, 3.0, "closed"), stopped(4.0, "stopped"))
    assert closed.state is LedgerState.STOPPED
    # A different task's answer arrives late: noted, but the session stays stopped.
    late = after_outcome(started("8"), 5.0)(closed)
    assert late is not None
    assert late.state is LedgerState.STOPPING  # closed: the caller must stop task 8


def test_a_skip_outcome_only_moves_a_starting_entry() -> None:
    skip = Outcome(status=OutcomeStatus.SKIPPED, reason="policy")
    entry = applied(fresh(), after_outcome(skip, 2.0))
    assert entry.state is LedgerState.SKIPPED
    assert entry.history[-1].what == "skipped"
    assert after_outcome(skip, 3.0)(recording()) is None


def test_a_permanent_failure_is_final_and_not_retryable() -> None:
    entry = applied(fresh(), after_outcome(failed("InvalidParameter"), 2.0))
    assert (entry.state, entry.retryable) == (LedgerState.FAILED, False)
    assert entry.last_error == "InvalidParameter: refused"
    assert after_outcome(failed(), 3.0)(recording()) is None  # a running task stays


def test_a_permanent_failure_of_a_closed_session_is_stopped() -> None:
    closed = applied(fresh(), closing(*KEY, 2.0, "closed"))
    assert closed.state is LedgerState.STOPPING
    # A stopping entry is past `starting`: the failure answer changes nothing.
    assert after_outcome(failed(), 3.0)(closed) is None
    fail_first = applied(fresh(), after_outcome(failed(), 2.0))
    again = applied(fail_first, after_outcome(failed("InvalidParameterValue"), 3.0))
    assert again.last_error == "InvalidParameterValue: refused"


def test_an_outcome_of_another_status_changes_nothing() -> None:
    stopped_outcome = Outcome(status=OutcomeStatus.STOPPED, task_id="7")
    assert after_outcome(stopped_outcome, 2.0)(fresh()) is None


# --------------------------------------------------------- start_retry_later


@pytest.mark.parametrize("state", ["recording", "stopping", "stopped", "skipped"])
def test_a_late_retryable_failure_never_overwrites_a_later_state(state: str) -> None:
    entry = recording()
    if state == "stopping":
        entry = applied(entry, closing(*KEY, 3.0, "closed"))
    elif state == "stopped":
        entry = applied(entry, closing(*KEY, 3.0, "closed"), stopped(4.0, "done"))
    elif state == "skipped":
        entry = applied(None, starting(*KEY, SKIP, 1.0))
    assert start_retry_later("InternalError", "late", 5.0)(entry) is None


def test_a_retryable_failure_is_retryable_and_timed() -> None:
    entry = applied(fresh(), start_retry_later("InternalError", "boom", 2.0))
    assert (entry.state, entry.retryable, entry.failed_at) == (LedgerState.FAILED, True, 2.0)
    assert entry.last_error == "InternalError: boom"
    assert entry.history[-1].detail == "InternalError: boom (will retry)"


def test_a_second_retryable_failure_moves_the_retry_clock() -> None:
    first = applied(fresh(), start_retry_later("InternalError", "one", 2.0))
    second = applied(first, start_retry_later("RequestLimitExceeded", "two", 9.0))
    assert (second.failed_at, second.last_error) == (9.0, "RequestLimitExceeded: two")


def test_a_permanent_failure_never_becomes_retryable() -> None:
    final = applied(fresh(), after_outcome(failed(), 2.0))
    assert start_retry_later("InternalError", "late", 3.0)(final) is None


def test_a_retryable_failure_of_a_closed_session_is_over() -> None:
    closed = applied(None, starting(*KEY, RECORD, 1.0))
    closed = closed.changed(2.0, closed_at=2.0)  # closed while starting (the race)
    entry = applied(closed, start_retry_later("InternalError", "boom", 3.0))
    assert (entry.state, entry.retryable) == (LedgerState.STOPPED, False)


def test_no_entry_no_failure() -> None:
    assert start_retry_later("InternalError", "boom", 2.0)(None) is None


# ------------------------------------------------------------ closing / stop


def test_a_close_of_a_failed_or_skipped_session_is_final() -> None:
    failed_entry = applied(fresh(), start_retry_later("InternalError", "boom", 2.0))
    closed = applied(failed_entry, closing(*KEY, 3.0, "closed"))
    assert (closed.state, closed.retryable, closed.closed_at) == (LedgerState.STOPPED, False, 3.0)
    assert closing(*KEY, 4.0, "again")(closed) is None


def test_a_close_before_any_create_leaves_a_stopping_tombstone() -> None:
    tomb = applied(None, closing(*KEY, 3.0, "closed", closed_at=2.5))
    assert (tomb.state, tomb.closed_at) == (LedgerState.STOPPING, 2.5)
    assert starting(*KEY, RECORD, 4.0)(tomb) is None


@pytest.mark.parametrize("missing", [True, False])
def test_stopped_leaves_missing_and_stopped_entries_alone(missing: bool) -> None:
    entry = None if missing else applied(recording(), closing(*KEY, 3.0, "c"), stopped(4.0, "s"))
    assert stopped(5.0, "again")(entry) is None


def test_stopped_records_the_task_it_stopped() -> None:
    entry = applied(recording("7"), closing(*KEY, 3.0, "c"), stopped(4.0, "done"))
    assert (entry.state, entry.stopped_at) == (LedgerState.STOPPED, 4.0)
    assert entry.history[-1].task_id == "7"
    other = applied(recording("7"), closing(*KEY, 3.0, "c"), stopped(4.0, "done", "8"))
    assert other.history[-1].task_id == "8"


# ------------------------------------------------------------- new tasks


def test_a_renewed_task_is_not_retryable_and_has_no_error() -> None:
    failed_entry = applied(fresh(), start_retry_later("InternalError", "boom", 2.0))
    entry = applied(failed_entry, new_task(started("8"), 1, 3.0, "restart", "sweep"))
    assert (entry.state, entry.task_id, entry.generation) == (LedgerState.RECORDING, "8", 1)
    assert (entry.retryable, entry.last_error, entry.task_started_at) == (False, None, 3.0)


def test_a_new_task_of_a_closed_session_must_be_stopped() -> None:
    closed = applied(recording("7"), closing(*KEY, 3.0, "c"))
    entry = applied(closed, new_task(started("8"), 1, 4.0, "renew", "x"))
    assert entry.state is LedgerState.STOPPING
    assert new_task(started("8"), 1, 4.0, "renew", "x")(None) is None


def test_a_lost_task_goes_back_to_starting_with_the_next_generation() -> None:
    entry = applied(recording("7"), task_lost(1, 5.0, "vanished"))
    assert (entry.state, entry.task_id, entry.task_started_at) == (LedgerState.STARTING, None, None)
    assert entry.history[-1].task_id == "7"
    closed = applied(recording("7"), closing(*KEY, 3.0, "c"), task_lost(1, 5.0, "x"))
    assert closed.state is LedgerState.STOPPED
    assert task_lost(1, 5.0, "x")(None) is None


# ----------------------------------------------------------- sweep / callbacks


def test_a_check_moves_the_entry_back_in_the_queue_without_touching_its_ttl() -> None:
    entry = recording()
    quiet = applied(entry, checked(9.0))
    assert (quiet.checked_at, quiet.updated_at, quiet.history) == (9.0, 2.0, entry.history)
    noted = applied(entry, checked(9.0, "room busy"))
    assert noted.history[-1].detail == "room busy"
    assert checked(9.0)(None) is None


def test_callbacks_add_files_once_and_name_their_type() -> None:
    note = CallbackNote(task_id="7", event_type=3, seq=1, files=("a.mp3",))
    entry = applied(recording(), callback(note, 5.0))
    assert entry.files == ("a.mp3",)
    assert entry.history[-1].what == "callback: uploaded"
    assert callback(note, 6.0)(entry) is None  # the same callback again
    unknown = CallbackNote(task_id="7", event_type=9)
    assert applied(entry, callback(unknown, 7.0)).history[-1].what == "callback: type 9"
    assert callback(note, 5.0)(None) is None


# -------------------------------------------------------------- max_duration

LIMITED = RECORD.model_copy(update={"max_duration_seconds": 100})


def test_max_duration_sets_the_end_from_the_first_decision_and_a_retry_never_extends_it() -> None:
    entry = applied(None, starting(*KEY, LIMITED, 10.0))
    assert (entry.ends_at, entry.end_reason) == (110.0, MAX_DURATION_END)
    assert not entry.in_window
    assert entry.end_detail() == "max_duration: 1m40s since the session began (rule 'r')"
    failed_entry = applied(entry, start_retry_later("InternalError", "x", 20.0))
    again = applied(failed_entry, starting(*KEY, LIMITED, 50.0))
    assert again.ends_at == 110.0  # counted from the first decision, not the retry


def test_a_window_that_ends_first_keeps_its_end_and_reason() -> None:
    early = applied(None, starting(*KEY, LIMITED, 10.0, ends_at=60.0))
    assert (early.ends_at, early.end_reason, early.in_window) == (60.0, None, True)
    assert early.end_detail() == "scheduled window ended"
    late = applied(None, starting(*KEY, LIMITED, 10.0, ends_at=500.0))
    assert (late.ends_at, late.end_reason) == (110.0, MAX_DURATION_END)
    same = applied(None, starting(*KEY, LIMITED, 10.0, ends_at=110.0))
    assert same.end_reason is None  # a tie: the window's own end


def test_a_skip_or_no_limit_sets_no_deadline() -> None:
    limited_skip = SKIP.model_copy(update={"max_duration_seconds": 5})
    skipped = applied(None, starting(*KEY, limited_skip, 1.0))
    assert (skipped.ends_at, skipped.end_reason) == (None, None)
    unlimited = applied(None, starting(*KEY, RECORD, 1.0))
    assert (unlimited.ends_at, unlimited.end_reason) == (None, None)


# -------------------------------------------------------- following a policy

NEW_PLAN = RecordPlan(record_mode=RecordMode.BOTH, block_user_ids=("u9",))
NEWER = Decision(record=True, rule="r2", reason="y", policy_version="v2", plan=NEW_PLAN)


def test_a_running_task_takes_the_new_decision_and_a_modify_is_noted() -> None:
    entry = recording("7")
    moved = applied(entry, following(NEWER, "7", 9.0, "ModifyRecordInfo", modified=True))
    assert (moved.rule, moved.policy_version, moved.record_mode) == ("r2", "v2", RecordMode.BOTH)
    assert (moved.allow_user_ids, moved.block_user_ids) == ((), ("u9",))
    assert (moved.history[-1].what, moved.history[-1].task_id, moved.updated_at) == (
        "modify",
        "7",
        9.0,
    )


def test_a_plan_already_right_moves_only_the_version_quietly() -> None:
    entry = recording("7")
    quiet = applied(entry, following(NEWER, "7", 9.0))
    assert quiet.policy_version == "v2"
    assert (quiet.history, quiet.updated_at) == (entry.history, entry.updated_at)


@pytest.mark.parametrize("case", ["missing", "closed", "other-task", "starting"])
def test_following_leaves_anything_but_that_task_still_recording_alone(case: str) -> None:
    entry: LedgerEntry | None = {
        "missing": None,
        "closed": applied(recording("7"), closing(*KEY, 3.0, "c")),
        "other-task": recording("8"),
        "starting": fresh(),
    }[case]
    assert following(NEWER, "7", 9.0, modified=True)(entry) is None
    assert follow_refused("v2", "7", 9.0, "refused")(entry) is None


def test_a_refused_follow_counts_as_following_and_says_why() -> None:
    entry = applied(recording("7"), follow_refused("v2", "7", 9.0, "GME refused: x"))
    assert (entry.policy_version, entry.rule, entry.record_mode) == ("v2", "r", RecordMode.SINGLE)
    assert (entry.history[-1].what, entry.history[-1].detail) == ("error", "GME refused: x")


# ------------------------------------------------------------- byte budget


def test_callback_files_and_keys_keep_their_newest_within_budget_and_count_the_rest() -> None:
    entry = recording("7")
    name = "文" * 1000  # 3,000 UTF-8 bytes a name
    for seq in range(8):
        note = CallbackNote(task_id="7", event_type=3, seq=seq, files=(f"{seq}{name}",))
        entry = applied(entry, callback(note, 10.0 + seq))
    assert sum(json_string_bytes(f) for f in entry.files) <= FILES_BYTES
    assert entry.files[-1].startswith("7")  # the newest kept
    assert entry.files_dropped == 8 - len(entry.files) > 0
    assert entry.callback_keys[-1] == "7:3:7"
    assert entry.callback_keys_dropped == 0


def test_long_errors_are_clipped() -> None:
    entry = applied(fresh(), start_retry_later("InternalError", "x" * 2000, 2.0))
    assert entry.last_error is not None
    assert len(entry.last_error.encode()) <= MAX_TEXT_BYTES
    assert entry.last_error.startswith("InternalError: xxx")


def test_the_event_a_session_was_decided_on_is_kept_and_not_erased_by_a_retry() -> None:
    from handler.domain.ledger import DecidedOn

    on = DecidedOn.model_validate(
        {
            "occurred_at": 1_796_083_200.0,
            "source": "webhook",
            "format": "room-event-v1",
            "attributes": {"mode": "ranked"},
        }
    )
    entry = applied(None, starting(*KEY, RECORD, 1.0, decided_on=on))
    assert entry.decided_on == on
    failed_entry = applied(entry, start_retry_later("InternalError", "x", 2.0))
    assert applied(failed_entry, starting(*KEY, RECORD, 3.0)).decided_on == on


def test_callback_keys_beyond_their_budget_are_counted_as_dropped() -> None:
    task = str(2**63 - 1)  # TaskIds are this long: keys of about 27 bytes
    entry = recording(task)
    for seq in range(500):
        entry = applied(entry, callback(CallbackNote(task_id=task, event_type=1, seq=seq), 5.0))
    assert entry.callback_keys[-1] == f"{task}:1:499"
    assert entry.callback_keys_dropped == 500 - len(entry.callback_keys) > 0
