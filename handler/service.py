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
from handler.domain.policy import Policy
from handler.observability import logger
from handler.recorder import Recorder, RetryLater

#: Which metric each first-time outcome counts as; replays count as DuplicateSuppressed.
_OUTCOME_METRICS = {
    OutcomeStatus.STARTED: obs.RECORDING_STARTED,
    OutcomeStatus.ADOPTED: obs.RECORDING_ADOPTED,
    OutcomeStatus.SKIPPED: obs.POLICY_SKIPPED,
}


class RecordingService:
    def __init__(self, policy: Callable[[], Policy], recorder: Callable[[], Recorder]) -> None:
        # Both are factories: an ignored event (a GME callback at the webhook) needs neither
        # GME credentials nor a store, so nothing is built until a room actually needs it.
        self._policy = policy
        self._recorder = recorder

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
            logger.info("room closed", extra={**event.log_keys(), "task_id": outcome.task_id})
            return outcome
        with obs.subsegment("## policy.decide"):
            decision = self._policy().decide(event)
        try:
            with obs.subsegment("## recorder.ensure"):
                outcome = self._recorder().ensure(StartCommand.for_event(event, decision))
        except RetryLater as exc:
            obs.gme_error(exc.code)
            _log_decision(event, decision, status="retry", error_code=exc.code, why=exc.message)
            raise
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
        },
    )


def _count(outcome: Outcome) -> None:
    if outcome.duplicate:
        obs.count(obs.DUPLICATE_SUPPRESSED)
    elif outcome.status is OutcomeStatus.FAILED:
        obs.gme_error(outcome.error_code or "unknown")
    elif outcome.status in _OUTCOME_METRICS:
        obs.count(_OUTCOME_METRICS[outcome.status])
