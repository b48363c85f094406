"""Pure state changes of a ledger entry, one per thing that can happen to a room session.

Each function returns a `Change` (old entry or None → new entry, or None for "leave it"), so the
adapters can apply it atomically and retry it on a write conflict. The rules that make the
lifecycle safe live here and nowhere else:

* a closed session never goes back to starting or recording (close before create, late start);
* a start that lands on a closed session is recorded as `stopping`, so its caller stops the task;
* states only move forward for one task; a new task (renewal, restart) bumps `generation`.
"""

from __future__ import annotations

from handler.domain.decision import Decision
from handler.domain.ledger import (
    CALLBACK_KEYS_BYTES,
    FILES_BYTES,
    MAX_DURATION_END,
    CallbackNote,
    Change,
    DecidedOn,
    LedgerEntry,
    LedgerState,
    clip,
    json_string_bytes,
    new_entry,
    newest_within,
)
from handler.domain.outcome import Outcome, OutcomeStatus


def _decision_fields(decision: Decision) -> dict[str, object]:
    """The entry fields a decision sets: its rule and policy version, and its plan (mode and
    user lists) when it records."""
    fields: dict[str, object] = {"rule": decision.rule, "policy_version": decision.policy_version}
    if decision.plan is not None:
        fields.update(
            record_mode=decision.plan.record_mode,
            allow_user_ids=decision.plan.allow_user_ids,
            block_user_ids=decision.plan.block_user_ids,
        )
    return fields


def starting(
    biz_id: int,
    room_id: str,
    session: str,
    decision: Decision,
    at: float,
    ends_at: float | None = None,
    detail: str = "",
    decided_on: DecidedOn | None = None,
) -> Change:
    """The policy (or a schedule) decided; written before StartRecord so a crash is visible.
    `ends_at` is a window's end; the decision's `max_duration_seconds`, counted from when the
    session was first decided (a retry never extends it), ends it earlier if it comes first.
    `decided_on` keeps the event, so a changed policy can decide the session again."""
    fields = {**_decision_fields(decision), "ends_at": ends_at, "end_reason": None}
    if decided_on is not None:
        fields["decided_on"] = decided_on
    what = "decision: record" if decision.record else "decision: skip"
    note = f"{decision.rule}: {decision.reason}" + (f" ({detail})" if detail else "")
    # A skip is final at once: an entry left `starting` would make the sweep record the room.
    state = LedgerState.STARTING if decision.record else LedgerState.SKIPPED

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        values = dict(fields)
        limit = decision.max_duration_seconds
        if decision.record and limit is not None:
            deadline = (at if entry is None else entry.created_at) + limit
            if ends_at is None or deadline < ends_at:
                values.update(ends_at=deadline, end_reason=MAX_DURATION_END)
        if entry is None:
            return new_entry(biz_id, room_id, session, state, at, checked_at=at, **values).noted(
                at, what, note
            )
        if entry.closed or entry.state in (LedgerState.RECORDING, LedgerState.STOPPING):
            return None  # already decided and acted on, or closed: leave it alone
        if entry.state is state is LedgerState.SKIPPED:
            return None  # a repeated skip
        return entry.changed(at, state=state, **values).noted(at, what, note)

    return change


def after_outcome(outcome: Outcome, at: float) -> Change:
    """Record what the recorder did. On a closed session a task becomes `stopping`."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None:
            return None  # `starting` always runs first; nothing to attach the outcome to
        status = outcome.status
        if outcome.duplicate and (entry.task_id is not None or entry.generation > 0):
            return None  # a replayed answer never overrides a newer task (renewal, restart)
        if status in (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED) and outcome.task_id:
            same_task = outcome.task_id == entry.task_id
            fields: dict[str, object] = {
                "task_id": outcome.task_id,
                "task_started_at": entry.task_started_at if same_task else at,
                "last_error": None,
                "retryable": False,
            }
            if entry.closed:
                fields["state"] = LedgerState.STOPPING
            elif entry.state not in (LedgerState.STOPPED, LedgerState.STOPPING):
                fields["state"] = LedgerState.RECORDING
            if same_task and entry.state is LedgerState.RECORDING and not entry.closed:
                return None  # a duplicate delivery replayed the same answer
            return entry.changed(at, **fields).noted(
                at, status.value, outcome.reason, outcome.task_id
            )
        if status is OutcomeStatus.SKIPPED:
            if entry.state is not LedgerState.STARTING:
                return None
            return entry.changed(at, state=LedgerState.SKIPPED).noted(at, "skipped", outcome.reason)
        if status is OutcomeStatus.FAILED:
            if entry.state not in (LedgerState.STARTING, LedgerState.FAILED):
                return None
            return entry.changed(
                at,
                state=LedgerState.STOPPED if entry.closed else LedgerState.FAILED,
                last_error=clip(f"{outcome.error_code}: {outcome.reason}"),
                retryable=False,
            ).noted(at, "failed", f"{outcome.error_code}: {outcome.reason}")
        return None

    return change


def start_retry_later(code: str, message: str, at: float) -> Change:
    """A retryable failure: the queue retries; if its retries run out, the sweep does."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None or (entry.state is not LedgerState.STARTING and not _failed_retry(entry)):
            return None
        state = LedgerState.STOPPED if entry.closed else LedgerState.FAILED
        return entry.changed(
            at,
            state=state,
            last_error=clip(f"{code}: {message}"),
            retryable=not entry.closed,
            failed_at=at,
        ).noted(at, "error", f"{code}: {message} (will retry)")

    return change


