"""Fast acknowledgement: enqueue a verified event once, however often its sender delivers it.

Senders retry when an answer is slow or lost, so one event id can arrive several times. Each
id is enqueued once within the idempotency window; later deliveries are acknowledged with the
stored answer and `"duplicate": true`. This runs under its own Powertools key prefix and its own
persistence-layer instance (a layer keeps the first config it sees), so it never shares a key
with the recorder's. The worker's idempotency still absorbs anything that slips past (another
store, an expired window): this layer saves queue traffic, it is not what makes starts unique.
"""

from __future__ import annotations

from typing import Any, Protocol

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from handler.domain.events import RoomEvent

#: Stable, so moving code never resets the key space (Powertools' default prefix would).
KEY_PREFIX = "gme-autorecord.webhook-enqueue"


class Publisher(Protocol):
    """Anything that puts an event on the worker queue; raises `QueueUnavailable` if it can't."""

    def publish(self, event: RoomEvent) -> str: ...


class Enqueuer:
    def __init__(
        self, publisher: Publisher, store: BasePersistenceLayer, expiry_seconds: int
    ) -> None:
        self._publisher = publisher
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expiry_seconds,
            response_hook=_mark_duplicate,
        )
        self._enqueue = idempotent_function(
            data_keyword_argument="delivery",
            persistence_store=store,
            config=self.config,
            key_prefix=KEY_PREFIX,
        )(self._publish)
        # Now, not on first use: see the recorder (a half-configured layer fails a racing call).
        store.configure(self.config, key_prefix=KEY_PREFIX)

    def register_context(self, context: Any) -> None:
        """A crash mid-enqueue then frees the key when the invocation's time runs out."""
        self.config.register_lambda_context(context)

    def enqueue(self, event: RoomEvent) -> dict[str, Any]:
        """Returns `{"event_id", "message_id"}` plus `"duplicate": true` for a repeat. Raises
        `QueueUnavailable` (nothing stored, so the sender's retry tries again) or Powertools'
        `IdempotencyAlreadyInProgressError` while another delivery of the id is being enqueued."""
        # Only the key goes through Powertools (which copies and hashes its data); the event
        # rides along as a plain keyword argument.
        delivery = {"key": f"{event.format.value}:{event.event_id}"}
        result: dict[str, Any] = self._enqueue(delivery=delivery, event=event)
        return result

    def _publish(self, delivery: dict[str, str], event: RoomEvent) -> dict[str, Any]:
        return {"event_id": event.event_id, "message_id": self._publisher.publish(event)}


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    if isinstance(response, dict):
        return {**response, "duplicate": True}
    return response
