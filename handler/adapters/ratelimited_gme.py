"""`GmeGateway` decorator that paces every GME call to the fleet-wide limit and rides out
``RequestLimitExceeded`` -- never past the Lambda's deadline.

Two layers, because they fail differently:

1. **Pacing**: before each call, a slot is reserved in the shared schedule of its (action,
   credential, endpoint region) (``handler.adapters.buckets``, ``handler.domain.ratelimit``):
   GME's own limit dimension, whatever the BizId. All workers together stay under GME's limit
   and GME normally never has to refuse.
2. **Backoff**: should GME still answer ``RequestLimitExceeded*`` (another deployment or client
   using the same credentials, arrival jitter beyond the pace's tolerance, a changed quota), the
   call is repeated after a jittered exponential backoff, taking a new slot each time. Repeating
   is safe even for StartRecord: GME refused it before doing anything.

The pace slows itself where the network needs it: each call's round trip, from its slot's
start to GME's answer, is kept per action (``handler.domain.ratelimit.ArrivalSpread``), and
slots are reserved at the configured pace or, where the round trips spread by more than it
tolerates, at the slower pace that tolerates the spread (``Pace.within``). A deployment far
from GME's endpoint thus trades a few per cent of the rate for no throttled answers; one
near it keeps the whole configured rate.

A slot slept past is given up for a new one: a request sent well after its slot start could
meet the requests of later slots inside one of GME's seconds (the jitter tolerance of
``handler.domain.ratelimit.Pace``). Oversleeping may spend half the tolerance at most; the other
half is left for the network.

The deadline is the current Lambda context's remaining time minus ``reserve_seconds`` (kept
for the call itself and for writing the outcome). The context is read from ``context`` (a
callable) on every call rather than stored once, so a gateway built during one invocation never
waits by that invocation's clock in the next. No wait or backoff sleep ever ends after it:
when the next slot or backoff would, the call fails at once with a retryable error and the
queue brings the message back later.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from handler.adapters.buckets import SlotStore
from handler.domain.decision import RecordPlan
from handler.domain.gme import (
    NO_TIME_LEFT,
    GmeError,
    GmeGateway,
    RecordStream,
    RunningTask,
    is_throttled,
)
from handler.domain.ratelimit import ArrivalSpread, Pace, slot_key

T = TypeVar("T")


class RateLimitedGme:
    """Wraps another `GmeGateway`; same interface, same errors, plus ``NO_TIME_LEFT``.

    ``scope`` answers what GME counts the calls over besides the action: ``limit_scope`` of the
    credentials and endpoint ``inner`` uses now (asked per call: credentials may rotate).
    """

    def __init__(
        self,
        inner: GmeGateway,
        slots: SlotStore,
        *,
        scope: Callable[[], str],
        reserve_seconds: float = 1.0,
        backoff_base: float = 0.1,
        backoff_cap: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        on_throttle: Callable[[str], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
        on_pace: Callable[[str, float, float], None] | None = None,
        context: Callable[[], Any] | None = None,
        late_slot_seconds: float | None = None,
    ) -> None:
        self._inner = inner
        self._on_throttle = on_throttle
        self._on_wait = on_wait
        self._on_pace = on_pace
        self._slots = slots
        self._scope = scope
        self._reserve = reserve_seconds
        self._base = backoff_base
        self._cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._context: Callable[[], Any] = context or (lambda: None)
        tolerance = slots.pace.jitter_tolerance()
        default_late = tolerance / 2 if tolerance > 0 else float("inf")
        self._late = default_late if late_slot_seconds is None else late_slot_seconds
        #: Counters for logs and benchmarks: slots waited for, throttled answers, deadlines hit,
        #: slots given up because the caller woke too late for them.
        self.stats = {"waited": 0, "throttled": 0, "no_time_left": 0, "late": 0}
        self._stats_lock = threading.Lock()  # one gateway serves every thread of the process
        self._spreads: dict[str, ArrivalSpread] = {}
        #: The rate last reported to ``on_pace`` per action (none yet: the configured one).
        self._reported: dict[str, float] = {}

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1

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
        return self._call("DescribeTaskInfo", lambda: self._inner.describe_task(biz_id, room_id))

    def start_record(self, biz_id: int, room_id: str, plan: RecordPlan) -> str:
        return self._call("StartRecord", lambda: self._inner.start_record(biz_id, room_id, plan))

    def stop_record(self, biz_id: int, task_id: str) -> None:
        self._call("StopRecord", lambda: self._inner.stop_record(biz_id, task_id))

    def modify_record(self, biz_id: int, task_id: str, plan: RecordPlan) -> None:
        self._call("ModifyRecordInfo", lambda: self._inner.modify_record(biz_id, task_id, plan))

    def describe_record_info(self, biz_id: int, task_id: str) -> tuple[RecordStream, ...]:
        return self._call(
            "DescribeRecordInfo", lambda: self._inner.describe_record_info(biz_id, task_id)
        )

    def pace(self, action: str) -> Pace:
        """The pace ``action``'s next slot is reserved at: the configured one, slowed to
        tolerate the arrival jitter its recent round trips show. A change of a tenth of a slot
        a second or more, and the return to the configured rate, go to ``on_pace`` (action,
        rate, jitter), so operators see why the fleet starts fewer rooms a second."""
        configured = self._slots.pace
        with self._stats_lock:
            spread = self._spreads.get(action)
            jitter = spread.jitter() if spread is not None else 0.0
            paced = configured.within(jitter)
            last = self._reported.get(action, configured.rate)
            changed = abs(paced.rate - last) >= 0.1 or (paced is configured and last != paced.rate)
            if changed:
                self._reported[action] = paced.rate
        if changed and self._on_pace is not None:
            self._on_pace(action, paced.rate, jitter)
        return paced

    def _round_trip(self, action: str, slot_start: float) -> None:
        with self._stats_lock:
            spread = self._spreads.setdefault(action, ArrivalSpread())
            spread.add(self._clock() - slot_start)

    def _call(self, action: str, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            slot_start = self._take_slot(action)
            try:
                answer = call()
            except GmeError as exc:
                if exc.request_id:  # GME answered: a round trip all the same (not a timeout)
                    self._round_trip(action, slot_start)
                if not is_throttled(exc.code):
                    raise
                self._count("throttled")
                if self._on_throttle is not None:  # seen by operators even when absorbed here
                    self._on_throttle(exc.code)
                # Full jitter: workers throttled together do not come back together.
                delay = self._jitter() * min(self._cap, self._base * 2**attempt)
                if delay > self.budget():
                    raise  # retryable as it is; the queue retries after the deadline
                self._sleep(delay)
                attempt += 1
            else:
                self._round_trip(action, slot_start)
                return answer

    def _take_slot(self, action: str) -> float:
        """Reserve a slot and wait for it; its start (the caller's clock)."""
        while True:
            budget = self.budget()
            # 900 s is Lambda's longest timeout: "no deadline" still needs a finite number in Lua.
            start = self._slots.reserve(
                slot_key(action, self._scope()), max_wait=min(budget, 900.0), pace=self.pace(action)
            )
            if start is None:
                self._count("no_time_left")
                raise GmeError(
                    action, NO_TIME_LEFT, f"no {action} slot within the {budget:.1f} s left"
                )
            wait = start - self._clock()
            if wait <= 0:
                return start  # due now; a slow store would delay any new slot just as much
            self._count("waited")
            if self._on_wait is not None:  # pacing that holds workers back shows as latency
                self._on_wait(wait)
            self._sleep(wait)
            if self._clock() - start <= self._late:
                return start
            self._count("late")  # overslept: sent now, it could meet 20 later slots in one second