def _failed_retry(entry: LedgerEntry) -> bool:
    return entry.state is LedgerState.FAILED and entry.retryable


def closing(
    biz_id: int, room_id: str, session: str, at: float, detail: str, closed_at: float | None = None
) -> Change:
    """The room session closed (or its window ended). Absent entry: a tombstone, so a create
    arriving later records nothing; it starts as `stopping` so the caller still stops a task
    the ledger never saw (started before the ledger existed, or its write was lost).
    Returns None (leave) for a repeated close."""
    closed = at if closed_at is None else closed_at

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None:
            return new_entry(
                biz_id, room_id, session, LedgerState.STOPPING, at, closed_at=closed
            ).noted(at, "close", f"{detail}; closed before any create: nothing will record it")
        if entry.closed:
            return None
        state = (
            LedgerState.STOPPED
            if entry.state in (LedgerState.SKIPPED, LedgerState.FAILED, LedgerState.STOPPED)
            else LedgerState.STOPPING
        )
        return entry.changed(at, closed_at=closed, state=state, retryable=False).noted(
            at, "close", detail
        )

    return change


def stopped(at: float, detail: str, task_id: str | None = None) -> Change:
    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None or entry.state is LedgerState.STOPPED:
            return None
        return entry.changed(at, state=LedgerState.STOPPED, stopped_at=at).noted(
            at, "stop", detail, task_id or entry.task_id
        )

    return change


def new_task(outcome: Outcome, generation: int, at: float, what: str, detail: str) -> Change:
    """A renewal or restart started (or adopted) the session's next task."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None:
            return None
        state = LedgerState.STOPPING if entry.closed else LedgerState.RECORDING
        return entry.changed(
            at,
            state=state,
            task_id=outcome.task_id,
            task_started_at=at,
            generation=generation,
            last_error=None,
            retryable=False,
        ).noted(at, what, detail, outcome.task_id)

    return change


def task_lost(generation: int, at: float, detail: str) -> Change:
    """The old task is gone (stopped for renewal, vanished, capped) and no new one runs yet:
    back to `starting` with the next generation, so the sweep starts it on its next pass."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None:
            return None
        state = LedgerState.STOPPED if entry.closed else LedgerState.STARTING
        return entry.changed(
            at, state=state, task_id=None, task_started_at=None, generation=generation
        ).noted(at, "task lost", detail, entry.task_id)

    return change


def following(
    decision: Decision, task_id: str, at: float, detail: str = "", modified: bool = False
) -> Change:
    """The running task `task_id` now follows `decision` of a changed policy: the entry takes
    its rule, version and plan. `modified`: GME was told (ModifyRecordInfo), which is noted;
    otherwise the plan was already right and only the version moves, quietly. Anything but
    that task still recording (closed, renewed, stopped meanwhile) is left alone."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None or entry.closed or entry.task_id != task_id:
            return None
        if entry.state is not LedgerState.RECORDING:
            return None
        fields = _decision_fields(decision)
        if not modified:
            return entry.model_copy(update=fields)  # not a change of the recording
        return entry.changed(at, **fields).noted(at, "modify", detail, task_id)

    return change


def follow_refused(policy_version: str, task_id: str, at: float, detail: str) -> Change:
    """GME refused the new plan for good: the task keeps its plan, the entry notes why and
    counts as following `policy_version`, so it is not tried again until the policy changes."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None or entry.closed or entry.task_id != task_id:
            return None
        return entry.changed(at, policy_version=policy_version).noted(at, "error", detail)

    return change


def checked(at: float, detail: str = "", **fields: object) -> Change:
    """The sweep looked at the entry; `checked_at` moves it to the back of the sweep queue."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None:
            return None
        # Not `changed`: a check is not a change, and must not reset `updated_at` (the TTL).
        updated = entry.model_copy(update={"checked_at": at, **fields})
        return updated.noted(at, "sweep", detail) if detail else updated

    return change


def callback(note: CallbackNote, at: float) -> Change:
    """A GME recording callback: add file names, note start/finish. Deduplicated on
    (TaskID, EventType, SeqNo); order does not matter because nothing here moves `state`."""

    def change(entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is None or note.dedup_key in entry.callback_keys:
            return None
        merged = tuple(dict.fromkeys((*entry.files, *note.files)))  # newest last
        files, files_dropped = newest_within(merged, FILES_BYTES, json_string_bytes)
        keys, keys_dropped = newest_within(
            (*entry.callback_keys, note.dedup_key), CALLBACK_KEYS_BYTES, json_string_bytes
        )
        what = {1: "callback: started", 2: "callback: finished", 3: "callback: uploaded"}.get(
            note.event_type, f"callback: type {note.event_type}"
        )
        detail = f"seq {note.seq}" + (f", files {', '.join(note.files)}" if note.files else "")
        return entry.changed(
            at,
            files=files,
            files_dropped=entry.files_dropped + files_dropped,
            callback_keys=keys,
            callback_keys_dropped=entry.callback_keys_dropped + keys_dropped,
        ).noted(at, what, detail, note.task_id)

    return change
