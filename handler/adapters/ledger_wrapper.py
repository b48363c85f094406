"""A ledger port that hands every call to another ledger: the base of ledgers that change the
behaviour of a few calls (the watched ledger's reports, the upgrade fallback's second table)
and must pass the rest on unchanged, without each spelling out the whole port."""

from __future__ import annotations

from handler.domain.ledger import Change, Ledger, LedgerEntry, LedgerState, SessionRef


class LedgerWrapper:
    def __init__(self, inner: Ledger) -> None:
        self.inner = inner

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        return self.inner.get(biz_id, room_id, session)

    def update(self, biz_id: int, room_id: str, session: str, change: Change) -> LedgerEntry | None:
        return self.inner.update(biz_id, room_id, session, change)

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
