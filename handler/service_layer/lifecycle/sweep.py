"""Reconciliation sweep: make the ledger and GME agree, one session per `Check` command.

The scheduler plans checks for the entries checked least recently (`Ledger.due_for_check`); each
check asks GME (DescribeTaskInfo) and acts:

| ledger says | GME says | action |
|---|---|---|
| recording, task T | T runs | nothing (checked) |
| recording, task T | nothing runs | task vanished: start the next generation |
| recording, task T | another unowned task runs | adopt it |
| stale starting, failed retryable | an unowned task runs | adopt it (crash before ledger write)|
| stale starting, failed retryable | nothing runs | start (retry after the queue gave up) |
| stopping | anything | finish the stop |
| any open | RoomNotFound | room gone: closed and stopped (scheduled windows wait instead) |

A check whose entry was checked since it was planned is stale and makes no GME call. A failed
check is noted on the entry (which moves to the back of the sweep's queue); a throttled one
(`RequestLimitExceeded`, no pacing slot in time) escapes, so the queue delivers it again later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from handler.bootstrap.observability import logger
from handler.domain.commands import Check
from handler.domain.gme import NO_TIME_LEFT, ROOM_NOT_FOUND, GmeError, is_throttled
from handler.domain.ledger import LedgerEntry, LedgerState, sweepable
from handler.domain.ledger_rules import checked, closing, new_task, task_lost
from handler.domain.outcome import Outcome, OutcomeStatus
from handler.domain.retry import RetryLater

if TYPE_CHECKING:
    from handler.service_layer.lifecycle.context import StepContext

#: Results of a check that looked at GME (the tick report's `swept` counts these).
NOT_SWEPT = frozenset({"sweep_stale", "sweep_retry_wait"})


def throttled(exc: Exception) -> bool:
    """GME (or the pace) had no room for the call: nothing is wrong with the session."""
    code = getattr(exc, "code", "")
    return isinstance(code, str) and (is_throttled(code) or code == NO_TIME_LEFT)


def check(steps: StepContext, cmd: Check) -> tuple[str, str | None]:
    entry = steps.ledger.get(*cmd.key)
    if entry is None or entry.checked_at != cmd.checked_at or not sweepable(entry):
        return "sweep_stale", None  # checked (or changed state) since it was planned
    retry_after = steps.settings.sweep_retry_after_seconds
    if entry.state is LedgerState.FAILED and (entry.failed_at or 0.0) > cmd.at - retry_after:
        steps.ledger.update(*entry.key, checked(cmd.at))  # the queue may still be retrying it
        return "sweep_retry_wait", None
    try:
        return _check(steps, entry, cmd.at), None
    except (GmeError, RetryLater) as exc:
        if throttled(exc):
            raise  # GME is busy: not this session's fault; the check comes back later
        _note_error(steps, entry, cmd.at, exc)
    except IdempotencyAlreadyInProgressError as exc:
        _note_error(steps, entry, cmd.at, exc)
    return "sweep_errors", None


def _note_error(steps: StepContext, entry: LedgerEntry, now: float, exc: Exception) -> None:
    logger.warning("sweep step failed", extra={"session": entry.session, "error": str(exc)})
    steps.ledger.update(*entry.key, checked(now, f"error: {exc}"))


def _check(steps: StepContext, entry: LedgerEntry, now: float) -> str:
    ledger, service = steps.ledger, steps.service
    if entry.state is LedgerState.STOPPING:
        service.stop_entry(entry, "sweep: finishing an interrupted stop", now)
        return "sweep_stopped"
    try:
        task = steps.recorder.running_task(entry.biz_id, entry.room_id)
    except GmeError as exc:
        if exc.code != ROOM_NOT_FOUND:
            raise
        if entry.in_window:  # a scheduled room may fill up later in its window
            ledger.update(*entry.key, checked(now, "room empty; window still open"))
            return "sweep_waiting"
        gone = ledger.update(*entry.key, closing(*entry.key, now, "sweep: room is gone"))
        if gone is not None:
            service.stop_entry(gone, "sweep: room is gone (RoomNotFound)", now)
        return "sweep_room_gone"
    if task is not None and task.task_id == entry.task_id:
        ledger.update(*entry.key, checked(now))
        return "sweep_ok"
    if task is not None and not service.owned_elsewhere(entry, task.task_id):
        adopted = Outcome(status=OutcomeStatus.ADOPTED, task_id=task.task_id)
        ledger.update(
            *entry.key,
            new_task(adopted, entry.generation, now, "adopt", "sweep: GME runs an unrecorded task"),
        )
        ledger.update(*entry.key, checked(now))
        return "sweep_adopted"
    if task is not None:
        ledger.update(*entry.key, checked(now, "room busy with another session's task"))
        return "sweep_busy"
    current = entry
    if entry.state is LedgerState.RECORDING:
        lost = ledger.update(
            *entry.key, task_lost(entry.generation + 1, now, "sweep: task vanished from GME")
        )
        if lost is None or lost.state is not LedgerState.STARTING:
            return "sweep_closed"
        current = lost
    ledger.update(*entry.key, checked(now))
    steps.start_next(current, now, "restart", "sweep: started the session's missing task")
    return "sweep_restarted"
