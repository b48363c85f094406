"""Lambda entry for the HTTP API: verify, parse, then enqueue (deployed) or record inline (local).

Thin on purpose: authentication and parsing live in `handler.ingest`, recording in the service.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from handler import app, observability
from handler.adapters.queue import QueueUnavailable
from handler.domain.events import RoomEvent
from handler.ingest import Rejected, Route, ingest
from handler.observability import logger
from handler.recorder import RetryLater

api = APIGatewayHttpResolver()


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(status, "application/json", json.dumps(body), headers)


def _raw_body() -> bytes:
    event = api.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def _accept(route: Route) -> Response[str]:
    try:
        event = ingest(route, api.current_event.headers, _raw_body(), app.settings())
    except Rejected as exc:
        logger.warning("webhook rejected", extra={"route": route.value, "code": exc.code})
        observability.webhook_rejected(exc.code)
        return _json(exc.status, exc.body())
    if isinstance(event, RoomEvent):
        logger.append_keys(**event.log_keys())
        if app.settings().record_queue_url:
            try:
                message_id = app.publisher().publish(event)
            except QueueUnavailable:
                return _json(
                    503, {"code": "queue_unavailable", "message": "try again"}, {"Retry-After": "5"}
                )
            logger.info("event queued", extra={"message_id": message_id})
            return _json(
                202, {"status": "queued", "event_id": event.event_id, "message_id": message_id}
            )
    try:
        outcome = app.service().handle(event)
    except (RetryLater, IdempotencyAlreadyInProgressError) as exc:
        code = exc.code if isinstance(exc, RetryLater) else "in_progress"
        return _json(
            503, {"code": code, "message": "not recorded yet; retry"}, {"Retry-After": "5"}
        )
    return _json(200, outcome.model_dump(mode="json", exclude_defaults=True))


@api.post(Route.ROOM_EVENTS.value)
def room_events() -> Response[str]:
    return _accept(Route.ROOM_EVENTS)


@api.post(Route.TRTC.value)
def trtc_callbacks() -> Response[str]:
    return _accept(Route.TRTC)


@api.post(Route.GME_CALLBACK.value)
def gme_callbacks() -> Response[str]:
    return _accept(Route.GME_CALLBACK)


@api.get("/health")
def health() -> Response[str]:
    return _json(200, {"status": "ok"})


@api.not_found
def not_found(_exc: Exception) -> Response[str]:
    return _json(404, {"code": "not_found", "message": "no such route"})


@api.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected(exc: Exception) -> Response[str]:
    logger.exception("webhook failed")
    return _json(500, {"code": "internal_error", "message": "internal error"})


@observability.log_metrics
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@observability.trace_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    app.bind_context(context)
    return api.resolve(event, context)
