"""One scheduler tick: plan what is due (`plan.py`), then hand each unit on.

Deployed (`RECORD_QUEUE_URL` set) every unit becomes a message on the record queue, sent ten
to a `SendMessageBatch`, and the worker fleet runs it under the one GME pace; the tick itself
makes no GME call. Without a queue (`make run`, tests) each unit runs here and now through the
same steps (`steps.py`), paced by the same fleet-wide pace of the app's GME gateway.

The tick has a deadline of its own, well inside its Lambda timeout: `TICK_DEADLINE_SECONDS`, and
never later than `DEADLINE_RESERVE_SECONDS` before the invocation's end. Past it, planning stops
between two units and the rest is left to the next tick, which finds it first (see `plan.py`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from handler.bootstrap.observability import logger
from handler.domain.commands import AnyCommand, Check, CommandKind
from handler.domain.gme import GmeError
from handler.domain.ledger import Ledger
from handler.domain.retry import RetryLater
from handler.service_layer.lifecycle.plan import Planner
from handler.service_layer.lifecycle.settings import LifecycleSettings
from handler.service_layer.lifecycle.steps import LifecycleSteps
from handler.service_layer.lifecycle.sweep import NOT_SWEPT, throttled

#: Failures a tick survives when it runs a unit itself: counted, logged, and the next unit runs.
TickErrors = (GmeError, RetryLater, IdempotencyAlreadyInProgressError)
#: Seconds kept between the tick's deadline and the invocation's end: room for the unit that is
#: running at the deadline (a few GME round trips) and the last `SendMessageBatch`.
DEADLINE_RESERVE_SECONDS = 10.0
#: SQS takes at most ten messages per SendMessageBatch.
QUEUE_BATCH = 10
ERROR_COUNTS = {
    CommandKind.START_WINDOW: "window_errors",
    CommandKind.END_WINDOW: "stop_errors",
    CommandKind.RENEW: "renew_errors",
    CommandKind.CHECK: "sweep_errors",
    CommandKind.FOLLOW: "follow_errors",
}


class CommandQueue(Protocol):
    def send_commands(self, commands: Sequence[tuple[str, str]]) -> int:
        """Send (kind, body) messages; returns how many were not accepted."""
        ...


class Lifecycle:
    def __init__(
        self,
        planner: Planner,
        steps: Callable[[], LifecycleSteps],
        ledger: Ledger,
        settings: LifecycleSettings,
        queue: CommandQueue | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.planner = planner
        self._steps = steps  # a factory: a tick that only enqueues never builds GME or recorder
        self.ledger = ledger
        self.settings = settings
        self.queue = queue
        self.clock = clock

    def deadline(self, context: Any = None) -> float:
        """The clock value at which planning stops."""
        budget = self.settings.tick_deadline_seconds
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None:
            budget = min(budget, max(0.0, remaining() / 1000 - DEADLINE_RESERVE_SECONDS))
        return self.clock() + budget

    def tick(self, now: datetime, context: Any = None) -> dict[str, int]:
        counts: Counter[str] = Counter()
        deadline = self.deadline(context)
        units = self.planner.plan(now, claim=self.queue is not None)
        outbox: list[tuple[str, str]] = []
        while True:
            if self.clock() >= deadline:
                counts["deadline_reached"] = 1
                logger.warning("scheduler tick deadline: the rest is left to the next tick")
                break
            command = next(units, None)
            if command is None:
                break
            if self.queue is None:
                if not self._run(command, counts):
                    break
                continue
            counts[f"planned_{command.lifecycle_command.value.replace('.', '_')}"] += 1
            outbox.append((command.lifecycle_command.value, command.body()))
            if len(outbox) == QUEUE_BATCH and not self._send(outbox, counts):
                break
        if outbox:
            self._send(outbox, counts)
        counts["purged"] += self.ledger.purge_expired(now.timestamp())
        logger.info("scheduler tick done", extra={"now": now.isoformat(), **counts})
        return dict(counts)

    def _send(self, outbox: list[tuple[str, str]], counts: Counter[str]) -> bool:
        """Send and empty the outbox. A refused send ends the tick: the units not sent are left
        to the next tick (their claims, if any, are healed by the sweep)."""
        assert self.queue is not None
        failed = self.queue.send_commands(outbox)
        outbox.clear()
        if failed:
            counts["enqueue_failed"] += failed
            logger.warning("lifecycle commands not enqueued", extra={"failed": failed})
        return not failed

    def _run(self, command: AnyCommand, counts: Counter[str]) -> bool:
        """Run one unit in-process. Returns False when GME throttled a check (the rest of the
        sweep then waits for the next tick)."""
        try:
            result = self._steps().run(command)
        except TickErrors as exc:
            if isinstance(command, Check) and throttled(exc):
                counts["sweep_throttled"] += 1
                return False
            counts[ERROR_COUNTS[command.lifecycle_command]] += 1
            logger.warning(
                "lifecycle step failed",
                extra={"command": command.command_id, "error": str(exc)},
            )
            return True
        counts[result.result] += 1
        if isinstance(command, Check) and result.result not in NOT_SWEPT:
            counts["swept"] += 1
        return True
