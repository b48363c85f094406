"""Recording facts read off ledger changes: each path's change yields its fact once, with an id
that depends on the fact only (never on the delivery, the time it was sent, or a retry)."""

from __future__ import annotations

import json

from handler.domain.decision import Decision, RecordMode, RecordPlan
from handler.domain.ledger import CallbackNote, Change, LedgerEntry
from handler.domain.ledger_rules import (
    after_outcome,
    callback,
    checked,
    closing,
    new_task,
    starting,
    stopped,
    task_lost,
)
from handler.domain.outcome import Outcome, OutcomeStatus
from handler.domain.recording_events import ChangeKind, RecordingChange, changes

KEY = (1400000000, "ranked-eu-1", "match-1")
TASK = "18446744073709551557"  # above 2**53: must survive as a decimal string
DECISION = Decision(
    record=True,
    rule="ranked-mixed",
    reason="matched",
    policy_version="sha256:abc",
    plan=RecordPlan(record_mode=RecordMode.MIXED),
)


def apply(entry: LedgerEntry | None, change: Change) -> tuple[LedgerEntry, list[RecordingChange]]:
    new = change(entry)
    assert new is not None
    return new, changes(entry, new)


def started(task: str = TASK, status: OutcomeStatus = OutcomeStatus.STARTED) -> Outcome:
    return Outcome(status=status, task_id=task, rule="ranked-mixed", reason="ok")


def recording() -> LedgerEntry:
    entry, _ = apply(None, starting(*KEY, DECISION, 100.0))
    return apply(entry, after_outcome(started(), 101.0))[0]


def test_a_start_then_a_close_are_started_and_stopped_once() -> None:
    entry, found = apply(None, starting(*KEY, DECISION, 100.0))
    assert found == []  # decided, nothing runs yet
    entry, [start] = apply(entry, after_outcome(started(), 101.0))
    assert (start.kind, start.rule) == (ChangeKind.STARTED, "ranked-mixed")
    assert start.event is not None
    assert start.event.type == "recording.started"
    assert (start.event.task_id, start.event.adopted, start.event.reason) == (TASK, False, "new")
    assert start.event.time == "1970-01-01T00:01:41Z"
    assert after_outcome(started(), 102.0)(entry) is None  # a replayed duplicate changes nothing
    entry, _ = apply(entry, closing(*KEY, 110.0, "room closed (room-event-v1, event e2)"))
    entry, [stop] = apply(entry, stopped(111.0, "room closed (room-event-v1, event e2)"))
    assert stop.event is not None
    assert (stop.event.type, stop.event.reason, stop.event.task_id) == (
        "recording.stopped",
        "close",
        TASK,
    )
    assert stop.event.id != start.event.id


def start_event(task: str, at: float) -> RecordingChange:
    entry, _ = apply(None, starting(*KEY, DECISION, at))
    _, [start] = apply(entry, after_outcome(started(task), at + 1))
    return start


def test_ids_depend_on_the_fact_only() -> None:
    first, again = start_event(TASK, 100.0), start_event(TASK, 5000.0)  # same fact, later
    other = start_event("12345", 100.0)  # another task: another fact
    assert first.event is not None
    assert again.event is not None
    assert other.event is not None
    assert first.event.id == again.event.id
    assert first.event.time != again.event.time
    assert other.event.id != first.event.id


def test_adopted_failed_and_skipped() -> None:
    entry, _ = apply(None, starting(*KEY, DECISION, 100.0))
    _, [adopted] = apply(entry, after_outcome(started(status=OutcomeStatus.ADOPTED), 101.0))
    assert adopted.kind is ChangeKind.ADOPTED
    assert adopted.event is not None
    assert adopted.event.adopted is True
    refused = Outcome(
        status=OutcomeStatus.FAILED,
        error_code="UnsupportedOperation.ServiceNotOpened",
        reason="GME refused StartRecord: not opened",
    )
    _, [failed] = apply(entry, after_outcome(refused, 101.0))
    assert failed.event is not None
    assert failed.event.type == "recording.failed"
    assert failed.event.error_code == failed.event.reason == "UnsupportedOperation.ServiceNotOpened"
    skip = Decision(record=False, rule="practice", reason="no", policy_version="v")
    _, [skipped] = apply(None, starting(*KEY, skip, 100.0))
    assert (skipped.kind, skipped.rule, skipped.event) == (ChangeKind.SKIPPED, "practice", None)


def test_renewal_names_the_new_and_the_previous_task() -> None:
    entry = recording()
    entry, found = apply(entry, task_lost(1, 200.0, "renewal: old task stopped before the cap"))
    assert found == []  # between the two tasks: the renewed event says it all
    new = Outcome(status=OutcomeStatus.STARTED, task_id="777")
    _, [renewed] = apply(entry, new_task(new, 1, 201.0, "renew", "renewed before the cap"))
    assert renewed.event is not None
    assert renewed.event.type == "recording.renewed"
    assert (renewed.event.task_id, renewed.event.previous_task_id) == ("777", TASK)
    assert (renewed.event.reason, renewed.event.generation) == ("renewal", 1)


def test_the_sweeps_first_start_is_a_start_and_counts_as_swept() -> None:
    entry, _ = apply(None, starting(*KEY, DECISION, 100.0))
    new = Outcome(status=OutcomeStatus.STARTED, task_id="555")
    detail = "sweep: started the session's missing task"
    _, [first] = apply(entry, new_task(new, 0, 300.0, "restart", detail))
    assert (first.kind, first.swept) == (ChangeKind.STARTED, True)
    _, found = apply(entry, checked(300.0, "error: boom"))
    assert found == []  # a check is not a change of the recording


def test_stop_reasons_follow_the_close() -> None:
    for detail, reason in [
        ("scheduled window ended", "window_end"),
        ("max_duration: 6h since the session began (rule 'ranked-mixed')", "max_duration"),
        ("stopped by an operator", "operator"),
        ("sweep: room is gone", "room_gone"),
        ("TRTC room dismissed", "close"),
    ]:
        entry, _ = apply(recording(), closing(*KEY, 110.0, detail))
        _, [stop] = apply(entry, stopped(111.0, detail))
        assert stop.event is not None
        assert stop.event.reason == reason, detail


def test_a_new_file_is_one_event_per_file_and_a_repeat_is_none() -> None:
    entry = recording()
    note = CallbackNote(task_id=TASK, event_type=3, seq=1, files=("a.mp3",))
    entry, [file] = apply(entry, callback(note, 120.0))
    assert file.event is not None
    assert (file.event.type, file.event.file_name, file.event.task_id) == (
        "recording.file",
        "a.mp3",
        TASK,
    )
    assert callback(note, 121.0)(entry) is None  # GME repeated its callback
    second = CallbackNote(task_id=TASK, event_type=3, seq=2, files=("b.mp3",))
    _, [other] = apply(entry, callback(second, 122.0))
    assert other.event is not None
    assert other.event.id != file.event.id


def test_the_logged_document_is_the_body_parsed() -> None:
    """The notifier logs `document()` and sends `body()`: they must say the same thing."""
    entry = recording()
    _, [renewed] = apply(
        apply(entry, task_lost(1, 200.0, "renewal"))[0],
        new_task(Outcome(status=OutcomeStatus.STARTED, task_id="777"), 1, 201.0, "renew", "é"),
    )
    for event in (start_event(TASK, 100.0).event, renewed.event):
        assert event is not None
        assert json.loads(event.body()) == event.document()
        assert list(json.loads(event.body())) == list(event.document())  # same order
