"""Composition root: builds the adapters once per process (module scope, reused while warm).

Everything is built lazily on first use, so importing an entry module stays cheap and a
configuration error surfaces as one clear message on the first event rather than an import crash.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from handler.config import ConfigError, Settings
from handler.observability import gme_error, pacing_wait, register_secrets

if TYPE_CHECKING:  # the policy package is loaded only where a room is decided
    from handler.adapters.policy_source import PolicyProvider
    from handler.adapters.queue import SqsPublisher
    from handler.domain.ledger import Ledger
    from handler.domain.policy import ActiveRecordingsLedger, Policy
    from handler.domain.schedule import Schedules
    from handler.enqueue import Enqueuer
    from handler.lifecycle.settings import LifecycleSettings
    from handler.lifecycle.tick import Lifecycle
    from handler.recorder import Recorder
    from handler.service import RecordingService


@cache
def settings() -> Settings:
    built = Settings.from_env()
    register_secrets(_secret_values(built))
    return built


def _secret_values(s: Settings) -> list[str]:
    """Every secret the configuration holds, as the log redactor must recognise it."""
    single = [v.get_secret_value() for v in (s.secret_id, s.secret_key, s.session_token) if v]
    listed = [v.get_secret_value() for v in (*s.webhook_secrets, *s.trtc_callback_keys)]
    listed += [v.get_secret_value() for v in s.gme_callback_keys]
    bare = [v.removeprefix("whsec_") for v in listed]  # the key without its prefix, too
    bare += [k.key for k in s.trtc_keys()]  # a bound TRTC key without its `SDKAPPID:`
    return single + listed + bare


@cache
def policy_provider() -> PolicyProvider:
    from handler.adapters.policy_source import PolicyProvider, source_from_setting

    s = settings()
    return PolicyProvider(source_from_setting(s.recording_policy), s.policy_cache_seconds)


def policy() -> Policy:
    """The policy in force now: re-fetched every POLICY_CACHE_SECONDS, last good kept."""
    return policy_provider().current()


@cache
def active_recordings() -> ActiveRecordingsLedger | None:
    """Running-recording counts for `max_concurrent` caps (`ACTIVE_RECORDINGS`). None when not
    configured: caps are then not enforced, and every decision that would apply one says so in
    its `notes`, which the `recording decision` log line carries."""
    from handler.adapters.active_recordings import build_active_recordings

    if settings().active_recordings == "ledger:":
        from handler.adapters.ledger_quota import LedgerActiveRecordings

        return LedgerActiveRecordings(ledger())
    return build_active_recordings(settings().active_recordings)


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
        on_throttle=gme_error,
        on_wait=pacing_wait,
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
    if enqueuer.cache_info().currsize:
        enqueuer().register_context(context)
    if gme.cache_info().currsize and hasattr(gme(), "bind_context"):
        gme().bind_context(context)


@cache
def recorder() -> Recorder:
    from handler.adapters.stores import build_persistence_layer
    from handler.recorder import Recorder

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
def lifecycle_settings() -> LifecycleSettings:
    from handler.lifecycle.settings import LifecycleSettings

    return LifecycleSettings.from_env()


@cache
def ledger() -> Ledger:
    from handler.adapters.ledgers import LedgerUrlError, build_ledger, default_ledger_url
    from handler.watched_ledger import WatchedLedger

    ls = lifecycle_settings()
    try:
        url = ls.ledger_store or default_ledger_url(settings().idempotency_store)
        built = build_ledger(url, ls.ledger_ttl_seconds)
    except LedgerUrlError as exc:
        raise ConfigError(str(exc)) from None
    return WatchedLedger(built)  # every change also reports what it did to the recording


@cache
def schedules() -> Schedules:
    from handler.domain.schedule import load_schedules

    return load_schedules(lifecycle_settings().recording_schedules)


@cache
def service() -> RecordingService:
    from handler.service import RecordingService

    return RecordingService(policy, recorder, ledger(), active_recordings())


@cache
def lifecycle() -> Lifecycle:
    from handler.lifecycle.tick import Lifecycle

    return Lifecycle(service(), recorder(), ledger(), schedules, lifecycle_settings())


@cache
def publisher() -> SqsPublisher:
    from handler.adapters.queue import SqsPublisher

    url = settings().record_queue_url
    if not url:
        raise ConfigError("RECORD_QUEUE_URL is not set")
    return SqsPublisher(url)


@cache
def enqueuer() -> Enqueuer:
    """Queue mode's once-per-event-id enqueue, with a persistence layer of its own (a layer
    keeps the first idempotency config it is used with, so it is never shared)."""
    from handler.adapters.stores import build_persistence_layer
    from handler.enqueue import Enqueuer

    s = settings()
    built = Enqueuer(
        publisher(), build_persistence_layer(s.idempotency_store), s.idempotency_expiry_seconds
    )
    if _context is not None:
        built.register_context(_context)
    return built


def reset() -> None:
    """Forget every built adapter (tests and the local runner change the environment)."""
    for fn in (
        settings,
        policy_provider,
        active_recordings,
        gme,
        recorder,
        service,
        publisher,
        enqueuer,
        lifecycle_settings,
        ledger,
        schedules,
        lifecycle,
    ):
        fn.cache_clear()
