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
    from handler.domain.ledger import Ledger
    from handler.domain.schedule import Schedules
    from handler.lifecycle.settings import LifecycleSettings
    from handler.lifecycle.tick import Lifecycle


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def policy() -> Policy:
    return load_policy(settings().recording_policy)


@cache
def gme() -> Any:
    from handler.adapters.gme_client import TencentGme

    s = settings()
    secret_id, secret_key, token = s.require_credentials()
    return TencentGme(s.gme_endpoint, secret_id, secret_key, token, s.gme_timeout_seconds)


_context: Any = None


def bind_context(context: Any) -> None:
    """Give the recorder this invocation's Lambda context: its in-progress locks then expire with
    the invocation, so a crashed attempt does not block retries until the record expires."""
    global _context
    _context = context
    if recorder.cache_info().currsize and context is not None:
        recorder().register_context(context)


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
def lifecycle_settings() -> LifecycleSettings:
    from handler.lifecycle.settings import LifecycleSettings

    return LifecycleSettings.from_env()


@cache
def ledger() -> Ledger:
    from handler.adapters.ledgers import LedgerUrlError, build_ledger, default_ledger_url

    ls = lifecycle_settings()
    try:
        url = ls.ledger_store or default_ledger_url(settings().idempotency_store)
        return build_ledger(url, ls.ledger_ttl_seconds)
    except LedgerUrlError as exc:
        raise ConfigError(str(exc)) from None


@cache
def schedules() -> Schedules:
    from handler.domain.schedule import load_schedules

    return load_schedules(lifecycle_settings().recording_schedules)


@cache
def service() -> RecordingService:
    return RecordingService(policy, recorder(), ledger())


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


def reset() -> None:
    """Forget every built adapter (tests and the local runner change the environment)."""
    for fn in (settings, policy, gme, recorder, service, publisher):
        fn.cache_clear()
    for fn in (lifecycle_settings, ledger, schedules, lifecycle):
        fn.cache_clear()
