"""Injected faults: the ones tests queue (``fail_next``, ``drop_next``, ...) and the ones the
chaos switch draws, turned into one plan per request.

Not locked: ``RecordingService`` owns one ``FaultQueues`` and calls it under its own lock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from emulator.chaos import Chaos

ANY_ACTION = "*"
FAULT_KINDS = ("fail", "drop", "delay", "bad_content_type")


@dataclass
class _Fault:
    action: str
    remaining: int
    code: str = ""
    message: str = ""
    seconds: float = 0.0
    after_execute: bool = True


@dataclass(frozen=True)
class FaultPlan:
    """The faults one request consumed; at most one of each kind."""

    fail: tuple[str, str] | None = None
    drop: bool = False
    drop_after_execute: bool = True
    delay: float = 0.0
    delay_after_execute: bool = True
    bad_content_type: bool = False

    def names(self) -> str | None:
        """A short label for the call log, e.g. ``"fail+delay"``."""
        parts = [
            name
            for name, active in (
                ("fail", self.fail is not None),
                ("drop", self.drop),
                ("delay", self.delay > 0),
                ("bad_content_type", self.bad_content_type),
            )
            if active
        ]
        return "+".join(parts) or None


class FaultQueues:
    """Pending faults of each kind, oldest first, for the given actions (or ``*``)."""

    def __init__(self, actions: Collection[str]) -> None:
        self._actions = actions
        self._queues: dict[str, list[_Fault]] = {kind: [] for kind in FAULT_KINDS}

    def add(self, kind: str, action: str, count: int, **details: Any) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if action != ANY_ACTION and action not in self._actions:
            raise ValueError(
                f"unknown action {action!r}; use one of {sorted(self._actions)} or '*'"
            )
        if count < 1:
            raise ValueError("count must be >= 1")
        self._queues[kind].append(_Fault(action=action, remaining=count, **details))

    def take(self, action: str, chaos: Chaos | None) -> FaultPlan:
        """Consume, for this request, the oldest pending fault of each kind that matches; with
        none pending, let the chaos switch (when on) draw one."""
        taken: dict[str, _Fault] = {}
        for kind, queue in self._queues.items():
            for fault in queue:
                if fault.action in (action, ANY_ACTION):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        queue.remove(fault)
                    taken[kind] = fault
                    break
        if not taken and chaos is not None:
            taken = _chaos_fault(chaos, action)
        fail, drop, delay = taken.get("fail"), taken.get("drop"), taken.get("delay")
        return FaultPlan(
            fail=(fail.code, fail.message) if fail else None,
            drop=drop is not None,
            drop_after_execute=drop.after_execute if drop else True,
            delay=delay.seconds if delay else 0.0,
            delay_after_execute=delay.after_execute if delay else True,
            bad_content_type="bad_content_type" in taken,
        )

    def clear(self) -> None:
        for queue in self._queues.values():
            queue.clear()


def _chaos_fault(chaos: Chaos, action: str) -> dict[str, _Fault]:
    """Turn one chaos draw into the same fault records the queued faults use."""
    kind = chaos.roll(action)
    if kind is None:
        return {}
    if kind == "drop":
        return {"drop": _Fault(action=action, remaining=0, after_execute=True)}
    if kind == "slow":
        return {"delay": _Fault(action=action, remaining=0, seconds=chaos.slow_seconds)}
    return {"fail": _Fault(action=action, remaining=0, code=kind, message=f"chaos: {kind}")}
