"""Use case shared by all triggers: one room event in, one outcome out.

The webhook (inline mode), the queue worker and the scheduler all call `RecordingService.handle`,
so a room goes through one code path and one idempotency key space whichever way it arrived.
Metrics and trace subsegments are emitted here, at the edge of the domain, never inside it.
"""

from __future__ import annotations

from collections.abc import Callable

from handler import observability as obs
from handler.domain.decision import Decision
from handler.domain.events import EventKind, RoomEvent
from handler.domain.gme import GmeError
from handler.domain.inbound import IgnoredEvent
from handler.domain.outcome import Outcome, OutcomeStatus, StartCommand
from handler.domain.policy import ActiveRecordingsLedger, Policy
from handler.observability import logger
from handler.recorder import Recorder, RetryLater

#: Which metric each first-time outcome counts as; replays count as DuplicateSuppressed.
_OUTCOME_METRICS = {
    OutcomeStatus.STARTED: obs.RECORDING_STARTED,
    OutcomeStatus.ADOPTED: obs.RECORDING_ADOPTED,
    OutcomeStatus.SKIPPED: obs.POLICY_SKIPPED,
}


class RecordingService:
    def __init__(
        self,
        policy: Callable[[], Policy],
        recorder: Callable[[], Recorder],
        active: ActiveRecordingsLedger | None = None,
    ) -> None:
        # Policy and recorder are factories: an ignored event (a GME callback at the webhook)
        # needs neither GME credentials nor a store, so nothing is built until a room needs it.
        self._policy = policy
        self._recorder = recorder
        self._active = active
        self._warned: set[str] = set()

    def handle(self, event: RoomEvent | IgnoredEvent) -> Outcome:
        if isinstance(event, IgnoredEvent):
            logger.info("event ignored", extra={"format": event.format, "reason": event.reason})
            return Outcome(status=OutcomeStatus.IGNORED, reason=event.reason)
        if event.kind is EventKind.ROOM_CLOSED:
            try:
                outcome = self._recorder().stop(event.biz_id, event.room_id)
            except GmeError as exc:
                obs.gme_error(exc.code)
                raise
            self._tally("stopped", event.biz_id, event.room_id)
            logger.info("room closed", extra={**event.log_keys(), "task_id": outcome.task_id})
            return outcome
        policy = self._policy()
        self._warn_unenforced_caps(policy)
        with obs.subsegment("## policy.decide"):
            # Explanations (why earlier rules missed) are for `explain`; the hot path skips them.
            decision = policy.decide(event, active=self._active, explain=False)
        try:
            with obs.subsegment("## recorder.ensure"):
                outcome = self._recorder().ensure(StartCommand.for_event(event, decision))
        except RetryLater as exc:
            obs.gme_error(exc.code)
            _log_decision(event, decision, status="retry", error_code=exc.code, why=exc.message)
            raise
        if outcome.status in _RUNNING and not outcome.duplicate:
            self._tally("started", event.biz_id, event.room_id, decision.rule)
        _count(outcome)
        _log_decision(
            event,
            decision,
            status=outcome.status.value,
            task_id=outcome.task_id,
            error_code=outcome.error_code,
            duplicate=outcome.duplicate,
        )
        return outcome

    def _warn_unenforced_caps(self, policy: Policy) -> None:
        if self._active is None and policy.has_quotas and policy.version not in self._warned:
            self._warned.add(policy.version)
            logger.warning(
                "policy has max_concurrent caps but ACTIVE_RECORDINGS is not set: "
                "caps are not enforced",
                extra={"policy_version": policy.version},
            )

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


_RUNNING = (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED)


def _log_decision(
    event: RoomEvent,
    decision: Decision,
    *,
    status: str,
    task_id: str | None = None,
    error_code: str | None = None,
    duplicate: bool = False,
    why: str | None = None,
) -> None:
    """The one line an operator greps for: what was decided for this room, why, and what came
    of it (`retry` = not known yet, the delivery will be retried)."""
    logger.info(
        "recording decision",
        extra={
            **event.log_keys(),
            "decision": "record" if decision.record else "skip",
            "rule": decision.rule,
            "policy_version": decision.policy_version,
            "reason": decision.reason,
            "status": status,
            "task_id": task_id,
            "error_code": error_code,
            "error": why,
            "duplicate": duplicate,
            **(
                {"sample_bucket": decision.sample_bucket}
                if decision.sample_bucket is not None
                else {}
            ),
            **({"notes": list(decision.notes)} if decision.notes else {}),
        },
    )


def _count(outcome: Outcome) -> None:
    if outcome.duplicate:
        obs.count(obs.DUPLICATE_SUPPRESSED)
    elif outcome.status is OutcomeStatus.FAILED:
        obs.gme_error(outcome.error_code or "unknown")
    elif outcome.status in _OUTCOME_METRICS:
        obs.count(_OUTCOME_METRICS[outcome.status])
