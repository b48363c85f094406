"""Virtual time for the scale benchmark: real code on real threads, one at a time, on a clock
that jumps from one wake-up to the next.

A `VirtualClock` owns a baton. Exactly one participant thread holds it and runs; it gives the
baton up only by sleeping (`sleep`) or by waiting to be woken (`wait`), and the baton then goes
to the participant with the earliest wake-up time, the clock jumping to that time. So the CPU
time the real code spends (SQLite, pydantic, Powertools) counts as zero virtual time, and an
hour of pacing, GME round trips and queue waits passes in the seconds the code itself takes.

Nothing may block on a real lock held by a participant that is asleep: the code under test
never holds one across a GME call or a pacing wait, which is what makes this model sound.
`SimQueue` is an SQS queue in the same time: visibility timeouts, receive counts, a DLQ.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class _Baton:
    """One participant's turn. ``epoch`` moves on each time it gets the baton, which makes any
    other wake-up still queued for it stale (a timeout that lost to a wake, or the reverse)."""

    __slots__ = ("epoch", "go")

    def __init__(self) -> None:
        self.go = threading.Semaphore(0)
        self.epoch = 0


@dataclass(eq=False)
class Waiter:
    """A participant parked by `VirtualClock.wait`, until `VirtualClock.wake` (or its timeout)."""

    baton: _Baton | None = None
    epoch: int = -1


class VirtualClock:
    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int, _Baton, int]] = []
        self._seq = itertools.count()
        self._local = threading.local()
        self.failures: list[BaseException] = []

    def now(self) -> float:
        return self._now

    def enter(self) -> None:
        """Make the calling thread a participant that holds the baton now (the driver)."""
        self._local.baton = _Baton()

    def sleep(self, seconds: float) -> None:
        me: _Baton = self._local.baton
        with self._lock:
            self._push(self._now + max(0.0, seconds), me)
            nxt = self._pop()
        self._switch(me, nxt)

    def wait(self, waiter: Waiter, timeout: float | None = None) -> None:
        """Give up the baton until another participant calls ``wake(waiter)``, or until
        ``timeout`` virtual seconds have passed."""
        me: _Baton = self._local.baton
        with self._lock:
            waiter.baton, waiter.epoch = me, me.epoch
            if timeout is not None:
                self._push(self._now + max(0.0, timeout), me)
            nxt = self._pop()
        self._switch(me, nxt)

    def wake(self, waiter: Waiter) -> None:
        with self._lock:
            baton, waiter.baton = waiter.baton, None
            if baton is not None and baton.epoch == waiter.epoch:  # still parked there
                self._push(self._now, baton)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start ``fn(*args)`` on a new participant thread; it first runs when the current one
        gives up the baton. An exception ends that thread and is kept in ``failures``."""
        baton = _Baton()

        def body() -> None:
            self._local.baton = baton
            baton.go.acquire()
            try:
                fn(*args)
            except BaseException as exc:  # surfaced by the driver
                self.failures.append(exc)
            finally:
                with self._lock:
                    nxt = self._pop()
                nxt.go.release()

        threading.Thread(target=body, daemon=True).start()
        with self._lock:
            self._push(self._now, baton)

    def _push(self, at: float, baton: _Baton) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), baton, baton.epoch))

    def _pop(self) -> _Baton:
        while self._heap:
            at, _, baton, epoch = heapq.heappop(self._heap)
            if epoch != baton.epoch:
                continue  # stale: this participant was woken another way meanwhile
            baton.epoch += 1
            self._now = max(self._now, at)
            return baton
        raise RuntimeError("virtual clock: every participant waits and none will wake it")

    @staticmethod
    def _switch(me: _Baton, nxt: _Baton) -> None:
        if nxt is not me:
            nxt.go.release()
            me.go.acquire()


@dataclass
class Message:
    message_id: str
    body: str
    visible_at: float = 0.0
    receives: int = 0


class SimQueue:
    """SQS in virtual time: a received message is invisible for ``visibility_timeout`` and
    comes back unless deleted; after ``max_receives`` receives it goes to ``dlq``."""

    def __init__(self, clock: VirtualClock, visibility_timeout: float, max_receives: int) -> None:
        self.clock = clock
        self.visibility_timeout = visibility_timeout
        self.max_receives = max_receives
        self._ready: list[tuple[float, int, Message]] = []
        self._seq = itertools.count()
        self._idle: list[Waiter] = []
        self.dlq: list[Message] = []
        self.in_flight = 0

    def send(self, body: str) -> Message:
        """Enqueue ``body``, visible at once."""
        msg = Message(f"m-{next(self._seq)}", body, visible_at=self.clock.now())
        self._push(msg)
        return msg

    def send_commands(self, commands: Sequence[tuple[str, str]]) -> int:
        """What the scheduler's tick hands the queue (`SqsPublisher.send_commands`)."""
        for _, body in commands:
            self.send(body)
        return 0

    def _push(self, msg: Message) -> None:
        heapq.heappush(self._ready, (msg.visible_at, next(self._seq), msg))
        while self._idle:  # a new message: every idle receiver looks again
            self.clock.wake(self._idle.pop())

    def pending(self) -> int:
        return len(self._ready) + self.in_flight

    def receive(self, max_count: int) -> list[Message]:
        """Up to ``max_count`` visible messages; waits (virtually) until there is one."""
        while True:
            now = self.clock.now()
            batch: list[Message] = []
            while self._ready and self._ready[0][0] <= now and len(batch) < max_count:
                msg = heapq.heappop(self._ready)[2]
                msg.receives += 1
                batch.append(msg)
            if batch:
                self.in_flight += len(batch)
                return batch
            waiter = Waiter()
            self._idle.append(waiter)
            self.clock.wait(waiter, self._ready[0][0] - now if self._ready else None)
            if waiter in self._idle:
                self._idle.remove(waiter)

    def settle(self, msg: Message, ok: bool) -> None:
        """Delete a processed message, or let it come back after its visibility timeout."""
        self.in_flight -= 1
        if ok:
            return
        if msg.receives >= self.max_receives:
            self.dlq.append(msg)
            return
        msg.visible_at = self.clock.now() + self.visibility_timeout
        self._push(msg)
