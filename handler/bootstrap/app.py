"""Composition root: builds the adapters once per process (module scope, reused while warm).

Everything is built lazily on first use, so importing an entry module stays cheap and a
configuration error surfaces as one clear message on the first event rather than an import crash.

"Once" holds under concurrency too: the local server answers requests on several threads, and
two first requests racing through an unlocked cache would each build a recorder, a gateway and
a store, and keep a mix of them. Every factory is `@once`: one re-entrant lock, taken only
until the adapter exists (the warm path reads it without locking).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from handler.adapters.secrets import Refreshing
from handler.bootstrap.config import ConfigError, Settings
from handler.bootstrap.observability import (
    gme_error,
    logger,
    pace_changed,
    pacing_wait,
    register_secrets,
)

if TYPE_CHECKING:  # the policy package is loaded only where a room is decided
    from handler.adapters.policy_source import PolicyProvider
    from handler.adapters.queue import SqsPublisher
    from handler.domain.ledger import Ledger
    from handler.domain.outbox import Outbox, Sink
    from handler.domain.policy import ActiveRecordingsLedger, Policy
    from handler.domain.schedule import Schedules
    from handler.ingress.enqueue import Enqueuer
    from handler.service_layer.lifecycle.settings import LifecycleSettings
    from handler.service_layer.lifecycle.steps import LifecycleSteps
    from handler.service_layer.lifecycle.tick import Lifecycle
    from handler.service_layer.notify import Notifier
    from handler.service_layer.recorder import Recorder
    from handler.service_layer.service import RecordingService

T = TypeVar("T")

#: One lock for every factory: they call each other (the recorder builds the gateway), and a
#: single re-entrant lock cannot deadlock on that, while two threads never build in parallel.
_building = threading.RLock()


class _Once(Generic[T]):
    """A factory that runs once per process; a failure is not kept, so the next call retries."""

    _unset: Any = object()

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: Any = self._unset
        self.__name__ = factory.__name__
        self.__doc__ = factory.__doc__

    def __call__(self) -> T:
        value = self._value
        if value is self._unset:
            with _building:
                if self._value is self._unset:
                    self._value = self._factory()
                    logger.debug("adapter built", extra={"adapter": self.__name__})
                value = self._value
        return value  # type: ignore[no-any-return]

    def built(self) -> bool:
        return self._value is not self._unset

    def cache_clear(self) -> None:
        with _building:
            self._value = self._unset

    def provide(self, value: T) -> None:
        """Use ``value`` as the built adapter: the scale benchmark wires its virtual clock into
        the gateway and the service this way, and the rest of the app builds around them."""
        with _building:
            self._value = value


def once(factory: Callable[[], T]) -> _Once[T]:
    return _Once(factory)


def _read_settings() -> Settings:
    built = Settings.from_env()
    register_secrets(_secret_values(built))
    return built


def _refresh_failed(exc: Exception) -> None:
    # A ConfigError names the variable and the reference, never a value.
    logger.error(
        "secret references could not be read again; the values in use are kept",
        extra={"error": str(exc) if isinstance(exc, ConfigError) else type(exc).__name__},
    )


@once
def secret_settings() -> Refreshing[Settings]:
    """The settings, with secret references read again every `REFRESH_SECONDS` (a rotated key
    or credential is in use within 5 minutes, without a deploy or a restart)."""
    from handler.bootstrap.config import has_secret_references

    return Refreshing(_read_settings, refreshable=has_secret_references(), on_error=_refresh_failed)


def settings() -> Settings:
    """The configuration in force now (see `secret_settings`)."""
    return secret_settings().current()


def refresh_secrets() -> bool:
    """An authentication failed with the keys or credentials in use (a webhook signature, GME
    AuthFailure): read the secret references again now, at most once per refresh interval, so
    a flood of badly signed requests is one fetch. True when a value changed."""
    return secret_settings().refresh_early()


def _secret_values(s: Settings) -> list[str]:
    """Every secret the configuration holds, as the log redactor must recognise it."""
    single = [v.get_secret_value() for v in (s.secret_id, s.secret_key, s.session_token) if v]
    listed = [v.get_secret_value() for v in (*s.webhook_secrets, *s.trtc_callback_keys)]
    listed += [v.get_secret_value() for v in s.gme_callback_keys]
    if s.notify_webhook_secret is not None:
        listed.append(s.notify_webhook_secret.get_secret_value())
    bare = [v.removeprefix("whsec_") for v in listed]  # the key without its prefix, too
    bare += [k.key for k in s.trtc_keys()]  # a bound TRTC key without its `SDKAPPID:`
    return single + listed + bare


@once
def policy_provider() -> PolicyProvider:
    from handler.adapters.policy_source import PolicyProvider, source_from_setting

    s = settings()
    return PolicyProvider(source_from_setting(s.recording_policy), s.policy_cache_seconds)


def policy() -> Policy:
    """The policy in force now: re-fetched every POLICY_CACHE_SECONDS, last good kept."""
    return policy_provider().current()


@once
def active_recordings() -> ActiveRecordingsLedger | None:
    """Running-recording counts for `max_concurrent` caps (`ACTIVE_RECORDINGS`). None when not
    configured: caps are then not enforced, and every decision that would apply one says so in
    its `notes`, which the `recording decision` log line carries."""
    from handler.adapters.active_recordings import build_active_recordings

    if settings().active_recordings == "ledger:":
        from handler.adapters.ledger_quota import LedgerActiveRecordings

        return LedgerActiveRecordings(ledger())
    return build_active_recordings(settings().active_recordings)


@once
def gme() -> Any:
    """The SDK gateway, paced to GME's limit through a schedule shared by the whole fleet: the one
    gateway of every path that calls GME (worker, scheduler, operator CLI, webhook inline)."""
    from handler.adapters.gme_client import TencentGme

    s = settings()
    secret_id, secret_key, token = s.require_credentials()
    # One client (one pooled session) for the process; it takes rotated credentials from the
    # current settings before each call, and after an AuthFailure asks for them to be re-read.
    sdk = TencentGme(
        s.gme_endpoint,
        secret_id,
        secret_key,
        token,
        s.gme_timeout_seconds,
        credentials=lambda: settings().require_credentials(),
        on_auth_failure=refresh_secrets,
    )
    if not s.gme_rate_limit_per_second:
        return sdk
    from handler.adapters.buckets import build_slot_store
    from handler.adapters.gme_client import parse_endpoint
    from handler.adapters.ratelimited_gme import RateLimitedGme
    from handler.domain.ratelimit import Pace, limit_scope

    pace = Pace(s.gme_rate_limit_per_second, s.gme_rate_limit_burst)
    host = parse_endpoint(s.gme_endpoint).host
    # The reserve keeps room after any wait for one GME call (its timeout) and the outcome write.
    limited = RateLimitedGme(
        sdk,
        build_slot_store(s.idempotency_store, pace),
        # GME's own dimension: every caller with these credentials at this endpoint, any BizId
        # (the current SecretId: a rotated one is a limit of its own).
        scope=lambda: limit_scope(settings().require_credentials()[0], host),
        reserve_seconds=s.gme_timeout_seconds + 0.5,
        on_throttle=gme_error,
        on_wait=pacing_wait,
        on_pace=pace_changed,
        context=current_context,
    )
    return limited


#: The invocation being handled on this thread. Per thread because the local server runs
#: requests side by side; in Lambda one thread handles one invocation at a time.
_invocation = threading.local()


def current_context() -> Any:
    """This thread's Lambda context (None outside an invocation). The rate limiter reads its
    deadline from here on every call, so no gateway can keep an earlier invocation's."""
    return getattr(_invocation, "context", None)


