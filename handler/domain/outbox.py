"""Recording events that could not be delivered yet, and the ports that deliver and keep them.

A notification must never fail or hold up a recording, so a send that fails (receiver down,
slow, refusing) is not retried on the spot: the event is kept in the outbox, next to the ledger
in the same store, and later scheduler ticks send it again until it is delivered or expires.
The body is kept exactly as first built, so every attempt carries the same id and bytes.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

#: Seconds between attempts of one item: the first retry waits for the next tick, then longer.
RETRY_BACKOFF = (0, 300, 600, 1200, 2400, 3600)


class OutboxItem(BaseModel):
    """One event for one sink (the webhook and EventBridge are retried independently)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    event_id: str
    sink: str
    body: str
    created_at: float
    next_at: float
    expires_at: float
    attempts: int = 1
    last_error: str = ""

    def failed_again(self, now: float, error: str) -> OutboxItem:
        wait = RETRY_BACKOFF[min(self.attempts, len(RETRY_BACKOFF) - 1)]
        return self.model_copy(
            update={"attempts": self.attempts + 1, "next_at": now + wait, "last_error": error}
        )


class Outbox(Protocol):
    def put(self, item: OutboxItem) -> None:
        """Keep (or replace) the item for (event_id, sink)."""
        ...

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        """Items whose next attempt is due, oldest event first."""
        ...

    def delete(self, event_id: str, sink: str) -> None: ...


class Sink(Protocol):
    """Where events go: a signed webhook, an EventBridge bus. `send` raises when the event
    was not accepted (the caller keeps it for a later attempt)."""

    name: str

    def send(self, event_id: str, event_type: str, body: str, timeout: float) -> None: ...
