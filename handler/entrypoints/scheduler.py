"""Lambda entry for the EventBridge schedule (every minute: serverless.yml `params.schedule`).

Each tick plans what is due: schedule windows to start and end, sessions past their
`max_duration`, tasks nearing GME's 24-hour cap to renew, ledger entries to check against GME,
running sessions to bring to a changed policy (see `handler.service_layer.lifecycle`). Deployed,
each unit goes to the record queue and the workers run it; locally (no RECORD_QUEUE_URL) it runs
here. Then it sends again the recording events a receiver missed (`handler.service_layer.notify`).
The tick's time is the event's `time` (EventBridge's scheduled time), so a retried invocation
acts as of its slot; an event without one uses the current time.
"""

from __future__ import annotations

from handler.bootstrap import init_phase  # first: the init phase runs without the cyclic collector

# isort: split
import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from handler.bootstrap import observability
from handler.bootstrap.observability import logger


def tick_time(event: dict[str, Any]) -> datetime:
    value = event.get("time") if isinstance(event, dict) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


@observability.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@observability.trace_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from handler.bootstrap import app  # lazily: the import stays as cheap as the entry's logger

    app.bind_context(context)
    now = tick_time(event)
    logger.info("scheduler tick", extra={"time": now.isoformat(), "id": event.get("id")})
    counts = app.lifecycle().tick(now, context)
    # Recording events a receiver missed: sent again, in what time the tick has left.
    counts |= app.notifier().flush(now.timestamp(), flush_deadline(context))
    return {"status": "ok", "time": now.isoformat(), **counts}


def flush_deadline(context: Any) -> float:
    """A monotonic deadline 5 s before the invocation's end, at most 20 s away."""
    left = context.get_remaining_time_in_millis() / 1000 if context is not None else 30.0
    return time.monotonic() + max(0.0, min(20.0, left - 5.0))


init_phase.end()  # last: everything above is built; freeze it, collect normally again
