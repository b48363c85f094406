"""Use case: recording events out, at least once, never at the recording's expense.

`publish` is a listener of the watched ledger: each recording fact becomes one event, logged
(`recording event`: what the local stack would send), then sent once to each configured sink
with a short timeout. Whatever a sink does not accept goes to the outbox, and `flush` (each
scheduler tick) sends it again until it is delivered or `NOTIFY_RETRY_SECONDS` have passed.
Nothing here raises into the caller: the recording already happened.

A sink that just failed is not tried again by this process for `PAUSE_SECONDS` (its events go
straight to the outbox), so a receiver that hangs costs one timeout, not one per event; a
successful flush lifts the pause.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

from handler.bootstrap import observability as obs
from handler.bootstrap.observability import logger
from handler.domain.outbox import Outbox, OutboxItem, Sink
from handler.domain.recording_events import RecordingChange, RecordingEvent, encode

PAUSE_SECONDS = 60.0
#: The log message of each event (the local runner's short lines show these too).
RECORDING_EVENT = "recording event"
FLUSH_BATCH = 200


class Notifier:
    def __init__(
        self,
        sinks: Sequence[Sink],
        outbox: Callable[[], Outbox],
        timeout_seconds: float = 2.0,
        retry_seconds: float = 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sinks = {s.name: s for s in sinks}
        self._outbox = outbox
        self._timeout = timeout_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._paused_until: dict[str, float] = {}

    # ------------------------------------------------------------- publish

    def publish(self, found: list[RecordingChange]) -> None:
        for change in found:
            if change.event is not None:
                self._publish(change.event)

    def _publish(self, event: RecordingEvent) -> None:
        document = event.document()  # logged as is: no parse of the body just encoded
        body = encode(document)
        logger.info(
            RECORDING_EVENT,
            extra={
                "event": document,
                "sinks": list(self.sinks) or "none (set NOTIFY_WEBHOOK_URL or NOTIFY_EVENT_BUS)",
            },
        )
        now = self._clock()
        for sink in self.sinks.values():
            if self._paused_until.get(sink.name, 0.0) > time.monotonic():
                self._keep(sink.name, event, body, now, "paused after a failed send")
                continue
            try:
                sink.send(event.id, event.type, body, self._timeout)
            except Exception as exc:  # any failure: kept for a later tick, never raised
                self._paused_until[sink.name] = time.monotonic() + PAUSE_SECONDS
                self._keep(sink.name, event, body, now, _why(exc))
                continue
            obs.count_by(obs.RECORDING_EVENT_SENT, "sink", sink.name)

    def _keep(self, sink: str, event: RecordingEvent, body: str, now: float, why: str) -> None:
        item = OutboxItem(
            event_id=event.id,
            sink=sink,
            body=body,
            created_at=now,
            next_at=now,  # due at the next tick
            expires_at=now + self._retry,
            last_error=why,
        )
        try:
            self._outbox().put(item)
        except Exception as exc:  # the store is down too: say so loudly, lose only this event
            logger.error(
                "recording event lost: not delivered and not kept",
                extra={"event_id": event.id, "sink": sink, "error": _why(exc)},
            )
            return
        obs.count_by(obs.RECORDING_EVENT_DEFERRED, "sink", sink)
        logger.warning(
            "recording event kept for a later attempt",
            extra={"event_id": event.id, "type": event.type, "sink": sink, "error": why},
        )

    # --------------------------------------------------------------- flush

    def flush(self, now: float, deadline: float) -> dict[str, int]:
        """Send what is due, until `deadline` (time.monotonic()). Returns tick counts."""
        counts: Counter[str] = Counter()
        if not self.sinks:
            return {}
        outbox = self._outbox()
        failed: set[str] = set()
        for item in outbox.due(now, FLUSH_BATCH):
            if time.monotonic() >= deadline:
                break
            sink = self.sinks.get(item.sink)
            if item.expires_at <= now:
                outbox.delete(item.event_id, item.sink)
                obs.count_by(obs.RECORDING_EVENT_EXPIRED, "sink", item.sink)
                logger.warning(
                    "recording event expired undelivered",
                    extra={"event_id": item.event_id, "sink": item.sink, "error": item.last_error},
                )
                counts["events_expired"] += 1
            elif sink is None or item.sink in failed:
                continue  # sink no longer configured (expires), or already failing this tick
            elif self._attempt(sink, item, now, deadline):
                outbox.delete(item.event_id, item.sink)
                counts["events_delivered"] += 1
            else:
                failed.add(item.sink)
                counts["events_retry_later"] += 1
        for name in set(self.sinks) - failed:
            self._paused_until.pop(name, None)
        return dict(counts)

    def _attempt(self, sink: Sink, item: OutboxItem, now: float, deadline: float) -> bool:
        timeout = max(0.1, min(self._timeout, deadline - time.monotonic()))
        event_type = _event_type(item.body)
        try:
            sink.send(item.event_id, event_type, item.body, timeout)
        except Exception as exc:
            self._outbox().put(item.failed_again(now, _why(exc)))
            return False
        obs.count_by(obs.RECORDING_EVENT_SENT, "sink", sink.name)
        return True


def _event_type(body: str) -> str:
    return RecordingEvent.model_validate_json(body).type


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
