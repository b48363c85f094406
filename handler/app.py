"""Composition root: builds the adapters once per process (module scope, reused while warm).

Everything is built lazily on first use, so importing an entry module stays cheap and a
configuration error surfaces as one clear message on the first event rather than an import crash.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from handler.config import ConfigError, Settings
from handler.domain.policy import Policy, load_policy
from handler.recorder import Recorder
from handler.service import RecordingService

if TYPE_CHECKING:
    from handler.adapters.queue import SqsPublisher


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def policy() -> Policy:
    return load_policy(settings().recording_policy)


@cache
def gme() -> Any:
    """The SDK gateway, paced to GME's limit through a schedule shared by the whole fleet."""
    from handler.adapters.gme_client import TencentGme

    s = settings()
    secret_id, secret_key, token = s.require_credentials()
    sdk = TencentGme(s.gme_endpoint, secret_id, secret_key, token, s.gme_timeout_seconds)
    if not s.gme_rate_limit_per_second:
        return sdk
    from handler.adapters.buckets import build_slot_store
    from handler.adapters.ratelimited_gme import RateLimitedGme
    from handler.domain.ratelimit import Pace

    pace = Pace(s.gme_rate_limit_per_second, s.gme_rate_limit_burst)
    # The reserve keeps room after any wait for one GME call (its timeout) and the outcome write.
    limited = RateLimitedGme(
        sdk,
        build_slot_store(s.idempotency_store, pace),
        reserve_seconds=s.gme_timeout_seconds + 0.5,
    )
    if _context is not None:
        limited.bind_context(_context)
    return limited


_context: Any = None


def bind_context(context: Any) -> None:
    """Give the recorder this invocation's Lambda context: its in-progress locks then expire with
    the invocation, so a crashed attempt does not block retries until the record expires. The
    rate limiter takes its deadline from the same context."""
    global _context
    _context = context
    if context is None:
        return
    if recorder.cache_info().currsize:
        recorder().register_context(context)
    if gme.cache_info().currsize and hasattr(gme(), "bind_context"):
        gme().bind_context(context)


@cache
def recorder() -> Recorder:
    from handler.adapters.stores import build_persistence_layer

    s = settings()
    built = Recorder(
        gme(),
        build_persistence_layer(s.idempotency_store),
        expiry_seconds=s.idempotency_expiry_seconds,
        room_not_found_grace_seconds=s.room_not_found_grace_seconds,
    )
    if _context is not None:
        built.register_context(_context)
    return built


@cache
def service() -> RecordingService:
    return RecordingService(policy, recorder())


@cache
def publisher() -> SqsPublisher:
    from handler.adapters.queue import SqsPublisher

    url = settings().record_queue_url
    if not url:
        raise ConfigError("RECORD_QUEUE_URL is not set")
    return SqsPublisher(url)


def reset() -> None:
    """Forget every built adapter (tests and the local runner change the environment)."""
    for fn in (settings, policy, gme, recorder, service, publisher):
        fn.cache_clear()
