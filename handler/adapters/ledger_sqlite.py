"""Recording ledger in one SQLite file (embedded default; local runs, tests, single hosts).

The whole entry is stored as JSON beside the columns the queries need. `update` is a
read-modify-write inside `BEGIN IMMEDIATE`, which takes the file's write lock before reading,
so concurrent threads and processes (WAL, busy_timeout) apply their changes one after another
and each sees the previous one: a close and a start racing on one session cannot both miss.
Terminal entries get an `expires_at` (TTL); open ones never expire; `purge_expired` deletes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from handler.adapters.sqlite_files import ThreadConnections
from handler.domain.ledger import (
    COUNTED_STATES,
    OPEN_STATES,
    Change,
    LedgerEntry,
    LedgerState,
    SessionRef,
    sweepable,
)

BUSY_TIMEOUT_MS = 10_000
# The partial indexes' conditions, written out with literal states: SQLite uses a partial
# index only for a query whose WHERE contains the same terms (parameters would not match).
_OPEN_LIST = ", ".join(f"'{s.value}'" for s in OPEN_STATES)
_IS_OPEN = f"closed_at IS NULL AND state != '{LedgerState.SKIPPED.value}'"
_IS_DUE = f"(state IN ({_OPEN_LIST}) OR (state = '{LedgerState.FAILED.value}' AND retryable = 1))"
_ENDS = "closed_at IS NULL AND ends_at IS NOT NULL"
_COLUMNS = (
    "biz_id, room_id, session, state, task_id, task_started_at, ends_at, closed_at,"
    " checked_at, retryable, created_at, updated_at, expires_at, doc"
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger (biz_id INTEGER NOT NULL, room_id TEXT NOT NULL,"
    " session TEXT NOT NULL, state TEXT NOT NULL, task_id TEXT, task_started_at REAL,"
    " ends_at REAL, closed_at REAL, checked_at REAL NOT NULL, retryable INTEGER NOT NULL,"
    " created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at INTEGER, doc TEXT NOT NULL,"
    " PRIMARY KEY (biz_id, room_id, session))",
    "CREATE INDEX IF NOT EXISTS ledger_state ON ledger (state, checked_at)",
    "CREATE INDEX IF NOT EXISTS ledger_expires ON ledger (expires_at)",
    # On the document itself, so files written before the index existed need no migration.
    "CREATE INDEX IF NOT EXISTS ledger_rule ON ledger (json_extract(doc, '$.rule'), state)",
    # What one event needs, without reading the room's other sessions (added to old files as
    # they are opened: CREATE INDEX IF NOT EXISTS fills them from the rows already there).
    f"CREATE INDEX IF NOT EXISTS ledger_open_room ON ledger (biz_id, room_id, created_at)"
    f" WHERE {_IS_OPEN}",
    "CREATE INDEX IF NOT EXISTS ledger_task ON ledger (task_id, biz_id) WHERE task_id IS NOT NULL",
    # Partial: only what the sweep may act on, so permanent failures are never read by it.
    f"CREATE INDEX IF NOT EXISTS ledger_due ON ledger (checked_at) WHERE {_IS_DUE}",
    "CREATE INDEX IF NOT EXISTS ledger_started ON ledger (state, task_started_at)",
    f"CREATE INDEX IF NOT EXISTS ledger_ends ON ledger (ends_at) WHERE {_ENDS}",
)
# An upsert, not INSERT OR REPLACE: REPLACE deletes the row and inserts it again, which rewrites
# every index twice on each update (measured: 20 % of an update's time).
_UPSERT = (  # built from the constant column list only; values travel as parameters
    f"INSERT INTO ledger ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
    " ON CONFLICT (biz_id, room_id, session) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.replace(" ", "").split(",")[3:])
)
_COUNTED = tuple(s.value for s in COUNTED_STATES)
_COUNT_OPEN = (  # placeholders only; the rule and states travel as parameters
    "SELECT COUNT(*) FROM ledger WHERE json_extract(doc, '$.rule') = ?"  # noqa: S608
    f" AND state IN ({', '.join('?' for _ in _COUNTED)})"
)

_RULE_PAGE = (  # the rule's counted entries in key order, from a key on
    "json_extract(doc, '$.rule') = ?"
    f" AND state IN ({', '.join('?' for _ in _COUNTED)})"
    " AND (biz_id, room_id, session) > (?, ?, ?) ORDER BY biz_id, room_id, session LIMIT ?"
)


def expiry(entry: LedgerEntry, ttl_seconds: int) -> int | None:
    """Open (or retryable) entries never expire: the sweep still needs them."""
    return None if sweepable(entry) else int(entry.updated_at + ttl_seconds)


class SQLiteLedger:
    def __init__(self, path: str | os.PathLike[str], ttl_seconds: int = 30 * 86400) -> None:
        self.path = Path(path)
        self.ttl_seconds = ttl_seconds
        self._files = ThreadConnections(path, _SCHEMA, busy_timeout_ms=BUSY_TIMEOUT_MS)

    def _conn(self) -> sqlite3.Connection:
        return self._files.get()

    def close(self) -> None:
        self._files.close()

    # ----------------------------------------------------------------- port

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        return _read(self._conn(), biz_id, room_id, session)

    def update(self, biz_id: int, room_id: str, session: str, change: Change) -> LedgerEntry | None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = _read(conn, biz_id, room_id, session)
            updated = change(current)
            if updated is not None:
                self._write(conn, updated)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return updated if updated is not None else current

    def _write(self, conn: sqlite3.Connection, e: LedgerEntry) -> None:
        conn.execute(
            _UPSERT,
            (
                e.biz_id,
                e.room_id,
                e.session,
                e.state.value,
                e.task_id,
                e.task_started_at,
                e.ends_at,
                e.closed_at,
                e.checked_at,
                int(e.retryable),
                e.created_at,
                e.updated_at,
                expiry(e, self.ttl_seconds),
                e.model_dump_json(),
            ),
        )

    def _select(self, where: str, params: tuple[object, ...], index: str = "") -> list[LedgerEntry]:
        # `where` is always one of the constant clauses below; values travel as parameters.
        # `index` pins the partial index a clause was written for (the planner may not know
        # it is the cheaper one while the file is small).
        pinned = f" INDEXED BY {index}" if index else ""
        sql = f"SELECT doc FROM ledger{pinned} WHERE {where}"  # noqa: S608
        rows = self._conn().execute(sql, params).fetchall()
        return [LedgerEntry.model_validate_json(r[0]) for r in rows]

    def count_open(self, rule: str) -> int:
        row = self._conn().execute(_COUNT_OPEN, (rule, *_COUNTED)).fetchone()
        return int(row[0])

    def rule_page(
        self, rule: str, limit: int, after: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        start = json.loads(after) if after else [0, "", ""]
        found = self._select(_RULE_PAGE, (rule, *_COUNTED, *start, limit))
        if len(found) < limit:
            return found, None
        last = found[-1]
        return found, json.dumps([last.biz_id, last.room_id, last.session])

    def by_room(self, biz_id: int, room_id: str, limit: int = 100) -> list[LedgerEntry]:
        return self._select(
            "biz_id = ? AND room_id = ? ORDER BY created_at LIMIT ?", (biz_id, room_id, limit)
        )

    def newest_session(self, biz_id: int, room_id: str, prefix: str) -> LedgerEntry | None:
        found = self._select(  # a range of the primary key: one row read
            "biz_id = ? AND room_id = ? AND session >= ? AND session < ?"
            " ORDER BY session DESC LIMIT 1",
            (biz_id, room_id, prefix, prefix + "\U0010ffff"),
        )
        return found[0] if found else None

    def open_sessions(self, biz_id: int, room_id: str, limit: int = 20) -> list[SessionRef]:
        rows = (
            self._conn()
            .execute(
                "SELECT session, created_at FROM ledger INDEXED BY ledger_open_room"  # noqa: S608
                f" WHERE biz_id = ? AND room_id = ? AND {_IS_OPEN}"
                " ORDER BY created_at DESC LIMIT ?",
                (biz_id, room_id, limit),
            )
            .fetchall()
        )
        return [
            SessionRef(biz_id=biz_id, room_id=room_id, session=s, created_at=c) for s, c in rows
        ]

    def task_sessions(self, biz_id: int, task_id: str, limit: int = 10) -> list[SessionRef]:
        rows = (
            self._conn()
            .execute(
                "SELECT room_id, session, created_at, closed_at FROM ledger INDEXED BY ledger_task"
                " WHERE task_id = ? AND biz_id = ? ORDER BY created_at DESC LIMIT ?",
                (task_id, biz_id, limit),
            )
            .fetchall()
        )
        return [
            SessionRef(biz_id=biz_id, room_id=r, session=s, created_at=c, closed=z is not None)
            for r, s, c, z in rows
        ]

    def by_state(self, state: LedgerState | None = None, limit: int = 1000) -> list[LedgerEntry]:
        if state is None:
            return self._select("1 ORDER BY updated_at DESC LIMIT ?", (limit,))
        return self._select("state = ? ORDER BY updated_at DESC LIMIT ?", (state.value, limit))

    def nearing_cap(self, started_before: float, limit: int) -> list[LedgerEntry]:
        return self._select(
            "state = ? AND task_started_at IS NOT NULL AND task_started_at <= ?"
            " ORDER BY task_started_at LIMIT ?",
            (LedgerState.RECORDING.value, started_before, limit),
        )

    def ending(self, now: float, limit: int) -> list[LedgerEntry]:
        return self._select(
            f"{_ENDS} AND state IN ({_OPEN_LIST}) AND ends_at <= ? ORDER BY ends_at LIMIT ?",
            (now, limit),
            "ledger_ends",
        )

    def due_for_check(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        return self._select(
            f"{_IS_DUE} AND checked_at <= ? ORDER BY checked_at LIMIT ?",
            (checked_before, limit),
            "ledger_due",
        )

    def purge_expired(self, now: float) -> int:
        cursor = self._conn().execute(
            "DELETE FROM ledger WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
        )
        return cursor.rowcount


def _read(conn: sqlite3.Connection, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
    row = conn.execute(
        "SELECT doc FROM ledger WHERE biz_id = ? AND room_id = ? AND session = ?",
        (biz_id, room_id, session),
    ).fetchone()
    return LedgerEntry.model_validate_json(row[0]) if row else None
