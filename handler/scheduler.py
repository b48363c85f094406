"""Lambda entry for the EventBridge schedule.

Not built yet: scheduled recording windows, 24-hour renewals and the reconciliation sweep come in
a later version. Today it accepts its event, logs it and does nothing else (see README status).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from handler import observability
from handler.observability import logger


@observability.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@observability.trace_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("scheduler tick", extra={"time": event.get("time"), "id": event.get("id")})
    return {"status": "noop", "reason": "scheduled windows, renewal and sweep are not built yet"}
