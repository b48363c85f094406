"""Ports for concurrency caps (`max_concurrent`): how many recordings a rule has running.

The engine only reads (`ActiveRecordings.count`), which keeps deciding pure given the counts.
The service also writes (`ActiveRecordingsLedger.started` / `stopped`) when a recording starts or
its room closes. Adapters live in `handler.adapters.active_recordings`.
"""

from __future__ import annotations

from typing import Protocol


class ActiveRecordings(Protocol):
    """How many recordings a rule has running now."""

    def count(self, rule: str) -> int: ...


class ActiveRecordingsLedger(ActiveRecordings, Protocol):
    """Counts kept up to date by the service: one entry per room with a running recording."""

    def started(self, rule: str, biz_id: int, room_id: str) -> None: ...

    def stopped(self, biz_id: int, room_id: str) -> None: ...


class InMemoryActiveRecordings:
    """Counts kept in this process: tests, `explain --active` and single-process runs. `counts`
    seeds recordings started elsewhere (they are never stopped by this object)."""

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self._seeded = dict(counts or {})
        self._rooms: dict[tuple[int, str], str] = {}

    def count(self, rule: str) -> int:
        return self._seeded.get(rule, 0) + sum(1 for r in self._rooms.values() if r == rule)

    def started(self, rule: str, biz_id: int, room_id: str) -> None:
        self._rooms[(biz_id, room_id)] = rule

    def stopped(self, biz_id: int, room_id: str) -> None:
        self._rooms.pop((biz_id, room_id), None)