def bind_context(context: Any) -> None:
    """Give the recorder this invocation's Lambda context: its in-progress locks then expire with
    the invocation, so a crashed attempt does not block retries until the record expires. The
    rate limiter takes its deadline from the same context (`current_context`)."""
    _invocation.context = context
    if context is None:
        return
    if recorder.built():
        recorder().register_context(context)
    if enqueuer.built():
        enqueuer().register_context(context)


@once
def recorder() -> Recorder:
    from handler.adapters.stores import build_persistence_layer
    from handler.service_layer.recorder import Recorder

    s = settings()
    built = Recorder(
        gme(),
        build_persistence_layer(s.idempotency_store),
        expiry_seconds=s.idempotency_expiry_seconds,
        room_not_found_grace_seconds=s.room_not_found_grace_seconds,
    )
    if current_context() is not None:
        built.register_context(current_context())
    return built


@once
def lifecycle_settings() -> LifecycleSettings:
    from handler.service_layer.lifecycle.settings import LifecycleSettings

    return LifecycleSettings.from_env()


def ledger_url() -> str:
    """LEDGER_STORE, or the ledger beside the idempotency store when it is not set."""
    from handler.adapters.ledgers import LedgerUrlError, default_ledger_url

    try:
        return lifecycle_settings().ledger_store or default_ledger_url(settings().idempotency_store)
    except LedgerUrlError as exc:
        raise ConfigError(str(exc)) from None


