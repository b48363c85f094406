"""Logs, metrics and traces for every entry point, kept in one module so domain code stays pure.

- Logger: Powertools JSON lines. A formatter masks signature/authorization headers and every
  secret value the configuration resolved, wherever they appear in a line (message, extra keys,
  exception text), because a log line is the easiest place for a key to leak.
- Metrics: CloudWatch EMF, namespace ``GmeAutorecord``, only low-cardinality names and dimensions
  (an outcome status, a GME error code, a rejection reason), so the bill and the dashboards stay
  small. Nothing here names a room or a BizId: those belong in logs.
- Tracer: X-Ray subsegments around the policy, the recorder and GME calls, but only when tracing
  is on. The X-Ray SDK costs about 0.35 s of import and patching at cold start, so it is imported
  on first use and never when ``POWERTOOLS_TRACE_DISABLED`` is true or outside Lambda.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

SERVICE = "gme-autorecord"
NAMESPACE = "GmeAutorecord"
MASK = "***"

#: Header and field names whose values are credentials or signatures, compared lower-case.
SENSITIVE_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "webhook-signature",
        "sign",
        "signature",
        "x-tc-authorization",
    }
)
#: Any name containing one of these is masked too (secret_key, session_token, password, ...).
SENSITIVE_PARTS = ("secret", "signature", "password", "token", "credential", "authorization")

# Metric names (docs/operations.md, "Observability"). Counts only; one datapoint per outcome.
RECORDING_STARTED = "RecordingStarted"
RECORDING_ADOPTED = "RecordingAdopted"
DUPLICATE_SUPPRESSED = "DuplicateSuppressed"
POLICY_SKIPPED = "PolicySkipped"
GME_ERROR = "GmeError"  # dimension: code
THROTTLED = "Throttled"
WEBHOOK_REJECTED = "WebhookRejected"  # dimension: reason
# The webhook answered 5xx for a fault of ours (a crash: 500; a setting it cannot use: 503). The
# resolver turns both into answers, so Lambda's own Errors metric never sees them. Dimension:
# function_name, so each stage's alarm watches its own webhook.
WEBHOOK_FAILED = "WebhookFailed"
PACING_WAIT = "GmePacingWait"  # milliseconds a GME call waited for its fleet-wide slot
# Milliseconds from a room event's `time` to GME's answer to the StartRecord it caused: new
# starts only (not duplicates, adoptions or scheduled windows). The p99 alarm watches it.
TIME_TO_RECORD = "TimeToRecord"
# One datapoint per fact the ledger recorded (started, adopted, skipped, failed, stopped,
# renewed, modified, swept), dimensions `rule` and `outcome`: rules are bounded by the policy.
RECORDING_OUTCOME = "RecordingOutcome"
COLD_START = "ColdStart"  # Powertools' own, inside Lambda (dimension function_name)
# Recording events out (docs/notifications.md), dimension `sink` (webhook, eventbridge):
# accepted by the sink, kept in the outbox after a failed send, dropped undelivered at expiry.
RECORDING_EVENT_SENT = "RecordingEventSent"
RECORDING_EVENT_DEFERRED = "RecordingEventDeferred"
RECORDING_EVENT_EXPIRED = "RecordingEventExpired"

#: Every metric name this code emits (the dashboard and the tests hold themselves to it).
METRIC_NAMES = frozenset(
    {
        RECORDING_STARTED,
        RECORDING_ADOPTED,
        DUPLICATE_SUPPRESSED,
        POLICY_SKIPPED,
        GME_ERROR,
        THROTTLED,
        WEBHOOK_REJECTED,
        WEBHOOK_FAILED,
        PACING_WAIT,
        TIME_TO_RECORD,
        RECORDING_OUTCOME,
        COLD_START,
        RECORDING_EVENT_SENT,
        RECORDING_EVENT_DEFERRED,
        RECORDING_EVENT_EXPIRED,
    }
)
#: The dimensions each metric carries besides `service` (none when not listed).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    GME_ERROR: ("code",),
    WEBHOOK_REJECTED: ("reason",),
    WEBHOOK_FAILED: ("function_name",),
    RECORDING_OUTCOME: ("rule", "outcome"),
    COLD_START: ("function_name",),
    RECORDING_EVENT_SENT: ("sink",),
    RECORDING_EVENT_DEFERRED: ("sink",),
    RECORDING_EVENT_EXPIRED: ("sink",),
}

#: Every form a registered secret can take in a serialized line: as is, and JSON-escaped.
_secret_forms: set[str] = set()


@functools.lru_cache(maxsize=4096)  # a line's keys are nearly always the same few names
def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return lowered in SENSITIVE_NAMES or any(part in lowered for part in SENSITIVE_PARTS)


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values so no log line can carry them. Very short values are ignored:
    masking every "1" in every line would hide more than it protects."""
    for value in values:
        if value and len(value) >= 6:
            _secret_forms.update((value, json.dumps(value)[1:-1]))


_SCALARS = (str, int, float, type(None))


def redact(value: Any) -> Any:
    """Mask sensitive keys at any depth (headers, extras, nested events). Runs on every log
    line, so the common cases (scalars, plain dicts) are tested first."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict | Mapping):
        return {
            k: (MASK if isinstance(k, str) and v and is_sensitive(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def mask_secret_values(text: str) -> str:
    for form in _secret_forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with sensitive keys and known secret values masked."""

    def serialize(self, log: Any) -> str:
        return mask_secret_values(super().serialize(redact(log)))


logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# A handler that emitted no metric (a health check, a scheduler tick) is normal, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

F = TypeVar("F", bound=Callable[..., Any])


