"""What the service tells operators about each decision: one log line and one metric.

Kept out of the use case so the service reads as the flow it is.
"""

from __future__ import annotations

from handler.bootstrap import observability as obs
from handler.bootstrap.observability import logger
from handler.domain.decision import Decision
from handler.domain.events import RoomEvent
from handler.domain.outcome import Outcome, OutcomeStatus

#: Which metric each first-time outcome counts as; replays count as DuplicateSuppressed.
_OUTCOME_METRICS = {
    OutcomeStatus.STARTED: obs.RECORDING_STARTED,
    OutcomeStatus.ADOPTED: obs.RECORDING_ADOPTED,
    OutcomeStatus.SKIPPED: obs.POLICY_SKIPPED,
}


def log_decision(
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
    sampled = decision.sample_bucket
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
            **({"sample_bucket": sampled} if sampled is not None else {}),
            **({"notes": list(decision.notes)} if decision.notes else {}),
        },
    )


def report_outcome(event: RoomEvent, decision: Decision, outcome: Outcome) -> Outcome:
    if outcome.duplicate:
        obs.count(obs.DUPLICATE_SUPPRESSED)
    elif outcome.status is OutcomeStatus.FAILED:
        obs.gme_error(outcome.error_code or "unknown")
    elif outcome.status in _OUTCOME_METRICS:
        obs.count(_OUTCOME_METRICS[outcome.status])
    log_decision(
        event,
        decision,
        status=outcome.status.value,
        task_id=outcome.task_id,
        error_code=outcome.error_code,
        duplicate=outcome.duplicate,
    )
    return outcome
