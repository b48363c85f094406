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

from handler.adapters.ledger_wrapper import LedgerWrapper
from handler.bootstrap import observability as obs
from handler.bootstrap.observability import logger
from handler.domain.ledger import Change, Ledger, LedgerEntry
from handler.domain.recording_events import ChangeKind, RecordingChange, changes

Listener = Callable[[list[RecordingChange]], None]


def count(found: list[RecordingChange]) -> None:
    """`RecordingOutcome` by rule and outcome; a change the sweep made counts as swept too."""
    for change in found:
        if change.kind is not ChangeKind.FILE:
            obs.recording_outcome(change.kind.value, change.rule)
        if change.swept:
            obs.recording_outcome("swept", change.rule)


class WatchedLedger(LedgerWrapper):
    """Delegates to the real ledger; `update` also reports what the applied change did."""

    def __init__(self, inner: Ledger, listeners: tuple[Listener, ...] = (count,)) -> None:
        super().__init__(inner)
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
        # The facts are read once per change and every listener gets its own list of them.
        # `changes` is pure: had it failed, it would have failed for each listener alike, so
        # each one's failure is logged, as when each listener read them itself.
        try:
            found = changes(old, new)
        except Exception as exc:  # the recording is what matters; its report is best effort
            for _ in self._listeners:
                logger.error("recording change not reported", extra={"error": repr(exc)[:300]})
            return
        if not found:
            return
        for listener in self._listeners:
            try:
                listener(list(found))
            except Exception as exc:
                logger.error("recording change not reported", extra={"error": repr(exc)[:300]})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # adapter extras (close, create_table, path)
