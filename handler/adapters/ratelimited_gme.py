"""`GmeGateway` decorator that paces every GME call to the fleet-wide limit and rides out
``RequestLimitExceeded`` -- never past the Lambda's deadline.

Two layers, because they fail differently:

1. **Pacing**: before each call, a slot is reserved in the shared schedule of its (action,
   BizId) (``handler.adapters.buckets``), so all workers together stay under GME's limit and
   GME normally never has to refuse.
2. **Backoff**: should GME still answer ``RequestLimitExceeded*`` (another client of the same
   BizId, a changed quota), the call is repeated after a jittered exponential backoff, taking a
   new slot each time. Repeating is safe even for StartRecord: GME refused it before doing
   anything.

The deadline is the current Lambda context's remaining time minus ``reserve_seconds`` (kept
for the call itself and for writing the outcome). The context is read from ``context`` (a
callable) on every call rather than stored once, so a gateway built during one invocation never
waits by that invocation's clock in the next. No wait or backoff sleep ever ends after it:
when the next slot or backoff would, the call fails at once with a retryable error and the
queue brings the message back later.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from handler.adapters.buckets import SlotStore
from handler.domain.decision import RecordPlan
from handler.domain.gme import NO_TIME_LEFT, GmeError, GmeGateway, RecordStream, RunningTask

T = TypeVar("T")
THROTTLED = "RequestLimitExceeded"


class RateLimitedGme:
    """Wraps another `GmeGateway`; same interface, same errors, plus ``NO_TIME_LEFT``."""

    def __init__(
        self,
        inner: GmeGateway,
        slots: SlotStore,
        *,
        reserve_seconds: float = 1.0,
        backoff_base: float = 0.1,
        backoff_cap: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        on_throttle: Callable[[str], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
        context: Callable[[], Any] | None = None,
    ) -> None:
        self._inner = inner
        self._on_throttle = on_throttle
        self._on_wait = on_wait
        self._slots = slots
        self._reserve = reserve_seconds
        self._base = backoff_base
        self._cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._context: Callable[[], Any] = context or (lambda: None)
        #: Counters for logs and benchmarks: slots waited for, throttled answers, backoff sleeps.
        self.stats = {"waited": 0, "throttled": 0, "no_time_left": 0}

    def bind_context(self, context: Any) -> None:
        """Use this context's remaining time as the deadline from now on (None: no deadline)."""
        self._context = lambda: context

    def budget(self) -> float:
        """Seconds this call may still spend waiting."""
        remaining = getattr(self._context(), "get_remaining_time_in_millis", None)
        if remaining is None:
            return float("inf")
        return max(0.0, float(remaining()) / 1000 - self._reserve)

    def describe_task(self, biz_id: int, room_id: str) -> RunningTask | None:
        return self._call(
            "DescribeTaskInfo", biz_id, lambda: self._inner.describe_task(biz_id, room_id)
        )

    def start_record(self, biz_id: int, room_id: str, plan: RecordPlan) -> str:
        return self._call(
            "StartRecord", biz_id, lambda: self._inner.start_record(biz_id, room_id, plan)
        )

    def stop_record(self, biz_id: int, task_id: str) -> None:
        self._call("StopRecord", biz_id, lambda: self._inner.stop_record(biz_id, task_id))

    def describe_record_info(self, biz_id: int, task_id: str) -> tuple[RecordStream, ...]:
        return self._call(
            "DescribeRecordInfo", biz_id, lambda: self._inner.describe_record_info(biz_id, task_id)
        )

    def _call(self, action: str, biz_id: int, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            self._take_slot(action, biz_id)
            try:
                return call()
            except GmeError as exc:
                if not exc.code.startswith(THROTTLED):
                    raise
                self.stats["throttled"] += 1
                if self._on_throttle is not None:  # seen by operators even when absorbed here
                    self._on_throttle(exc.code)
                # Full jitter: workers throttled together do not come back together.
                delay = self._jitter() * min(self._cap, self._base * 2**attempt)
                if delay > self.budget():
                    raise  # retryable as it is; the queue retries after the deadline
                self._sleep(delay)
                attempt += 1

    def _take_slot(self, action: str, biz_id: int) -> None:
        budget = self.budget()
        # 900 s is Lambda's longest timeout: "no deadline" still needs a finite number in Lua.
        start = self._slots.reserve(f"{action}#{biz_id}", max_wait=min(budget, 900.0))
        if start is None:
            self.stats["no_time_left"] += 1
            raise GmeError(
                action,
                NO_TIME_LEFT,
                f"no {action} slot for BizId {biz_id} within the {budget:.1f} s left",
            )
        wait = start - self._clock()
        if wait > 0:
            self.stats["waited"] += 1
            if self._on_wait is not None:  # pacing that holds workers back shows as latency
                self._on_wait(wait)
            self._sleep(wait)
