"""What `make run` prints while it serves: by default one short line per event, for a person.

`LOG_FORMAT=short` (the local default): each answer of the webhook and each scheduler tick
that did something is one line — time, route, status, room, outcome, rule, task id — each
recording event the stack sends (or would send, with no sink configured) is one line, and the
log records of WARNING and above are one line each too (message and its keys, secrets masked
by the same redaction as the JSON lines). `LOG_FORMAT=json`: the Powertools JSON lines exactly
as deployed, and no summary lines. Deployed functions never read LOG_FORMAT: they always log
JSON. Local only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from handler.bootstrap.config import ConfigError
from handler.bootstrap.observability import RedactingFormatter, logger, mask_secret_values, redact
from handler.service_layer.notify import RECORDING_EVENT

FORMATS = ("short", "json")
#: Keys every JSON line carries that a person does not need on a short line.
_PLUMBING = frozenset(
    {
        "level", "location", "message", "timestamp", "service", "xray_trace_id", "cold_start",
        "function_name", "function_memory_size", "function_arn", "function_request_id",
        "correlation_id", "sampling_rate",
    }
)  # fmt: skip
_state = {"format": "json"}


class ShortFormatter(RedactingFormatter):
    """A log record as `HH:MM:SS LEVEL message key=value ...`, redacted like the JSON form."""

    def serialize(self, log: Any) -> str:
        clean = redact(log)
        if clean.get("message") == RECORDING_EVENT and isinstance(clean.get("event"), dict):
            return mask_secret_values(_event_line(clean["event"], clean.get("sinks")))
        keys = " ".join(
            f"{k}={_text(v)}"
            for k, v in clean.items()
            if k not in _PLUMBING and v not in ("", None)
        )
        line = f"{time.strftime('%H:%M:%S')} {clean.get('level', '')} {clean.get('message', '')}"
        return mask_secret_values(f"{line} {keys}".rstrip())


def _event_line(event: dict[str, Any], sinks: Any) -> str:
    """What the stack sends (or would send) for one recording change, on one line."""
    where = ", ".join(sinks) if isinstance(sinks, list) else "not sent (no NOTIFY_WEBHOOK_URL)"
    parts = [
        time.strftime("%H:%M:%S"),
        f"event {event.get('type')}",
        f"{event.get('biz_id')}/{event.get('room_id')}",
        f"session={event.get('session')}",
        f"task={event.get('task_id')}",
        f"reason={event.get('reason')}",
        f"id={event.get('id')}",
        f"-> {where}",
    ]
    return " ".join(parts)


class _ShortLevel(logging.Filter):
    """Short mode shows warnings and above, and the recording events the stack would send."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _state["format"] != "short":
            return True
        return record.levelno >= logging.WARNING or record.msg == RECORDING_EVENT


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


class _Stderr:
    """Whatever sys.stderr is when a line is written (tests swap it between commands)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def logs_to_stderr() -> None:
    """Logs go to stderr, so a command's stdout carries only its result."""
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(_Stderr())


def use_log_format(value: str | None) -> str:
    """Apply LOG_FORMAT (default short) to the logger; ConfigError for an unknown value."""
    chosen = (value or "short").strip().lower()
    if chosen not in FORMATS:
        raise ConfigError(f"LOG_FORMAT={value!r} is not one of: short (default), json")
    _state["format"] = chosen
    handler = logger.registered_handler
    if chosen == "short" and handler is not None:
        handler.setFormatter(ShortFormatter())
        handler.setLevel(logging.INFO)
        if not any(isinstance(f, _ShortLevel) for f in handler.filters):
            handler.addFilter(_ShortLevel())
    return chosen


def answer_line(method: str, path: str, result: dict[str, Any]) -> str | None:
    """The one line for a webhook answer or a scheduler tick; None in JSON mode, or for a
    health check or a tick that did nothing."""
    if _state["format"] != "short":
        return None
    stamp = time.strftime("%H:%M:%S")
    if method == "TICK":
        done = {k: v for k, v in result.items() if isinstance(v, int) and v and k != "status"}
        if not done:
            return None
        return f"{stamp} scheduler tick " + " ".join(f"{k}={v}" for k, v in done.items())
    route = path.partition("?")[0]
    if route == "/health":
        return None
    status = result.get("statusCode", 500)
    try:
        body = json.loads(result.get("body") or "{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    parts = [stamp, method, route, str(status)]
    if body.get("biz_id") is not None or body.get("room_id"):
        parts.append(f"{body.get('biz_id')}/{body.get('room_id')}")
    outcome = body.get("status") or body.get("code") or ""
    parts.append(f"{outcome} (duplicate)" if body.get("duplicate") else str(outcome))
    if body.get("rule"):
        parts.append(f"rule={body['rule']}")
    if body.get("task_id"):
        parts.append(f"task={body['task_id']}")
    why = body.get("message") if status >= 400 else body.get("reason")
    if why and (status >= 400 or outcome in ("skipped", "failed", "ignored")):
        parts.append(f"- {why}")
    return mask_secret_values(" ".join(p for p in parts if p))
