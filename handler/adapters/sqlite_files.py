"""One way to open the project's SQLite files, shared by every SQLite adapter (idempotency
records, rate-limit schedules, the ledger, quota counters).

Each thread, and each process, gets its own connection to a file, which every adapter on that
file shares (the idempotency records and the pace's schedules are one file); a connection
inherited through `fork` is never reused. Autocommit (no implicit transaction holds a lock
between calls), a busy timeout so writers queue instead of failing, WAL so readers never block
the single writer, and `synchronous=NORMAL`, the documented WAL setting (durable across process
crashes, one fsync less).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

BUSY_TIMEOUT_MS = 5000


class _Held:
    """One thread's connection to one file, and the schemas already created through it."""

    __slots__ = ("__weakref__", "applied", "closed", "conn", "pid")

    def __init__(self, conn: sqlite3.Connection, pid: int) -> None:
        self.conn, self.pid, self.closed = conn, pid, False
        self.applied: set[tuple[str, ...]] = set()


#: Each thread's connections, by (file, busy timeout): every adapter on the same file in the
#: same thread uses the one connection. Two connections to one file each drop their page cache
#: whenever the other writes (the idempotency records and the pace's schedules share a file,
#: and a new room writes both in turn), so sharing saves re-reading pages on every write.
#: Statements of one thread never interleave: each adapter's transaction ends before it returns.
#: The adapters hold the connection; this only finds it, so it closes with its last adapter.
_threads = threading.local()


def _shared() -> dict[tuple[str, int], weakref.ref[_Held]]:
    found: dict[tuple[str, int], weakref.ref[_Held]] | None = getattr(_threads, "files", None)
    if found is None:
        found = _threads.files = {}
    return found


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
        self._key = (os.path.abspath(self.path), int(busy_timeout_ms))
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        mine: _Held | None = getattr(self._local, "held", None)
        if mine is not None and not mine.closed and mine.pid == os.getpid():
            return mine.conn
        shared = _shared()
        ref = shared.get(self._key)
        mine = ref() if ref is not None else None
        # Never one inherited through fork, nor one another adapter closed.
        if mine is None or mine.closed or mine.pid != os.getpid():
            mine = _Held(self._open(), os.getpid())
            shared[self._key] = weakref.ref(mine)
        if self._schema not in mine.applied:
            for statement in self._schema:
                mine.conn.execute(statement)
            mine.applied.add(self._schema)
        self._local.held = mine
        return mine.conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_ms)}")
            enable_wal(conn, self._busy_ms)
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close the calling thread's connection to the file (other threads keep theirs; an
        adapter on the same file in this thread opens a new one when it is next used)."""
        mine: _Held | None = getattr(self._local, "held", None)
        if mine is None:
            ref = _shared().get(self._key)
            mine = ref() if ref is not None else None
        if mine is not None and mine.pid == os.getpid() and not mine.closed:
            mine.conn.close()
            mine.closed = True
        self._local.held = None


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
