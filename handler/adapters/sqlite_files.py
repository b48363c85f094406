"""One way to open the project's SQLite files, shared by every SQLite adapter (idempotency
records, rate-limit schedules, the ledger, quota counters).

Each thread, and each process, gets its own connection: a connection inherited through `fork`
must never be reused. Autocommit (no implicit transaction holds a lock between calls), a busy
timeout so writers queue instead of failing, WAL so readers never block the single writer, and
`synchronous=NORMAL`, the documented WAL setting (durable across process crashes, one fsync less).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

BUSY_TIMEOUT_MS = 5000


class ThreadConnections:
    """Per-thread, per-process connections to one file, the schema created on first use."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: Sequence[str] = (),
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        self.path = Path(path)
        self._schema = tuple(schema)
        self._busy_ms = busy_timeout_ms
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_ms)}")
            enable_wal(conn, self._busy_ms)
            conn.execute("PRAGMA synchronous = NORMAL")
            for statement in self._schema:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Close the calling thread's connection (other threads keep theirs)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None


def enable_wal(conn: sqlite3.Connection, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Switch the file to WAL, retrying: the switch fails at once with "database is locked",
    ignoring busy_timeout, while another process is creating or switching the same file."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005 + random.random() * 0.02)
