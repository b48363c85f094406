"""`max_concurrent` counts read from the recording ledger: fleet-wide wherever the ledger is
shared (DynamoDB deployed, SQLite locally), with nothing extra to keep in step.

The service already writes every session's state to the ledger, so `started`/`stopped` have
nothing to do; `count` asks the ledger for the rule's starting or recording sessions, which an
index keyed by rule answers without reading other rules' entries. Sessions still `starting`
count too, so two deliveries deciding at once are less likely to both take the last slot (the
cap stays soft: see docs/policy.md, Quotas).
"""

from __future__ import annotations

from handler.domain.ledger import Ledger


class LedgerActiveRecordings:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def count(self, rule: str) -> int:
        return self._ledger.count_open(rule)

    def started(self, rule: str, biz_id: int, room_id: str) -> None:
        """Nothing to do: the ledger entry is the record."""

    def stopped(self, biz_id: int, room_id: str) -> None:
        """Nothing to do: the ledger entry is the record."""
