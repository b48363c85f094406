"""Use case shared by all triggers: one room event in, one outcome out.

The webhook (inline mode), the queue worker and the scheduler all call `RecordingService.handle`,
so a room goes through one code path and one idempotency key space whichever way it arrived.
"""

from __future__ import annotations

from collections.abc import Callable

from handler.domain.events import EventKind, RoomEvent
from handler.domain.inbound import IgnoredEvent
from handler.domain.outcome import Outcome, OutcomeStatus, StartCommand
from handler.domain.policy import ActiveRecordingsLedger, Policy
from handler.observability import logger
from handler.recorder import Recorder


class RecordingService:
    def __init__(
        self,
        policy: Callable[[], Policy],
        recorder: Recorder,
        active: ActiveRecordingsLedger | None = None,
    ) -> None:
        self._policy = policy
        self._recorder = recorder
        self._active = active
        self._warned: set[str] = set()

    def handle(self, event: RoomEvent | IgnoredEvent) -> Outcome:
        if isinstance(event, IgnoredEvent):
            logger.info("event ignored", extra={"format": event.format, "reason": event.reason})
            return Outcome(status=OutcomeStatus.IGNORED, reason=event.reason)
        if event.kind is EventKind.ROOM_CLOSED:
            outcome = self._recorder.stop(event.biz_id, event.room_id)
            self._tally("stopped", event.biz_id, event.room_id)
            logger.info("room closed", extra={**event.log_keys(), "task_id": outcome.task_id})
            return outcome
        # Explanations (why earlier rules missed) are for `explain`; the hot path skips them.
        policy = self._policy()
        if self._active is None and policy.has_quotas and policy.version not in self._warned:
            self._warned.add(policy.version)
            logger.warning(
                "policy has max_concurrent caps but ACTIVE_RECORDINGS is not set: "
                "caps are not enforced",
                extra={"policy_version": policy.version},
            )
        decision = policy.decide(event, active=self._active, explain=False)
        outcome = self._recorder.ensure(StartCommand.for_event(event, decision))
        if outcome.status in _RUNNING and not outcome.duplicate:
            self._tally("started", event.biz_id, event.room_id, decision.rule)
        # The one line an operator greps for: what was decided for this room, and why.
        logger.info(
            "recording decision",
            extra={
                **event.log_keys(),
                "decision": "record" if decision.record else "skip",
                "rule": decision.rule,
                "policy_version": decision.policy_version,
                "reason": decision.reason,
                "status": outcome.status.value,
                "task_id": outcome.task_id,
                "error_code": outcome.error_code,
                "duplicate": outcome.duplicate,
                **(
                    {"sample_bucket": decision.sample_bucket}
                    if decision.sample_bucket is not None
                    else {}
                ),
                **({"notes": list(decision.notes)} if decision.notes else {}),
            },
        )
        return outcome

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
