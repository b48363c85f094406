"""The ledger port, watched: every applied change is read for the recording facts it made true
(`handler.domain.recording_events`), which are counted and handed on (events out).

Wrapping the port, rather than calling out from each use case, means every path that changes a
session (room events, callbacks, windows, renewals, the sweep, operator commands) reports the
same way without knowing it, and a change that changes nothing (a replayed duplicate) reports
nothing. Reporting never fails the change: the ledger write is done by then, and a metric or a
notification that cannot be made is logged, not raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handler import observability as obs
from handler.domain.ledger import Change, Ledger, LedgerEntry, LedgerState, SessionRef
from handler.domain.recording_events import ChangeKind, RecordingChange, changes
from handler.observability import logger

Listener = Callable[[list[RecordingChange]], None]


def count(found: list[RecordingChange]) -> None:
    """`RecordingOutcome` by rule and outcome; a change the sweep made counts as swept too."""
    for change in found:
        if change.kind is not ChangeKind.FILE:
            obs.recording_outcome(change.kind.value, change.rule)
        if change.swept:
            obs.recording_outcome("swept", change.rule)


class WatchedLedger:
    """Delegates to the real ledger; `update` also reports what the applied change did."""

    def __init__(self, inner: Ledger, listeners: tuple[Listener, ...] = (count,)) -> None:
        self.inner = inner
        self._listeners = listeners

    def update(self, biz_id: int, room_id: str, session: str, change: Change) -> LedgerEntry | None:
        applied: list[tuple[LedgerEntry | None, LedgerEntry | None]] = []

        def watched(entry: LedgerEntry | None) -> LedgerEntry | None:
            result = change(entry)
            applied[:] = [(entry, result)]  # an adapter may retry a change: the last one holds
            return result

        stored = self.inner.update(biz_id, room_id, session, watched)
        if applied and (new := applied[0][1]) is not None:
            self._report(applied[0][0], new)
        return stored

    def _report(self, old: LedgerEntry | None, new: LedgerEntry) -> None:
        for listener in self._listeners:
            try:
                found = changes(old, new)
                if found:
                    listener(found)
            except Exception as exc:  # the recording is what matters; its report is best effort
                logger.error("recording change not reported", extra={"error": repr(exc)[:300]})

    # The rest of the port, as is.

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        return self.inner.get(biz_id, room_id, session)

    def by_room(self, biz_id: int, room_id: str, limit: int = 100) -> list[LedgerEntry]:
        return self.inner.by_room(biz_id, room_id, limit)

    def newest_session(self, biz_id: int, room_id: str, prefix: str) -> LedgerEntry | None:
        return self.inner.newest_session(biz_id, room_id, prefix)

    def open_sessions(self, biz_id: int, room_id: str, limit: int = 20) -> list[SessionRef]:
        return self.inner.open_sessions(biz_id, room_id, limit)

    def task_sessions(self, biz_id: int, task_id: str, limit: int = 10) -> list[SessionRef]:
        return self.inner.task_sessions(biz_id, task_id, limit)

    def by_state(self, state: LedgerState | None = None, limit: int = 1000) -> list[LedgerEntry]:
        return self.inner.by_state(state, limit)

    def count_open(self, rule: str) -> int:
        return self.inner.count_open(rule)

    def rule_page(
        self, rule: str, limit: int, after: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        return self.inner.rule_page(rule, limit, after)

    def nearing_cap(self, started_before: float, limit: int) -> list[LedgerEntry]:
        return self.inner.nearing_cap(started_before, limit)

    def ending(self, now: float, limit: int) -> list[LedgerEntry]:
        return self.inner.ending(now, limit)

    def due_for_check(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        return self.inner.due_for_check(checked_before, limit)

    def purge_expired(self, now: float) -> int:
        return self.inner.purge_expired(now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # adapter extras (close, create_table, path)
