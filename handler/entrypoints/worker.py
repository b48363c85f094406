"""Lambda entry for the SQS queue: each message is one room event in any accepted format, or a
lifecycle command the scheduler planned (start or end a window, renew a task, check a session).

Failures are reported per message (ReportBatchItemFailures): SQS retries only those, and after
`maxReceiveCount` moves them to the DLQ. Every failed item is logged with its reason.

The records of one batch are handled side by side on a small thread pool, so none waits behind
another's GME round trip: what bounds the calls to GME is the fleet-wide pace every call takes
its slot from, not the number of records in flight. Each record runs `record_handler` alone on
its thread, with the invocation's context bound there (deadline, in-progress locks) and its
correlation id in the logger's thread-local keys.
"""

from __future__ import annotations

from handler.bootstrap import init_phase  # first: the init phase runs without the cyclic collector

# isort: split
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from handler.bootstrap import app, observability
from handler.bootstrap.config import ConfigError
from handler.bootstrap.observability import logger
from handler.domain.events import EventSource, RoomEvent
from handler.domain.inbound import IgnoredEvent, InvalidEvent, parse_json, parse_queue_message
from handler.domain.outcome import Outcome, OutcomeStatus
from handler.domain.retry import RetryLater

if TYPE_CHECKING:  # loaded with the first lifecycle command: room events never need it
    from handler.service_layer.lifecycle.steps import StepResult


class ItemFailed(Exception):
    """A message we could not bring to a final good outcome; the text is the reason."""


#: Records of one batch in flight at once in one instance. 10 is SQS's largest batch without a
#: batching window, and the SDK's HTTP pool keeps 10 connections per host.
MAX_PARALLEL_RECORDS = 10


def record_handler(record: SQSRecord) -> Outcome | StepResult:
    """One message, start to end, on whichever thread the batch gives it."""
    # Thread-local keys: the records of a batch log side by side, each with its own id.
    logger.thread_safe_append_keys(correlation_id=record.message_id)  # until the event id is known
    app_id_attr = record.message_attributes["SdkAppId"]  # None when absent (Powertools)
    app_id = app_id_attr.string_value if app_id_attr is not None else None
    event = parse_queue_message(parse_json(record.body), EventSource.QUEUE, sdk_app_id=app_id)
    if not isinstance(event, (RoomEvent, IgnoredEvent)):  # a lifecycle command (the scheduler)
        logger.thread_safe_append_keys(correlation_id=event.command_id)
        return app.lifecycle_steps().run(event)
    if isinstance(event, RoomEvent):
        logger.thread_safe_append_keys(correlation_id=event.event_id)
    outcome = app.service().handle(event)
    if outcome.status is OutcomeStatus.FAILED:
        raise ItemFailed(f"{outcome.error_code}: {outcome.reason}")
    return outcome


#: Failures with a reason of their own; anything else is a fault, logged with its traceback.
EXPECTED = (InvalidEvent, RetryLater, IdempotencyAlreadyInProgressError, ItemFailed, ConfigError)


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, InvalidEvent):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, RetryLater):
        return f"retry: {exc.code}: {exc.message}"
    if isinstance(exc, IdempotencyAlreadyInProgressError):
        return "retry: in_progress: another delivery of this room session is being processed"
    if isinstance(exc, ItemFailed):
        return f"failed: {exc}"
    if isinstance(exc, ConfigError):  # names the variable, never its value
        return f"retry: misconfigured: {exc}"
    return f"error: {type(exc).__name__}"


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Built once per process and kept while warm: its threads keep their SQLite connections."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_PARALLEL_RECORDS, thread_name_prefix="record")
        return _pool


class ConcurrentBatchProcessor(BatchProcessor):
    """Powertools' SQS `BatchProcessor`, its records run side by side (results in record order,
    the same partial-failure response), each failure kept with its own record."""

    def __init__(self, context: Any) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._context = context
        self.failure_of: dict[int, BaseException] = {}

    def process(self) -> list[tuple[Any, ...]]:
        if len(self.records) <= 1:
            return [self._one(record) for record in self.records]
        return list(_executor().map(self._one, self.records))

    def _one(self, record: dict[str, Any]) -> Any:
        app.bind_context(self._context)  # this thread's view of the invocation
        try:
            return self._process_record(record)
        finally:
            logger.thread_safe_remove_keys(["correlation_id"])

    def failure_handler(self, record: Any, exception: Any) -> Any:
        # Powertools' own list is in completion order; the report needs each record's own.
        self.failure_of[id(record)] = exception[1]
        return super().failure_handler(record, exception)


def process_batch(
    event: dict[str, Any], context: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Returns the Lambda response and a per-message report (id, ok, outcome or reason)."""
    app.bind_context(context)
    processor = ConcurrentBatchProcessor(context)
    with processor(records=event.get("Records", []), handler=record_handler):
        results = processor.process()
    report: list[dict[str, Any]] = []
    for status, result, record in results:
        message_id = record.get("messageId")
        if status == "success":
            outcome = result.model_dump(mode="json", exclude_defaults=True)
            report.append({"message_id": message_id, "ok": True, "outcome": outcome})
            continue
        exc = processor.failure_of.get(id(record))
        reason = _reason(exc)
        logger.set_correlation_id(message_id)
        fault = exc if exc is not None and not isinstance(exc, EXPECTED) else None
        logger.warning(
            "message failed", extra={"message_id": message_id, "reason": reason}, exc_info=fault
        )
        report.append({"message_id": message_id, "ok": False, "reason": reason})
    return dict(processor.response()), report


@observability.log_metrics
@logger.inject_lambda_context(clear_state=True)
@observability.trace_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response, _ = process_batch(event, context)
    return response


init_phase.end()  # last: everything above is built; freeze it, collect normally again
