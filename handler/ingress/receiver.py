"""What the webhook answers for one request: refuse, acknowledge (queue mode) or record (inline).

Independent of the HTTP framework: `handler.entrypoints.webhook` maps a `Reply` onto the resolver's
response. Every path out of here is a deliberate status with a `code`; the only 5xx are 503s
that ask the sender to retry, so nothing a sender does can turn into a silent drop or a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from handler.adapters.queue import QueueUnavailable
from handler.bootstrap import app, observability
from handler.bootstrap.config import ConfigError, Settings
from handler.bootstrap.observability import logger
from handler.domain.events import RoomEvent
from handler.domain.inbound import IgnoredEvent
from handler.domain.retry import RetryLater
from handler.domain.signatures import BAD_SIGNATURE
from handler.ingress.ingest import (
    Rejected,
    Route,
    ingest,
    raw_body,
    trtc_keys_shared_across_apps,
    unconfigured_routes,
)

RETRY_AFTER_SECONDS = "5"


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _retry(code: str, message: str) -> Reply:
    return Reply(503, {"code": code, "message": message}, {"Retry-After": RETRY_AFTER_SECONDS})


_warned_for: Settings | None = None  # held, not its id(): a new object may reuse an address


def warn_about_keys(settings: Settings) -> None:
    """Once per configuration: name the routes that refuse everything, and the setting that
    would open each, so a missing key shows up at start-up, not as 401s; and name the TRTC
    setting when one of its keys serves several apps (a replay across them is open). Settings
    are named, never values."""
    global _warned_for
    if _warned_for is settings:
        return
    _warned_for = settings
    missing = unconfigured_routes(settings)
    if missing:
        logger.warning(
            "webhook routes without a signing key refuse every request (fail closed)",
            extra={"routes": {route.value: name for route, name in missing.items()}},
        )
    if trtc_keys_shared_across_apps(settings):
        logger.warning(
            "TRTC_CALLBACK_KEY has one key for several apps (bound to each, or bare with several "
            "apps in TRTC_SDK_APP_ID): a body one app signed can then be replayed within 300 s "
            "under another app's SdkAppId header; give each app its own key, written SDKAPPID:key",
            extra={"setting": "TRTC_CALLBACK_KEY"},
        )


def _not_a_room_event(event: IgnoredEvent) -> Reply:
    # Loaded here: only the GME callback route produces one, and it was loaded to parse it.
    from handler.domain.callbacks import RecordingCallback

    if isinstance(event, RecordingCallback):
        # Noted in the ledger right here in both modes: a ledger write, never a GME call.
        noted = app.service().note_callback(event)
        return Reply(200, noted.model_dump(mode="json", exclude_defaults=True))
    logger.info("event ignored", extra={"format": event.format, "reason": event.reason})
    return Reply(200, {"status": "ignored", "reason": event.reason})


def accept(route: Route, headers: Mapping[str, str], body: str | None, is_b64: bool) -> Reply:
    try:
        return _accept(route, headers, body, is_b64)
    except ConfigError as exc:
        # The message names the variable, never a value; the sender only learns to retry, and
        # keeps its event until an operator fixes the configuration.
        logger.error("configuration error", extra={"error": str(exc)})
        observability.webhook_failed()
        return _retry("misconfigured", "the service is misconfigured; retry later")


def _ingest(
    route: Route, headers: Mapping[str, str], raw: bytes, settings: Settings
) -> RoomEvent | IgnoredEvent:
    """`ingest`, once more with the keys read again when the signature fails with the keys in
    use: the sender may already sign with a rotated key (`app.refresh_secrets` reads them at
    most once per refresh interval, so a flood of bad signatures is one fetch)."""
    try:
        return ingest(route, headers, raw, settings)
    except Rejected as exc:
        if exc.code != BAD_SIGNATURE or not app.refresh_secrets():
            raise
    return ingest(route, headers, raw, app.settings())


def _accept(route: Route, headers: Mapping[str, str], body: str | None, is_b64: bool) -> Reply:
    settings = app.settings()
    warn_about_keys(settings)
    try:
        raw = raw_body(body, is_b64, settings.max_body_bytes)
        event = _ingest(route, headers, raw, settings)
    except Rejected as exc:
        logger.warning("webhook rejected", extra={"route": route.value, "code": exc.code})
        observability.webhook_rejected(exc.code)
        return Reply(exc.status, exc.body())
    if not isinstance(event, RoomEvent):
        return _not_a_room_event(event)
    logger.append_keys(**event.log_keys())
    try:
        if settings.record_queue_url:
            queued = app.enqueuer().enqueue(event)
            # Pairs the event id with this request id, to follow the event into the worker.
            logger.info("event queued", extra=queued)
            return Reply(202, {"status": "queued", **queued})
        outcome = app.service().handle(event)
    except QueueUnavailable:
        logger.warning("queue unavailable; sender must retry")
        return _retry("queue_unavailable", "the event could not be queued; retry")
    except RetryLater as exc:
        return _retry(exc.code, "not recorded yet; retry")
    except IdempotencyAlreadyInProgressError:
        return _retry("in_progress", "another delivery of this event is being handled; retry")
    except IdempotencyPersistenceLayerError:
        logger.exception("idempotency store unavailable")
        return _retry("store_unavailable", "the idempotency store is unavailable; retry")
    return Reply(200, outcome.model_dump(mode="json", exclude_defaults=True))
