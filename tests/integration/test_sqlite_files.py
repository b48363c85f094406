"""One connection per thread and file, shared by every adapter on that file: the idempotency
records and the pace's schedules live in one file, and two connections to it would each drop
their page cache whenever the other wrote."""

from __future__ import annotations

import gc
import sqlite3
import threading
from pathlib import Path

from handler.adapters import sqlite_files
from handler.adapters.buckets import SQLiteSlots
from handler.adapters.sqlite_files import ThreadConnections
from handler.adapters.sqlite_store import SQLitePersistenceLayer
from handler.domain.ratelimit import Pace

A = ("CREATE TABLE IF NOT EXISTS a (x)",)
B = ("CREATE TABLE IF NOT EXISTS b (y)",)


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_adapters_on_one_file_share_the_threads_connection_and_each_schema(
    tmp_path: Path,
) -> None:
    first = ThreadConnections(tmp_path / "f.db", A)
    second = ThreadConnections(tmp_path / "." / "f.db", B)  # the same file, spelt otherwise
    conn = first.get()
    assert second.get() is conn
    assert {"a", "b"} <= tables(conn)
    other = ThreadConnections(tmp_path / "g.db", A).get()
    slower = ThreadConnections(tmp_path / "f.db", A, busy_timeout_ms=10_000).get()
    assert other is not conn
    assert slower is not conn  # another busy timeout: a connection of its own
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(first.get()))
    thread.start()
    thread.join()
    assert seen[0] is not conn  # each thread has its own


def test_closing_one_adapter_leaves_the_others_working(tmp_path: Path) -> None:
    path = tmp_path / "idempotency.db"
    store = SQLitePersistenceLayer(path)
    slots = SQLiteSlots(path, Pace(1000, 100))
    assert slots.reserve("k", 1.0) is not None
    assert store.purge_expired() == 0
    store.close()  # closes the thread's connection to the file
    assert slots.reserve("k", 1.0) is not None  # opens a new one
    assert store.purge_expired() == 0
    slots._files.close()
    assert store.purge_expired() == 0


def test_the_connection_closes_with_its_last_adapter(tmp_path: Path) -> None:
    """Adapters hold the connection, the thread's table only finds it: a process that builds
    its adapters anew (the local runner after a settings change) keeps no old files open."""
    first = ThreadConnections(tmp_path / "f.db", A)
    second = ThreadConnections(tmp_path / "f.db", B)
    first.get()
    second.get()
    key = (str(tmp_path / "f.db"), 5000)
    del first
    gc.collect()
    assert sqlite_files._shared()[key]() is not None  # the second adapter still holds it
    del second
    gc.collect()
    assert sqlite_files._shared()[key]() is None
