"""Reconciliation sweep: make the ledger and GME agree, a bounded batch per tick.

For each entry that should have a task (least recently checked first), ask GME
(DescribeTaskInfo) and act:

| ledger says | GME says | action |
|---|---|---|
| recording, task T | T runs | nothing (checked) |
| recording, task T | nothing runs | task vanished: start the next generation |
| recording, task T | another unowned task runs | adopt it |
| stale starting, failed retryable | an unowned task runs | adopt it (crash before ledger write)|
| stale starting, failed retryable | nothing runs | start (retry after the queue gave up) |
| stopping | anything | finish the stop |
| any open | RoomNotFound | room gone: closed and stopped (scheduled windows wait instead) |

A `RequestLimitExceeded` ends the sweep for this tick: the rest waits for the next one.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from handler.domain.gme import ROOM_NOT_FOUND, GmeError
from handler.domain.ledger import LedgerEntry, LedgerState
from handler.domain.ledger_rules import checked, closing, new_task, task_lost
from handler.domain.outcome import Outcome, OutcomeStatus
from handler.domain.retry import RetryLater
from handler.observability import logger

if TYPE_CHECKING:
    from handler.lifecycle.tick import Lifecycle, Pacer


def sweep(lc: Lifecycle, now: float, counts: Counter[str], pacer: Pacer) -> None:
    from handler.lifecycle.tick import TickErrors

    s = lc.settings
    for entry in lc.ledger.due_for_check(now - s.sweep_min_age_seconds, s.sweep_batch):
        if (
            entry.state is LedgerState.FAILED
            and (entry.failed_at or 0.0) > now - s.sweep_retry_after_seconds
        ):
            lc.ledger.update(*entry.key, checked(now))  # the queue may still be retrying it
            continue
        pacer.wait(1)  # DescribeTaskInfo (or StopRecord); a restart reserves two more below
        counts["swept"] += 1
        try:
            counts[_check(lc, entry, now, pacer)] += 1
        except (GmeError, RetryLater) as exc:
            if exc.code.startswith("RequestLimitExceeded"):
                counts["sweep_throttled"] += 1
                break  # GME is busy: the rest waits for the next tick
            _note_error(lc, entry, now, exc)
            counts["sweep_errors"] += 1
        except TickErrors as exc:
            _note_error(lc, entry, now, exc)
            counts["sweep_errors"] += 1


def _note_error(lc: Lifecycle, entry: LedgerEntry, now: float, exc: Exception) -> None:
    logger.warning("sweep step failed", extra={"session": entry.session, "error": str(exc)})
    lc.ledger.update(*entry.key, checked(now, f"error: {exc}"))


def _check(lc: Lifecycle, entry: LedgerEntry, now: float, pacer: Pacer) -> str:
    if entry.state is LedgerState.STOPPING:
        pacer.wait(1)  # StopRecord, after a DescribeTaskInfo when the task is unknown
        lc.service.stop_entry(entry, "sweep: finishing an interrupted stop", now)
        return "sweep_stopped"
    try:
        task = lc.recorder.running_task(entry.biz_id, entry.room_id)
    except GmeError as exc:
        if exc.code != ROOM_NOT_FOUND:
            raise
        if entry.in_window:  # a scheduled room may fill up later in its window
            lc.ledger.update(*entry.key, checked(now, "room empty; window still open"))
            return "sweep_waiting"
        gone = lc.ledger.update(*entry.key, closing(*entry.key, now, "sweep: room is gone"))
        if gone is not None:
            pacer.wait(1)
            lc.service.stop_entry(gone, "sweep: room is gone (RoomNotFound)", now)
        return "sweep_room_gone"
    if task is not None and task.task_id == entry.task_id:
        lc.ledger.update(*entry.key, checked(now))
        return "sweep_ok"
    if task is not None and not lc.service.owned_elsewhere(entry, task.task_id):
        adopted = Outcome(status=OutcomeStatus.ADOPTED, task_id=task.task_id)
        lc.ledger.update(
            *entry.key,
            new_task(adopted, entry.generation, now, "adopt", "sweep: GME runs an unrecorded task"),
        )
        lc.ledger.update(*entry.key, checked(now))
        return "sweep_adopted"
    if task is not None:
        lc.ledger.update(*entry.key, checked(now, "room busy with another session's task"))
        return "sweep_busy"
    current = entry
    if entry.state is LedgerState.RECORDING:
        lost = lc.ledger.update(
            *entry.key, task_lost(entry.generation + 1, now, "sweep: task vanished from GME")
        )
        if lost is None or lost.state is not LedgerState.STARTING:
            return "sweep_closed"
        current = lost
    lc.ledger.update(*entry.key, checked(now))
    pacer.wait(2)  # ensure: DescribeTaskInfo + StartRecord
    lc.start_next(current, now, "restart", "sweep: started the session's missing task")
    return "sweep_restarted"
