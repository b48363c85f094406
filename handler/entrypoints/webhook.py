"""Lambda entry for the HTTP API: verify, parse, then enqueue (deployed) or record inline (local).

Thin on purpose: authentication and parsing live in `handler.ingress.ingest`, the answer in
`handler.ingress.receiver`, the documented answers per route in `handler.tools.contract`.
"""

from __future__ import annotations

from handler.bootstrap import init_phase  # first: the init phase runs without the cyclic collector

# isort: split
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from handler.bootstrap import app, observability
from handler.bootstrap.observability import logger
from handler.ingress.ingest import Route
from handler.ingress.receiver import Reply, accept

api = APIGatewayHttpResolver()
ROUTED = {route.value: "POST" for route in Route} | {"/health": "GET"}


def _json(reply: Reply) -> Response[str]:
    return Response(reply.status, "application/json", json.dumps(reply.body), reply.headers)


def _accept(route: Route) -> Response[str]:
    event = api.current_event
    return _json(accept(route, event.headers, event.body, bool(event.is_base64_encoded)))


# Route docs only: the answers each route documents are in `handler.tools.contract`, which builds
# the OpenAPI document; declaring them here would build their models on every cold start.
@api.post(
    Route.ROOM_EVENTS.value,
    summary="Room event v1 (Standard Webhooks signature)",
    tags=["room events"],
)
def room_events() -> Response[str]:
    return _accept(Route.ROOM_EVENTS)


@api.post(
    Route.TRTC.value, summary="TRTC room callback (Sign and SdkAppId headers)", tags=["room events"]
)
def trtc_callbacks() -> Response[str]:
    return _accept(Route.TRTC)


@api.post(
    Route.GME_CALLBACK.value,
    summary="GME recording callback (Signature header); noted in the recording ledger",
    tags=["callbacks"],
)
def gme_callbacks() -> Response[str]:
    return _accept(Route.GME_CALLBACK)


@api.get("/health", summary="Liveness", tags=["ops"])
def health() -> Response[str]:
    return _json(Reply(200, {"status": "ok"}))


@api.not_found
def not_found(_exc: Exception) -> Response[str]:
    allowed = ROUTED.get(api.current_event.path)
    if allowed:
        body = {"code": "method_not_allowed", "message": f"this route takes {allowed} only"}
        return _json(Reply(405, body, {"Allow": allowed}))
    return _json(Reply(404, {"code": "not_found", "message": "no such route"}))


@api.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected(exc: Exception) -> Response[str]:
    logger.exception("webhook failed")
    observability.webhook_failed()
    return _json(Reply(500, {"code": "internal_error", "message": "internal error"}))


@observability.log_metrics
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@observability.trace_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    app.bind_context(context)
    return api.resolve(event, context)


init_phase.end()  # last: everything above is built; freeze it, collect normally again
