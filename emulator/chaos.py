"""Random faults at set rates, for soak and chaos tests (``GmeEmulator.chaos``).

Queued faults (``fail_next`` and friends) hit one chosen call; chaos instead gives *every*
authenticated, not-rate-limited call a chance of one fault, drawn from a seeded generator so a
failing run can be replayed. Kinds:

- ``InternalError`` and ``RequestLimitExceeded``: the call is refused with that code and does
  nothing (as GME does);
- ``drop``: the call is executed (StartRecord creates its task) and the connection is closed
  without an answer: a lost response;
- ``slow``: the call is executed and the answer held ``slow_seconds``, past a client timeout.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("InternalError", "RequestLimitExceeded", "drop", "slow")


@dataclass
class Chaos:
    rates: dict[str, float]
    seed: int = 0
    slow_seconds: float = 2.0
    actions: frozenset[str] | None = None  # None: every action
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown chaos kind(s) {sorted(unknown)}; use {list(KINDS)}")
        if any(not 0 <= rate <= 1 for rate in self.rates.values()):
            raise ValueError("each chaos rate must be between 0 and 1")
        if sum(self.rates.values()) > 1:
            raise ValueError("chaos rates must add up to at most 1")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Chaos:
        """Build from the ``/_emulator/chaos`` body; raises ValueError with the field at fault."""
        rates = doc.get("rates")
        if not isinstance(rates, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in rates.values()
        ):
            raise ValueError("rates must be an object of kind -> number")
        seed = doc.get("seed", 0)
        slow = doc.get("slow_seconds", 2.0)
        actions = doc.get("actions")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError("seed must be an integer")
        if not isinstance(slow, int | float) or isinstance(slow, bool):
            raise ValueError("slow_seconds must be a number")
        if actions is not None and not (
            isinstance(actions, list) and all(isinstance(a, str) for a in actions)
        ):
            raise ValueError("actions must be a list of action names")
        return cls(
            rates={str(k): float(v) for k, v in rates.items()},
            seed=seed,
            slow_seconds=float(slow),
            actions=_actions(actions),
        )

    def roll(self, action: str) -> str | None:
        """The fault for this call, or None. Call under the service lock (shared generator)."""
        if self.actions is not None and action not in self.actions:
            return None
        draw = self._rng.random()
        for kind in KINDS:
            draw -= self.rates.get(kind, 0.0)
            if draw < 0:
                self.counts[f"{action}:{kind}"] += 1
                return kind
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "rates": dict(self.rates),
            "seed": self.seed,
            "slow_seconds": self.slow_seconds,
            "actions": sorted(self.actions) if self.actions is not None else None,
            "counts": dict(self.counts),
        }


def _actions(actions: Iterable[str] | None) -> frozenset[str] | None:
    return None if actions is None else frozenset(actions)