@once
def ledger() -> Ledger:
    from handler.adapters.ledgers import LedgerUrlError, build_ledger
    from handler.adapters.watched_ledger import WatchedLedger, count

    try:
        built = build_ledger(ledger_url(), lifecycle_settings().ledger_ttl_seconds)
    except LedgerUrlError as exc:
        raise ConfigError(str(exc)) from None
    # Every change also reports what it did to the recording: metrics, then events out.
    return WatchedLedger(built, (count, notifier().publish))


@once
def notifier() -> Notifier:
    """Recording events out: the sinks the settings name (none: logged only)."""
    from handler.service_layer.notify import Notifier

    s = settings()
    sinks: list[Sink] = []
    if s.notify_webhook_url and s.notify_webhook_secret is not None:
        from handler.adapters.notify_webhook import WebhookSink

        secret = s.notify_webhook_secret.get_secret_value()
        sinks.append(WebhookSink(s.notify_webhook_url, secret))
    if s.notify_event_bus:
        from handler.adapters.notify_eventbridge import EventBridgeSink

        sinks.append(EventBridgeSink(s.notify_event_bus, s.notify_timeout_seconds))
    return Notifier(sinks, outbox, s.notify_timeout_seconds, s.notify_retry_seconds)


@once
def outbox() -> Outbox:
    """Undelivered events, in the ledger's store: a table in its SQLite file, or items under
    their own key in its DynamoDB table."""
    url = ledger_url()
    if url.startswith("sqlite:///"):
        from handler.adapters.outbox_sqlite import SQLiteOutbox

        return SQLiteOutbox(url[len("sqlite:///") :])
    from urllib.parse import urlsplit

    from handler.adapters.outbox_dynamodb import DynamoDBOutbox

    return DynamoDBOutbox(urlsplit(url).netloc)  # the current table, never a ?fallback=


@once
def schedules() -> Schedules:
    from handler.domain.schedule import load_schedules

    return load_schedules(lifecycle_settings().recording_schedules)


@once
def service() -> RecordingService:
    from handler.service_layer.service import RecordingService

    return RecordingService(policy, recorder, ledger(), active_recordings())


@once
def lifecycle() -> Lifecycle:
    """The scheduler's tick: with RECORD_QUEUE_URL it plans and enqueues (no GME client, no
    recorder), without it it runs each unit in-process through `lifecycle_steps()`."""
    from handler.service_layer.lifecycle.plan import Planner
    from handler.service_layer.lifecycle.tick import Lifecycle

    ls = lifecycle_settings()
    queue = publisher() if settings().record_queue_url else None
    planner = Planner(ledger(), schedules, ls, policy)
    return Lifecycle(planner, lifecycle_steps, ledger(), ls, queue)


@once
def lifecycle_steps() -> LifecycleSteps:
    """Runs lifecycle commands: in the worker for queued ones, in the tick without a queue."""
    from handler.service_layer.lifecycle.steps import LifecycleSteps

    return LifecycleSteps(service(), recorder, ledger(), lifecycle_settings(), policy)


@once
def publisher() -> SqsPublisher:
    from handler.adapters.queue import SqsPublisher

    url = settings().record_queue_url
    if not url:
        raise ConfigError("RECORD_QUEUE_URL is not set")
    return SqsPublisher(url)


@once
def enqueuer() -> Enqueuer:
    """Queue mode's once-per-event-id enqueue, with a persistence layer of its own (a layer
    keeps the first idempotency config it is used with, so it is never shared)."""
    from handler.adapters.stores import build_persistence_layer
    from handler.ingress.enqueue import Enqueuer

    s = settings()
    built = Enqueuer(
        publisher(), build_persistence_layer(s.idempotency_store), s.idempotency_expiry_seconds
    )
    if current_context() is not None:
        built.register_context(current_context())
    return built


def reset() -> None:
    """Forget every built adapter (tests and the local runner change the environment)."""
    for fn in (
        secret_settings,
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
        lifecycle_steps,
        notifier,
        outbox,
    ):
        fn.cache_clear()
