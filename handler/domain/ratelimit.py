"""The pacing rule that keeps the whole fleet under GME's per-API request limit.

Tencent Cloud limits each API per **Action + access region + credentials** (the SecretId that
signs the request), counted at the arrival time at its server: 20 requests per second for each
GME recording action. Not per BizId: every app under one credential shares the same 20. Every
caller (worker, scheduler, operator CLI, webhook inline) therefore takes a slot from one shared
schedule per (action, credential, endpoint region) before calling GME; ``limit_scope`` names
the last two. The schedule is GCRA (the generic cell rate algorithm, a token bucket expressed as
one number): the store keeps the *theoretical arrival time* ``tat`` of the next slot, and a
caller reserves a slot by moving it forward. One number per key is what lets SQLite, DynamoDB
(conditional write) and Redis (a Lua script) all update it atomically.

Reservation, not polling: a caller that must wait gets a definite slot in the future and sleeps
until it, so slots are handed out in order and the pace stays exact however late sleepers wake.
A caller that cannot wait that long (its Lambda would time out first) reserves nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

#: GME's documented limit per action, region and credential.
GME_LIMIT_PER_SECOND = 20
#: The region part of a key when GME_ENDPOINT is the global host, which resolves to the nearest
#: region: deployments that share a slot store and this endpoint share one schedule.
NEAREST_REGION = "nearest"
_REGIONAL_HOST = re.compile(r"^gme\.([a-z]+-[a-z]+(?:-[a-z0-9]+)*)\.tencentcloudapi\.com$")


@dataclass(frozen=True)
class Pace:
    """``rate`` slots per second, of which up to ``burst`` may be taken back to back.

    In any one-second window of the callers' clocks at most ``rate + burst - 1`` slots start
    (19 with the defaults 19 and 1), one below GME's 20. GME counts arrivals at its server, so
    what the pace must survive is *jitter*: the spread, between requests, of the delay from a
    slot's start to its arrival (sleep overshoot, connection set-up, network, the offset between
    the callers' NTP-synchronised clocks). A 21st request lands in one GME second only if a
    request arrives late by more than ``jitter_tolerance()`` relative to the one 20 slots after
    it: ``(20 + 1 - burst) / rate - 1`` seconds, 52.6 ms with the defaults (55.6 ms at 18 + 2,
    which reaches only 18 a second). Should it happen anyway, the gateway backs off and retries.
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

    def jitter_tolerance(self, limit: int = GME_LIMIT_PER_SECOND) -> float:
        """Seconds of arrival jitter before ``limit + 1`` requests can share one second at GME
        (negative: the pace exceeds ``limit`` even when every request arrives on time)."""
        return (limit + 1 - self.burst) / self.rate - 1

    def within(self, jitter: float, limit: int = GME_LIMIT_PER_SECOND) -> Pace:
        """This pace, or a slower one where it would not tolerate ``jitter`` seconds of arrival
        spread: the rate whose ``jitter_tolerance`` is exactly ``jitter`` (same burst). Never
        faster than ``rate``: the setting is a ceiling, the jitter only lowers it. A pace set
        past ``limit`` even without jitter is a quota Tencent raised, which this rule cannot
        know: it is left as set."""
        tolerance = self.jitter_tolerance(limit)
        if jitter <= tolerance or tolerance < 0:
            return self
        return Pace((limit + 1 - self.burst) / (1 + jitter), self.burst)


#: Round trips kept per action to estimate the arrival jitter from (about 3 s of calls at 20/s).
SPREAD_WINDOW = 64
#: Headroom over the spread seen: a window of samples rarely holds both extremes of the delay.
SPREAD_MARGIN = 1.2
#: The most jitter the pace slows down for (to 20 / 1.1 = 18.2 a second): beyond it, a slow
#: answer is more likely GME's own processing time than a late arrival, and the backoff is there.
MAX_JITTER = 0.1


class ArrivalSpread:
    """How much the delay from a slot's start to GME's answer varies, over the last calls.

    GME counts a request when it arrives; the caller can only time the whole round trip: from
    the slot's start (so a late wake-up, a store write or a connection set-up after it count)
    to the answer. The spread of those round trips, highest minus lowest, bounds the spread of
    the arrivals when the answer's leg and GME's processing time are steady, and overstates it
    otherwise: the pace it asks for (``Pace.within(jitter())``) errs on the slow side. Not
    thread-safe: the gateway holds a lock around it.
    """

    def __init__(self, window: int = SPREAD_WINDOW) -> None:
        self._samples: deque[float] = deque(maxlen=window)

    def add(self, round_trip: float) -> None:
        self._samples.append(round_trip)

    def jitter(self) -> float:
        """The arrival jitter to pace for, in seconds: the spread seen with its margin, capped."""
        if not self._samples:
            return 0.0
        return min(MAX_JITTER, SPREAD_MARGIN * (max(self._samples) - min(self._samples)))


def endpoint_region(host: str) -> str:
    """The access region GME counts a request in, from the endpoint host GME_ENDPOINT names:
    ``gme.ap-guangzhou.tencentcloudapi.com`` is ``ap-guangzhou``; the global
    ``gme.tencentcloudapi.com`` resolves to the nearest region, named ``nearest``; any other
    host (the emulator, a proxy) is a limit of its own, named by the host itself."""
    host = host.strip().lower().rstrip(".")
    if host == "gme.tencentcloudapi.com":
        return NEAREST_REGION
    match = _REGIONAL_HOST.match(host)
    return match.group(1) if match else host


def credential_tag(secret_id: str) -> str:
    """The SecretId as it appears in a slot key: the first 16 hex digits of its SHA-256. The
    SecretId is an identifier, not the secret, but it is still kept out of stores and logs."""
    return hashlib.sha256(secret_id.encode("utf-8")).hexdigest()[:16]


def limit_scope(secret_id: str, host: str) -> str:
    """What one of GME's limits is counted over besides the action: credential and region."""
    return f"{credential_tag(secret_id)}#{endpoint_region(host)}"


def slot_key(action: str, scope: str) -> str:
    """The schedule a call of ``action`` takes its slot from: ``<action>#<tag>#<region>``."""
    return f"{action}#{scope}"


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


def reserve_each(
    tat: float, now: float, asks: Sequence[tuple[Pace, float]]
) -> tuple[float, list[float | None]]:
    """Slots for several callers at once, as if each had reserved in turn, each ``(pace,
    max_wait)``: the new ``tat`` and each caller's slot start, None for one whose slot would
    start after its own ``max_wait`` (it reserves nothing: the next caller gets that slot). One
    store write then takes them all.
    """
    starts: list[float | None] = []
    for pace, max_wait in asks:
        got = reserve(tat, now, pace, max_wait)
        if got is not None:
            tat = got[0]
        starts.append(None if got is None else got[1])
    return tat, starts
