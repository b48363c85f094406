"""`max_concurrent` counts read from the recording ledger: fleet-wide wherever the ledger is
shared (DynamoDB deployed, SQLite locally), with nothing extra to keep in step.

The service already writes every session's state to the ledger, so `started`/`stopped` have
nothing to do; `count` reads the open sessions of a rule. Sessions still `starting` count too,
so two deliveries deciding at once are less likely to both take the last slot (the cap stays
soft: see README, Quotas).
"""

from __future__ import annotations

from handler.domain.ledger import Ledger, LedgerState

#: Entries read per state and count; a cap above this would be counted short.
SCAN_LIMIT = 10_000


class LedgerActiveRecordings:
    def __init__(self, ledger: Ledger, limit: int = SCAN_LIMIT) -> None:
        self._ledger = ledger
        self._limit = limit

    def count(self, rule: str) -> int:
        return sum(
            1
            for state in (LedgerState.STARTING, LedgerState.RECORDING)
            for entry in self._ledger.by_state(state, self._limit)
            if entry.rule == rule
        )

    def started(self, rule: str, biz_id: int, room_id: str) -> None:
        """Nothing to do: the ledger entry is the record."""

    def stopped(self, biz_id: int, room_id: str) -> None:
        """Nothing to do: the ledger entry is the record."""
