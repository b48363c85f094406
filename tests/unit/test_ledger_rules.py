"""The pure ledger rules: each state change, applied to entries built in memory."""

from __future__ import annotations

from handler.domain.decision import Decision, RecordPlan
from handler.domain.ledger import (
    MAX_ENTRY_BYTES,
    MAX_TEXT_BYTES,
    CallbackNote,
    LedgerEntry,
    LedgerState,
    clip,
    is_open,
    newest_within,
)
from handler.domain.ledger_rules import (
    after_outcome,
    callback,
    closing,
    new_task,
    start_retry_later,
    starting,
    task_lost,
)
from handler.domain.outcome import Outcome, OutcomeStatus

RECORD = Decision(record=True, rule="r", reason="x", policy_version="v", plan=RecordPlan())
SKIP = Decision(record=False, rule="s", reason="no", policy_version="v")


def fresh(decision: Decision = RECORD, at: float = 1.0) -> LedgerEntry:
    entry = starting(1, "room", "s", decision, at)(None)
    assert entry is not None
    return entry


def started(task: str, duplicate: bool = False) -> Outcome:
    return Outcome(status=OutcomeStatus.STARTED, task_id=task, duplicate=duplicate)


def test_skip_is_final_at_once() -> None:
    assert fresh(SKIP).state is LedgerState.SKIPPED
    assert starting(1, "room", "s", SKIP, 2.0)(fresh(SKIP)) is None


def test_a_replayed_answer_never_overrides_a_renewed_task() -> None:
    entry = after_outcome(started("1"), 2.0)(fresh())
    assert entry is not None
    renewed = new_task(started("2"), 1, 3.0, "renew", "")(entry)
    assert renewed is not None
    assert after_outcome(started("1", duplicate=True), 4.0)(renewed) is None


def test_start_after_close_becomes_stopping() -> None:
    closed = closing(1, "room", "s", 2.0, "closed")(fresh())
    assert closed is not None
    assert closed.state is LedgerState.STOPPING
    landed = after_outcome(started("9"), 3.0)(closed)
    assert landed is not None
    assert (landed.state, landed.task_id) == (LedgerState.STOPPING, "9")
    assert starting(1, "room", "s", RECORD, 4.0)(landed) is None  # never starting again


def test_retryable_failure_and_close() -> None:
    failed = start_retry_later("InternalError", "boom", 2.0)(fresh())
    assert failed is not None
    assert (failed.state, failed.retryable) == (LedgerState.FAILED, True)
    closed = closing(1, "room", "s", 3.0, "closed")(failed)
    assert closed is not None
    assert (closed.state, closed.retryable) == (LedgerState.STOPPED, False)


def test_task_lost_bumps_the_generation_and_the_task_key() -> None:
    entry = after_outcome(started("1"), 2.0)(fresh())
    assert entry is not None
    lost = task_lost(1, 3.0, "vanished")(entry)
    assert lost is not None
    assert (lost.state, lost.task_id, lost.task_session()) == (LedgerState.STARTING, None, "s#g1")


def test_callbacks_dedupe_and_never_move_state() -> None:
    note = CallbackNote(task_id="1", event_type=2, seq=3, files=("a.mp3",))
    entry = callback(note, 2.0)(fresh())
    assert entry is not None
    assert callback(note, 3.0)(entry) is None
    assert entry.state is LedgerState.STARTING
    assert entry.files == ("a.mp3",)


def test_open_sessions_are_neither_closed_nor_skipped() -> None:
    a = fresh(at=1.0)
    b = starting(1, "room", "t", RECORD, 5.0)(None)
    c = starting(1, "room", "u", SKIP, 9.0)(None)
    assert b is not None
    assert c is not None
    assert [e for e in (a, b, c) if is_open(e)] == [a, b]
    closed_b = closing(1, "room", "t", 6.0, "x")(b)
    assert closed_b is not None
    assert [e for e in (a, closed_b, c) if is_open(e)] == [a]


def test_callback_parts_stay_within_their_byte_budgets_keeping_the_newest() -> None:
    entry = fresh()
    for seq in range(300):
        name = f"{seq:03d}" + "录" * 1021  # 3 KB of UTF-8 each
        changed = callback(CallbackNote(task_id="1", event_type=3, seq=seq, files=(name,)), 2.0)(
            entry
        )
        assert changed is not None
        entry = changed
    size = len(entry.model_dump_json().encode())
    assert size <= MAX_ENTRY_BYTES
    assert entry.files[-1].startswith("299")
    assert entry.files_dropped + len(entry.files) == 300
    assert entry.history_dropped + len(entry.history) == 301  # the decision line too
    assert entry.callback_keys[-1] == "1:3:299"
    assert all(len(h.detail.encode()) <= MAX_TEXT_BYTES for h in entry.history)


def test_clip_cuts_on_a_character_boundary_and_says_so() -> None:
    assert clip("short") == "short"
    cut = clip("录" * 1000, 100)
    assert len(cut.encode()) <= 100
    assert cut.endswith("\u2026")
    assert newest_within((1, 2, 3, 4), 7, lambda n: n) == ((3, 4), 2)
    assert newest_within((50,), 7, lambda n: n) == ((), 1)  # alone over budget: dropped
