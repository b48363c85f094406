"""Counters of running recordings per rule, for the policy's `max_concurrent` caps.

`ACTIVE_RECORDINGS` picks one:

- unset: no counter; caps are not enforced and each affected decision says so in its notes;
- `ledger:`: open sessions of the recording ledger (fleet-wide; handled in `handler.bootstrap.app`);
- `memory:`: counts in this process only (a single local runner);
- `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`: a SQLite file shared by every
  process on one host (the local runner, a single-host deployment). Not for Lambda: each
  container would see its own `/tmp`. A fleet-wide count comes with the recording ledger.

A room is counted from the moment its recording starts (or is adopted) until its `room.closed`
arrives, and at most `max_age_seconds` (default 24 h, GME's own cap on a task's life), so a lost
close event cannot hold a slot forever.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from handler.adapters.sqlite_files import ThreadConnections
from handler.domain.policy import ActiveRecordingsLedger, InMemoryActiveRecordings

SETTING = "ACTIVE_RECORDINGS"
DEFAULT_MAX_AGE_SECONDS = 24 * 3600
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS active_recordings (biz_id INTEGER NOT NULL,"
    " room_id TEXT NOT NULL, rule TEXT NOT NULL, started_at REAL NOT NULL,"
    " PRIMARY KEY (biz_id, room_id))",
    "CREATE INDEX IF NOT EXISTS active_recordings_rule ON active_recordings (rule, started_at)",
)


class SqliteActiveRecordings:
    """One row per room with a running recording; counted per rule."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._files = ThreadConnections(path, _SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._files.get()

    def count(self, rule: str) -> int:
        since = self._clock() - self.max_age_seconds
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(*) FROM active_recordings WHERE rule = ? AND started_at >= ?",
                (rule, since),
            )
            .fetchone()
        )
        return int(row[0])

    def started(self, rule: str, biz_id: int, room_id: str) -> None:
        self._conn().execute(
            "INSERT INTO active_recordings (biz_id, room_id, rule, started_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (biz_id, room_id) DO UPDATE SET rule = excluded.rule,"
            " started_at = excluded.started_at",
            (biz_id, room_id, rule, self._clock()),
        )

    def stopped(self, biz_id: int, room_id: str) -> None:
        self._conn().execute(
            "DELETE FROM active_recordings WHERE biz_id = ? AND room_id = ?", (biz_id, room_id)
        )


def build_active_recordings(value: str | None) -> ActiveRecordingsLedger | None:
    """The counter named by `ACTIVE_RECORDINGS`; ValueError names the accepted forms."""
    if not value:
        return None
    if value == "memory:":
        return InMemoryActiveRecordings()
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return SqliteActiveRecordings(value.removeprefix("sqlite:///"))
    raise ValueError(
        f"{value!r} is not one of ledger:, memory:, sqlite:///relative/path.db, "
        "sqlite:////absolute/path.db"
    )
