"""Use case shared by all triggers: one room event in, one outcome out.

The webhook (inline mode), the queue worker and the scheduler all call `RecordingService`, so a
room goes through one code path and one idempotency key space whichever way it arrived.

Every room session also gets a ledger entry: `starting` is written before the
idempotent start (so a crash in between is visible to the sweep), the outcome after it, and a
close marks the session closed before stopping its task. Both sides check the other's mark after
their own write, so a close racing a start always ends with the task stopped, and a create that
arrives after its close records nothing. Metrics and trace subsegments are emitted here, at the
edge of the domain, never inside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from handler.bootstrap import observability as obs
from handler.bootstrap.observability import logger
from handler.domain.callbacks import RecordingCallback
from handler.domain.decision import Decision
from handler.domain.events import EventKind, InboundFormat, RoomEvent
from handler.domain.gme import GmeError
from handler.domain.inbound import IgnoredEvent
from handler.domain.ledger import DecidedOn, Ledger, LedgerEntry, LedgerState
from handler.domain.ledger_rules import (
    after_outcome,
    callback,
    closing,
    start_retry_later,
    starting,
    stopped,
)
from handler.domain.outcome import Outcome, OutcomeStatus, StartCommand
from handler.domain.retry import RetryLater
from handler.service_layer.recorder import Recorder
from handler.service_layer.reporting import log_decision, report_outcome

if TYPE_CHECKING:  # loaded by the app when the policy is first needed
    from handler.domain.policy import ActiveRecordingsLedger, Policy

#: Session prefix of the tombstone a session-less close (TRTC 102) leaves for late creates.
TRTC_CLOSE_PREFIX = "trtc-close-"
#: Session prefix of scheduled windows (`handler.domain.schedule.Window.session`).
WINDOW_PREFIX = "window-"


class RecordingService:
    def __init__(
        self,
        policy: Callable[[], Policy],
        recorder: Callable[[], Recorder],
        ledger: Ledger,
        active: ActiveRecordingsLedger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Policy and recorder are factories: an ignored event or a GME callback at the webhook
        # needs neither GME credentials nor an idempotency store, so nothing is built for it.
        self._policy = policy
        self._recorder = recorder
        self.ledger = ledger
        self._active = active
        self._clock = clock
        self._warned: set[str] = set()

    def decide(self, event: RoomEvent) -> Decision:
        policy = self._policy()
        if self._active is None and policy.has_quotas and policy.version not in self._warned:
            self._warned.add(policy.version)
            logger.warning(
                "policy has max_concurrent caps but ACTIVE_RECORDINGS is not set: "
                "caps are not enforced",
                extra={"policy_version": policy.version},
            )
        with obs.subsegment("## policy.decide"):
            # Explanations (why earlier rules missed) are for `explain`; the hot path skips them.
            return policy.decide(event, active=self._active, explain=False)

    def handle(self, event: RoomEvent | IgnoredEvent) -> Outcome:
        if isinstance(event, RecordingCallback):
            return self.note_callback(event)
        if isinstance(event, IgnoredEvent):
            logger.info("event ignored", extra={"format": event.format, "reason": event.reason})
            return Outcome(status=OutcomeStatus.IGNORED, reason=event.reason)
        if event.kind is EventKind.ROOM_CLOSED:
            try:
                outcome = self.close(event)
            except GmeError as exc:
                obs.gme_error(exc.code)
                raise
            self._tally("stopped", event.biz_id, event.room_id)
            logger.info("room closed", extra={**event.log_keys(), "task_id": outcome.task_id})
            return outcome
        return self.start(event, self.decide(event))

    # ------------------------------------------------------------------ start

    def start(
        self,
        event: RoomEvent,
        decision: Decision,
        ends_at: float | None = None,
        at: float | None = None,
    ) -> Outcome:
        """Ledger `starting` → idempotent ensure → ledger outcome (→ stop if closed meanwhile).
        `at` is the ledger time (the scheduler passes its tick time); default: the clock."""
        key = (event.biz_id, event.room_id, event.session)
        now = self._clock() if at is None else at
        if event.format is InboundFormat.TRTC and self._trtc_closed_since(event):
            self.ledger.update(*key, closing(*key, now, "TRTC room dismissed"))
        facts = DecidedOn.of(event)
        entry = self.ledger.update(
            *key, starting(*key, decision, now, ends_at, f"event {event.event_id}", facts)
        )
        if entry is not None and entry.closed:
            return report_outcome(event, decision, _closed_outcome(entry))
        command = StartCommand.for_event(event, decision)
        try:
            with obs.subsegment("## recorder.ensure"):
                outcome = self._recorder().ensure(command)
        except RetryLater as exc:
            obs.gme_error(exc.code)
            log_decision(event, decision, status="retry", error_code=exc.code, why=exc.message)
            self.ledger.update(*key, start_retry_later(exc.code, exc.message, now))
            raise
        if outcome.status is OutcomeStatus.STARTED and not outcome.duplicate:
            _time_to_record(event, self._clock())
        if outcome.status in _RUNNING and not outcome.duplicate:
            self._tally("started", event.biz_id, event.room_id, decision.rule)
        entry = self.ledger.update(*key, after_outcome(outcome, now))
        if entry is not None and entry.state is LedgerState.STOPPING:
            # The close won the race: it marked the session before our task existed.
            self.stop_entry(entry, "room closed while its start was in flight", now)
        return report_outcome(event, decision, outcome)

    def _trtc_closed_since(self, event: RoomEvent) -> bool:
        """TRTC closes carry no session; a dismissal newer than this create means it is over.
        Tombstones are named by their time in ms, so the newest is the one to compare."""
        created = event.occurred_at.timestamp()
        last = self.ledger.newest_session(event.biz_id, event.room_id, TRTC_CLOSE_PREFIX)
        return last is not None and (last.closed_at or 0) >= created

    def _tally(self, what: str, biz_id: int, room_id: str, rule: str = "") -> None:
        """Keep the quota counter current. A counter failure must not fail an event whose
        recording already started (a retry would replay it as a duplicate and count nothing),
        so it is logged and the event goes on."""
        if self._active is None:
            return
        try:
            if what == "started":
                self._active.started(rule, biz_id, room_id)
            else:
                self._active.stopped(biz_id, room_id)
        except Exception as exc:  # the counter is advisory; the recording is what matters
            logger.error(
                "active-recording counter not updated",
                extra={"biz_id": biz_id, "room_id": room_id, "error": type(exc).__name__},
            )

    # ------------------------------------------------------------------ close

    def close(self, event: RoomEvent) -> Outcome:
        now = self._clock()
        session, closed_at = event.session, None
        if event.format is InboundFormat.TRTC:
            # TRTC 102 has no session: it ends the room's latest open session (schedule windows
            # are time-based and stay). None known: a room tombstone for a late TRTC create,
            # and whatever unowned task runs in the room is stopped.
            open_now = self.ledger.open_sessions(event.biz_id, event.room_id)
            current = next((r for r in open_now if not r.session.startswith(WINDOW_PREFIX)), None)
            if current is not None:
                session = current.session
            else:
                session = f"{TRTC_CLOSE_PREFIX}{int(event.occurred_at.timestamp() * 1000)}"
                closed_at = event.occurred_at.timestamp()
        detail = f"room closed ({event.format.value}, event {event.event_id})"
        entry = self.ledger.update(
            event.biz_id,
            event.room_id,
            session,
            closing(event.biz_id, event.room_id, session, now, detail, closed_at),
        )
        assert entry is not None
        return self.stop_entry(entry, detail)

    def stop_entry(self, entry: LedgerEntry, detail: str, at: float | None = None) -> Outcome:
        """Stop the task of a closed (or ended) entry and mark it stopped. Idempotent: a stopped
        entry makes no GME call; TaskNotFound counts as stopped."""
        base = {"biz_id": entry.biz_id, "room_id": entry.room_id, "session": entry.session}
        if entry.state is LedgerState.STOPPED:
            return Outcome(
                status=OutcomeStatus.STOPPED,
                task_id=entry.task_id,
                reason="already stopped",
                duplicate=True,
                **base,
            )
        task_id = entry.task_id
        if task_id is not None and self.owned_elsewhere(entry, task_id):
            # GME runs one task per room: another open session (a schedule window, say)
            # adopted the same task and still wants it.
            why = f"{detail}; task kept: another open session of the room uses it"
        elif task_id is not None:
            found = self._recorder().stop_task(entry.biz_id, task_id)
            why = detail if found else f"{detail}; GME no longer had the task"
        else:
            task_id = self._stop_unowned(entry)
            why = detail if task_id else f"{detail}; no task was running"
        now = self._clock() if at is None else at
        self.ledger.update(*entry.key, stopped(now, why, task_id))
        return Outcome(status=OutcomeStatus.STOPPED, task_id=task_id, reason=why, **base)

    def _stop_unowned(self, entry: LedgerEntry) -> str | None:
        """An entry without a known task (crash before the ledger write, tombstone): stop the
        room's running task unless another open session of the room owns it."""
        task = self._recorder().running_task(entry.biz_id, entry.room_id)
        if task is None or self.owned_elsewhere(entry, task.task_id):
            return None
        self._recorder().stop_task(entry.biz_id, task.task_id)
        return task.task_id

    def owned_elsewhere(self, entry: LedgerEntry, task_id: str) -> bool:
        return any(
            r.room_id == entry.room_id and r.session != entry.session and not r.closed
            for r in self.ledger.task_sessions(entry.biz_id, task_id)
        )

    # -------------------------------------------------------------- callbacks

    def note_callback(self, cb: RecordingCallback) -> Outcome:
        """Attach a GME callback to the entry that owns its task; unknown tasks are ignored."""
        outcome = Outcome(
            status=OutcomeStatus.IGNORED,
            biz_id=cb.biz_id,
            room_id=cb.room_id,
            task_id=cb.task_id,
            reason=cb.reason,
        )
        owner = self._owner(cb.biz_id, cb.room_id, cb.task_id)
        if owner is None:
            logger.info("callback for an unknown task", extra={"task_id": cb.task_id})
            return outcome.model_copy(update={"reason": "no ledger entry owns this task"})
        self.ledger.update(*owner.key, callback(cb.note(), self._clock()))
        return outcome.model_copy(update={"session": owner.session})

    def _owner(self, biz_id: int, room_id: str, task_id: str) -> LedgerEntry | None:
        """The session whose current task this is (the task index), else an open session of
        the room whose history names it (a task renewed away, or an index a moment behind)."""
        for ref in self.ledger.task_sessions(biz_id, task_id):
            if ref.room_id == room_id:
                return self.ledger.get(*ref.key)
        for ref in self.ledger.open_sessions(biz_id, room_id):
            entry = self.ledger.get(*ref.key)
            if entry is not None and (
                entry.task_id == task_id or any(h.task_id == task_id for h in entry.history)
            ):
                return entry
        return None


_RUNNING = (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED)


def _time_to_record(event: RoomEvent, now: float) -> None:
    """Room events only: a scheduled window's "event" is the tick that found it due."""
    if event.format is not InboundFormat.SCHEDULE:
        obs.time_to_record(now - event.occurred_at.timestamp())


def _closed_outcome(entry: LedgerEntry) -> Outcome:
    return Outcome(
        status=OutcomeStatus.SKIPPED,
        biz_id=entry.biz_id,
        room_id=entry.room_id,
        session=entry.session,
        task_id=entry.task_id,
        rule=entry.rule,
        policy_version=entry.policy_version,
        reason="the room session is already closed; nothing is recorded for it",
    )
