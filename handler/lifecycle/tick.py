"""One scheduler tick: start due windows, stop ended ones, renew tasks near the 24-hour cap,
then sweep a bounded batch of ledger entries (see `sweep.py`).

Every step goes through the same recorder (Powertools idempotent function, same key space) and
the same ledger rules as room events, so a tick that runs twice, or overlaps a webhook, cannot
start a second task. Each step is bounded (`SWEEP_BATCH`) so a large backlog drains over ticks.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from handler.domain.decision import Decision
from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.gme import GmeError
from handler.domain.ledger import GME_TASK_CAP_SECONDS, Ledger, LedgerEntry, LedgerState
from handler.domain.ledger_rules import (
    after_outcome,
    closing,
    new_task,
    start_retry_later,
    task_lost,
)
from handler.domain.outcome import Outcome, OutcomeStatus, StartCommand
from handler.domain.retry import RetryLater
from handler.domain.schedule import Schedules
from handler.lifecycle.settings import LifecycleSettings
from handler.observability import logger
from handler.recorder import Recorder
from handler.service import RecordingService

#: Failures a tick survives: it notes them in the ledger and goes on with the next entry.
TickErrors = (GmeError, RetryLater, IdempotencyAlreadyInProgressError)


class Pacer:
    """Keeps the tick at most `rate` GME calls per second (all actions together), so it stays
    inside GME's 20 requests/second per action even with a large backlog. Each step reserves
    its worst-case number of calls before it runs."""

    def __init__(self, rate: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval = 1.0 / rate
        self._sleep = sleep
        self._next = 0.0

    def wait(self, calls: int) -> None:
        now = time.monotonic()
        if now < self._next:
            self._sleep(self._next - now)
        self._next = max(now, self._next) + calls * self._interval


class Lifecycle:
    def __init__(
        self,
        service: RecordingService,
        recorder: Recorder,
        ledger: Ledger,
        schedules: Callable[[], Schedules],
        settings: LifecycleSettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = service
        self.recorder = recorder
        self.ledger = ledger
        self._schedules = schedules
        self.settings = settings
        self._sleep = sleep

    def tick(self, now: datetime) -> dict[str, int]:
        from handler.lifecycle.sweep import sweep

        stamp = now.timestamp()
        counts: Counter[str] = Counter()
        pacer = Pacer(self.settings.sweep_calls_per_second, self._sleep)
        self.start_windows(now, counts, pacer)
        self.stop_ended(stamp, counts, pacer)
        self.renew(stamp, counts, pacer)
        sweep(self, stamp, counts, pacer)
        counts["purged"] += self.ledger.purge_expired(stamp)
        logger.info("scheduler tick done", extra={"now": now.isoformat(), **counts})
        return dict(counts)

    # ---------------------------------------------------------------- windows

    def start_windows(self, now: datetime, counts: Counter[str], pacer: Pacer) -> None:
        """Every open window the ledger does not know yet. Known windows are skipped before
        anything is counted, so no batch limit can hide a window behind already started ones."""
        schedules = self._schedules()
        for window in schedules.active(now):
            s = window.schedule
            known = self.ledger.get(s.biz_id, s.room_id, window.session)
            if known is not None and not (known.state is LedgerState.FAILED and known.retryable):
                continue  # known: later ticks leave it to the sweep, renewal and window end
            event = RoomEvent(
                kind=EventKind.ROOM_CREATED,
                event_id=f"schedule:{s.name}:{window.session}",
                biz_id=s.biz_id,
                room_id=s.room_id,
                session=window.session,
                occurred_at=now,
                format=InboundFormat.SCHEDULE,
                source=EventSource.SCHEDULE,
                attributes={"schedule": s.name},
            )
            pacer.wait(2)  # DescribeTaskInfo, StartRecord
            try:
                outcome = self.service.start(
                    event, schedules.decision(window), window.end.timestamp(), now.timestamp()
                )
                counts[f"window_{outcome.status.value}"] += 1
            except TickErrors as exc:
                counts["window_errors"] += 1
                logger.warning(
                    "window start failed", extra={"session": window.session, "error": str(exc)}
                )

    def stop_ended(self, now: float, counts: Counter[str], pacer: Pacer) -> None:
        for entry in self.ledger.ending(now, self.settings.sweep_batch):
            why = entry.end_detail()  # a window's end, or the policy's max_duration
            closed = self.ledger.update(*entry.key, closing(*entry.key, now, why))
            if closed is None:
                continue
            pacer.wait(2)  # StopRecord (DescribeTaskInfo when the task is unknown)
            try:
                self.service.stop_entry(closed, why, now)
                counts["windows_ended" if entry.in_window else "max_duration_ended"] += 1
            except TickErrors as exc:
                counts["stop_errors"] += 1
                logger.warning("window stop failed", extra={"error": str(exc)})

    # ---------------------------------------------------------------- renewal

    def renew(self, now: float, counts: Counter[str], pacer: Pacer) -> None:
        """Stop-then-start in one step for tasks near GME's cap: GME allows one task per room,
        so a new task cannot overlap the old; the gap is two API calls, well under one tick."""
        started_before = now - (GME_TASK_CAP_SECONDS - self.settings.renew_before_seconds)
        for entry in self.ledger.nearing_cap(started_before, self.settings.sweep_batch):
            started = entry.task_started_at or now
            if entry.ends_at is not None and entry.ends_at <= started + GME_TASK_CAP_SECONDS:
                continue  # the window ends before the cap: its end stops it
            if entry.task_id is None or entry.closed:
                continue
            pacer.wait(3)  # StopRecord, DescribeTaskInfo, StartRecord
            try:
                self.recorder.stop_task(entry.biz_id, entry.task_id)
                lost = self.ledger.update(
                    *entry.key,
                    task_lost(
                        entry.generation + 1, now, "renewal: old task stopped before the cap"
                    ),
                )
                if lost is not None and lost.state is LedgerState.STARTING:
                    self.start_next(lost, now, "renew", "renewed before GME's 24-hour cap")
                counts["renewed"] += 1
            except TickErrors as exc:
                counts["renew_errors"] += 1
                logger.warning(
                    "renewal failed", extra={"session": entry.session, "error": str(exc)}
                )

    # ------------------------------------------------------------ new tasks

    def start_next(self, entry: LedgerEntry, now: float, what: str, detail: str) -> Outcome:
        """Start (or adopt) the entry's task under the key of its current generation. A stored
        answer for that key whose task is gone is stale: move to the next generation once."""
        outcome = self._ensure(entry, entry.generation, now)
        generation = entry.generation
        if outcome.duplicate and outcome.status in (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED):
            generation += 1
            outcome = self._ensure(entry, generation, now)
        if outcome.status in (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED) and outcome.task_id:
            updated = self.ledger.update(
                *entry.key, new_task(outcome, generation, now, what, detail)
            )
            if updated is not None and updated.state is LedgerState.STOPPING:
                self.service.stop_entry(updated, "room closed while its task was renewed", now)
        else:
            self.ledger.update(*entry.key, after_outcome(outcome, now))
        return outcome

    def _ensure(self, entry: LedgerEntry, generation: int, now: float) -> Outcome:
        session = entry.session if generation == 0 else f"{entry.session}#g{generation}"
        command = StartCommand(
            biz_id=entry.biz_id,
            room_id=entry.room_id,
            session=session,
            event_id=f"lifecycle:{session}",
            occurred_at=datetime.fromtimestamp(now, tz=UTC),
            decision=Decision(
                record=True,
                rule=entry.rule or "ledger",
                reason="continue the session's recording",
                policy_version=entry.policy_version or "ledger",
                plan=entry.plan,
            ),
        )
        try:
            return self.recorder.ensure(command)
        except RetryLater as exc:
            self.ledger.update(*entry.key, start_retry_later(exc.code, exc.message, now))
            raise
