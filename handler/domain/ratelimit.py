"""The pacing rule that keeps the whole fleet under GME's per-API request limit.

GME allows 20 requests per second per API action per BizId, counted over all callers. Every
worker therefore takes a slot from one shared schedule per (action, BizId) before calling GME.
The schedule is GCRA (the generic cell rate algorithm, a token bucket expressed as one number):
the store keeps the *theoretical arrival time* ``tat`` of the next slot, and a caller reserves a
slot by moving it forward. One number per key is what lets SQLite, DynamoDB (conditional write)
and Redis (a Lua script) all update it atomically.

Reservation, not polling: a caller that must wait gets a definite slot in the future and sleeps
until it, so slots are handed out in order and the pace stays exact however late sleepers wake.
A caller that cannot wait that long (its Lambda would time out first) reserves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pace:
    """``rate`` slots per second, of which up to ``burst`` may be taken back to back.

    In any one-second window at most ``rate + burst - 1`` slots fall (``18 + 2 - 1 = 19`` with
    the defaults), which keeps the fleet under GME's 20 even when requests arrive a little
    bunched by network jitter.
    """

    rate: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.burst < 1:
            raise ValueError("burst must be >= 1")

    @property
    def interval(self) -> float:
        return 1.0 / self.rate


def reserve(tat: float, now: float, pace: Pace, max_wait: float) -> tuple[float, float] | None:
    """Reserve the next slot: ``(new_tat, slot_start)``, or None when it starts after
    ``now + max_wait``.

    ``tat`` is the stored theoretical arrival time (0 for a new key), ``now`` the caller's clock;
    both epoch seconds. The caller stores ``new_tat`` and may call GME from ``slot_start`` on.
    """
    base = max(tat, now)
    start = max(now, base - (pace.burst - 1) * pace.interval)
    if start - now > max_wait:
        return None
    return base + pace.interval, start