def log_metrics(handler: F) -> F:
    """Flush this invocation's metrics as EMF; the cold-start metric only inside Lambda (where
    the runtime sets AWS_LAMBDA_FUNCTION_NAME), so a local run's stdout stays the result alone."""
    in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    return cast(F, metrics.log_metrics(handler, capture_cold_start_metric=in_lambda))


#: The worker handles a batch's records on several threads: Powertools' metric set is a plain
#: dict (a first value of a name can be lost to a race) and an EMF line is printed in two writes.
_metrics_lock = threading.Lock()


def _add(name: str, unit: MetricUnit, value: float) -> None:
    with _metrics_lock:
        metrics.add_metric(name=name, unit=unit, value=value)


def count(name: str) -> None:
    _add(name, MetricUnit.Count, 1)


def count_by(name: str, dimension: str, value: str) -> None:
    _alone(name, MetricUnit.Count, 1, {dimension: value})


#: Each thread's metric set for `_alone`, emptied before each use: building a new one for
#: every datapoint cost as much as the rest of it (the provider lists every unit anew).
_single = threading.local()


def _single_metric_set() -> EphemeralMetrics:
    one: EphemeralMetrics | None = getattr(_single, "metrics", None)
    if one is None:
        one = _single.metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    else:
        one.clear_metrics()
    return one


def _alone(name: str, unit: MetricUnit, value: float, dimensions: Mapping[str, str]) -> None:
    """One datapoint with its own dimensions, flushed at once so they cannot leak onto others."""
    one = _single_metric_set()
    one.add_dimension(name="service", value=SERVICE)
    for dimension, label in dimensions.items():
        one.add_dimension(name=dimension, value=label[:100] or "unknown")
    one.add_metric(name=name, unit=unit, value=value)
    if is_metrics_disabled():
        return
    # What flush_metrics prints, as one write: print's two writes (line, then newline) could be
    # split by a log line from another of the batch's threads.
    line = json.dumps(one.serialize_metric_set(), separators=(",", ":")) + "\n"
    with _metrics_lock:
        sys.stdout.write(line)


def recording_outcome(outcome: str, rule: str) -> None:
    """A fact the ledger recorded, by the rule that decided the session. Rule names come from
    the policy (a bounded set), never from a room, so the dimension stays small."""
    _alone(RECORDING_OUTCOME, MetricUnit.Count, 1, {"rule": rule, "outcome": outcome})


def time_to_record(seconds: float) -> None:
    """From the room event's `time` to GME's StartRecord answer: what a player waits before
    the recording runs. A sender clock ahead of ours would make it negative: counted as 0.
    Added to the invocation's own metrics, like the pacing wait."""
    _add(TIME_TO_RECORD, MetricUnit.Milliseconds, round(max(seconds, 0) * 1000, 1))


def gme_error(code: str) -> None:
    from handler.domain.gme import is_throttled

    count_by(GME_ERROR, "code", code)
    if is_throttled(code):
        count(THROTTLED)


def pacing_wait(seconds: float) -> None:
    """How long a GME call waited for its fleet-wide slot: steady waits mean the fleet asks
    for more than GME's limit, and the queue's age will grow. Added to the invocation's own
    metrics (one EMF line per invocation, every wait a value in it), not flushed per call."""
    _add(PACING_WAIT, MetricUnit.Milliseconds, round(seconds * 1000, 1))


def pace_changed(action: str, rate: float, jitter: float) -> None:
    """The fleet-wide pace of one GME action moved for the arrival jitter this worker sees
    (``handler.adapters.ratelimited_gme``): fewer starts a second, by design, not a fault."""
    logger.info(
        "GME pace changed for arrival jitter",
        extra={
            "action": action,
            "rate_per_second": round(rate, 2),
            "jitter_ms": round(jitter * 1000, 1),
        },
    )


def webhook_failed() -> None:
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "local"
    _alone(WEBHOOK_FAILED, MetricUnit.Count, 1, {"function_name": function})


def webhook_rejected(reason: str) -> None:
    count_by(WEBHOOK_REJECTED, "reason", reason)


# --- tracing -----------------------------------------------------------------------------------


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    disabled = resolve_truthy_env_var_choice(env=env.get("POWERTOOLS_TRACE_DISABLED", "false"))
    return not disabled and bool(env.get("LAMBDA_TASK_ROOT")) and not env.get("AWS_SAM_LOCAL")


@functools.cache
def _tracer() -> Any:
    """The Powertools Tracer, built (and the X-Ray SDK imported) on first use only. Without the
    SDK (a zip built without EXTRAS=xray) there is none: the settings then refuse to load and
    name the fix, instead of every invocation failing on an import."""
    if not tracing_enabled():
        return None
    import importlib.util  # here, not at import: the scheduler's import is kept minimal

    if importlib.util.find_spec("aws_xray_sdk") is None:
        return None
    from aws_lambda_powertools import Tracer

    # botocore: DynamoDB, SQS and SSM calls; requests: the GME SDK's HTTP calls.
    return Tracer(service=SERVICE, patch_modules=("botocore", "requests"))


def subsegment(name: str) -> AbstractContextManager[Any]:
    """An X-Ray subsegment when tracing is on, else nothing at all."""
    tracer = _tracer()
    return tracer.provider.in_subsegment(name) if tracer is not None else nullcontext()


def trace_handler(handler: F) -> F:
    """Tracer.capture_lambda_handler, applied lazily on the first traced invocation."""
    traced: list[Callable[..., Any]] = []

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        tracer = _tracer()
        if tracer is None:
            return handler(event, context)
        if not traced:
            traced.append(tracer.capture_lambda_handler(handler, capture_response=False))
        return traced[0](event, context)

    return wrapper  # type: ignore[return-value]
