"""SQLite idempotency store under the real Powertools ``idempotent_function``.

Each test builds a fresh layer and config: a layer keeps the first IdempotencyConfig it sees.
Worker functions for the multi-process tests live at module level so ``spawn`` can import them.
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyKeyError,
    IdempotencyValidationError,
)

from handler.adapters.sqlite_store import SQLitePersistenceLayer
from handler.adapters.stores import (
    DynamoDBStore,
    RedisStore,
    SQLiteStore,
    StoreUrlError,
    build_persistence_layer,
    parse_store_url,
)
from tests.integration import idempotency
from tests.integration.idempotency import EVENT, Crash


def make_start(
    path: str | Path,
    body: Callable[[dict[str, Any]], Any],
    *,
    remaining_ms: int = 30_000,
    validation: str = "",
) -> tuple[Callable[..., Any], SQLitePersistenceLayer]:
    """A decorated ``start(event=...)`` on a fresh layer and config."""
    layer = SQLitePersistenceLayer(path)
    start = idempotency.make_start(
        layer, body, remaining_ms=remaining_ms, validation=validation, key_prefix="start-record"
    )
    return start, layer


def rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT id, status, expiration, in_progress_expiration, data, validation"
            " FROM idempotency ORDER BY id"
        ).fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "idem.db"


def test_duplicate_is_served_from_store(db: Path) -> None:
    calls: list[dict[str, Any]] = []

    def body(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(event)
        return {"task_id": f"task-{len(calls)}"}

    start, _ = make_start(db, body)
    first = start(event=EVENT)
    second = start(event=dict(EVENT, user_ids=["other"]))  # not part of the key
    assert first == second == {"task_id": "task-1"}
    assert len(calls) == 1
    [(key, status, expiration, ipe, data, validation)] = rows(db)
    assert key.startswith("start-record#")
    assert status == "COMPLETED"
    assert expiration > time.time() + 250
    assert ipe > time.time() * 1000
    assert data == '{"task_id": "task-1"}'
    assert validation is None
    assert start(event=dict(EVENT, session="s-2")) == {"task_id": "task-2"}


def test_missing_key_raises(db: Path) -> None:
    start, _ = make_start(db, lambda e: 1)
    with pytest.raises(IdempotencyKeyError):
        start(event={"other": 1})


def test_concurrent_call_while_in_progress(db: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    def body(event: dict[str, Any]) -> str:
        entered.set()
        assert release.wait(5)
        return "done"

    start, _ = make_start(db, body)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(start(event=EVENT)))
    worker.start()
    assert entered.wait(5)
    assert rows(db)[0][1] == "INPROGRESS"
    with pytest.raises(IdempotencyAlreadyInProgressError):
        start(event=EVENT)
    release.set()
    worker.join(5)
    assert result == ["done"]
    assert start(event=EVENT) == "done"


def test_threads_same_key_run_once(db: Path) -> None:
    calls = Counter[str]()
    barrier = threading.Barrier(16)

    def body(event: dict[str, Any]) -> str:
        calls["n"] += 1
        time.sleep(0.05)
        return "ok"

    start, _ = make_start(db, body)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait(5)
        try:
            outcomes.append(start(event=EVENT))
        except IdempotencyAlreadyInProgressError:
            outcomes.append("busy")

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls["n"] == 1
    assert len(outcomes) == 16
    assert set(outcomes) <= {"ok", "busy"}


def test_exception_deletes_record_and_retry_runs(db: Path) -> None:
    attempts: list[int] = []

    def body(event: dict[str, Any]) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("GME said no")
        return "second time lucky"

    start, _ = make_start(db, body)
    with pytest.raises(RuntimeError, match="GME said no"):
        start(event=EVENT)
    assert rows(db) == []
    assert start(event=EVENT) == "second time lucky"
    assert len(attempts) == 2


def test_expired_record_runs_again(db: Path) -> None:
    calls: list[int] = []

    def body(event: dict[str, Any]) -> int:
        calls.append(1)
        return len(calls)

    start, _ = make_start(db, body)
    assert start(event=EVENT) == 1
    with sqlite3.connect(db) as conn:  # let the clock pass the record's expiry
        conn.execute("UPDATE idempotency SET expiration = ?", (int(time.time()) - 10,))
    assert start(event=EVENT) == 2
    assert rows(db)[0][2] > time.time()


def test_crashed_in_progress_record_is_taken_over(db: Path) -> None:
    runs: list[str] = []

    def body(event: dict[str, Any]) -> str:
        runs.append("x")
        if len(runs) == 1:
            raise Crash
        return "recovered"

    start, _ = make_start(db, body, remaining_ms=150)
    with pytest.raises(Crash):
        start(event=EVENT)
    assert rows(db)[0][1] == "INPROGRESS"
    with pytest.raises(IdempotencyAlreadyInProgressError):  # still within the Lambda timeout
        start(event=EVENT)
    time.sleep(0.25)
    assert start(event=EVENT) == "recovered"
    assert len(runs) == 2


def test_payload_validation(db: Path) -> None:
    calls: list[int] = []

    def body(event: dict[str, Any]) -> str:
        calls.append(1)
        return "ok"

    start, _ = make_start(db, body, validation="user_ids")
    assert start(event=EVENT) == "ok"
    validation = rows(db)[0][5]
    assert validation
    assert len(validation) == 32  # md5 kept through _update_record
    assert start(event=dict(EVENT)) == "ok"  # identical repeat: served
    with pytest.raises(IdempotencyValidationError):
        start(event=dict(EVENT, user_ids=["intruder"]))
    assert len(calls) == 1


def test_purge_expired(db: Path) -> None:
    start, layer = make_start(db, lambda e: "ok")
    start(event=EVENT)
    start(event=dict(EVENT, session="s-2"))
    assert layer.purge_expired() == 0
    assert layer.purge_expired(now=time.time() + 301) == 2
    assert rows(db) == []


def test_layer_rejects_bad_table_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="identifier"):
        SQLitePersistenceLayer(tmp_path / "x.db", table_name="x; DROP TABLE y")


# --- multi-process ---------------------------------------------------------------------------


def _mp_call(db: str, side: str, barrier: Any, events: list[dict[str, Any]], out: Any) -> None:
    """Child process: call ``start`` for each event; the body appends its key to ``side``."""

    def body(event: dict[str, Any]) -> str:
        with open(side, "a") as fh:  # O_APPEND: one small write per line is atomic
            fh.write(f"{event['session']}\n")
        time.sleep(0.2 if len(events) == 1 else 0.002)
        return f"rec-{event['session']}"

    start, _ = make_start(db, body)
    barrier.wait(20)
    results = []
    for event in events:
        try:
            results.append(start(event=event))
        except IdempotencyAlreadyInProgressError:
            results.append("busy")
        except Exception as exc:  # reported, then asserted on in the parent
            results.append(f"error {type(exc).__name__}: {exc}")
    out.put(results)


def _run_processes(n: int, tmp_path: Path, events_for: Callable[[int], list[Any]]) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    db, side = str(tmp_path / "idem.db"), str(tmp_path / "side.log")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_mp_call, args=(db, side, barrier, events_for(i), out)) for i in range(n)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=25) for _ in procs]
    for p in procs:
        p.join(5)
        assert p.exitcode == 0
    return [results, Path(side).read_text().split()]


def test_eight_processes_same_key_run_once(tmp_path: Path) -> None:
    results, side = _run_processes(8, tmp_path, lambda i: [EVENT])
    flat = [r for rs in results for r in rs]
    assert side == ["s-1"]
    assert set(flat) <= {"rec-s-1", "busy"}
    assert flat.count("rec-s-1") >= 1


def test_four_processes_many_keys_each_run_once(tmp_path: Path) -> None:
    events = [dict(EVENT, session=f"s{k}") for k in range(40)]

    def shuffled(i: int) -> list[dict[str, Any]]:
        order = events[:]
        random.Random(i).shuffle(order)
        return order

    results, side = _run_processes(4, tmp_path, shuffled)
    assert sorted(side) == sorted(f"s{k}" for k in range(40))
    for rs in results:
        assert len(rs) == 40
        assert all(r == "busy" or r.startswith("rec-s") for r in rs)


# --- build_persistence_layer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/idem.db", "var/idem.db"),
        ("sqlite:////tmp/abs/idem.db", "/tmp/abs/idem.db"),
        (" sqlite:///x.db\n", "x.db"),
    ],
)
def test_parse_sqlite(url: str, path: str) -> None:
    assert parse_store_url(url) == SQLiteStore(path)


def test_build_sqlite_is_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    layer = build_persistence_layer("sqlite:///data/idem.db")
    assert isinstance(layer, SQLitePersistenceLayer)
    assert layer.purge_expired() == 0
    assert (tmp_path / "data" / "idem.db").exists()


def test_build_dynamodb_without_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5055")
    assert parse_store_url("dynamodb://Idem-Table_1") == DynamoDBStore("Idem-Table_1")
    layer = build_persistence_layer("dynamodb://Idem-Table_1")
    assert isinstance(layer, DynamoDBPersistenceLayer)
    assert layer.table_name == "Idem-Table_1"
    assert layer.client.meta.endpoint_url == "http://127.0.0.1:5055"


@pytest.mark.parametrize(
    ("url", "spec"),
    [
        ("redis://cache:6380/2", RedisStore("cache", 6380, 2, ssl=False)),
        ("redis://localhost", RedisStore("localhost", 6379, 0, ssl=False)),
        ("rediss://bob:p%40ss@cache.example.com/1", RedisStore("cache.example.com", 6379, 1, True)),
        ("rediss://:tok@h:7000", RedisStore("h", 7000, 0, ssl=True, password="tok")),
    ],
)
def test_parse_redis(url: str, spec: RedisStore) -> None:
    parsed = parse_store_url(url)
    assert isinstance(parsed, RedisStore)
    assert (parsed.host, parsed.port, parsed.db, parsed.ssl) == (
        spec.host,
        spec.port,
        spec.db,
        spec.ssl,
    )
    if "bob" in url:
        assert (parsed.username, parsed.password) == ("bob", "p@ss")
        assert "p@ss" not in repr(parsed)


def test_build_redis_passes_ssl_and_password() -> None:
    """The real class, no server needed: nothing connects until the first command."""
    pytest.importorskip("redis")
    import redis

    plain = build_persistence_layer("redis://u:s3cret@cache:6380/3")
    tls = build_persistence_layer("rediss://cache")
    plain_pool = plain.client.connection_pool  # type: ignore[attr-defined]
    tls_pool = tls.client.connection_pool  # type: ignore[attr-defined]
    kwargs = plain_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache", 6380, 3)
    assert (kwargs["username"], kwargs["password"]) == ("u", "s3cret")
    assert plain_pool.connection_class is redis.Connection
    assert tls_pool.connection_class is redis.SSLConnection
    assert tls_pool.connection_kwargs["port"] == 6379


def test_build_redis_real_class_without_server() -> None:
    pytest.importorskip("redis")
    from aws_lambda_powertools.utilities.idempotency.persistence.cache import (
        CachePersistenceLayer,
    )

    layer = build_persistence_layer("redis://:pw@127.0.0.1:1/0")  # nothing listens: no connect
    assert isinstance(layer, CachePersistenceLayer)
    kwargs = layer.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert (kwargs["host"], kwargs["port"], kwargs["password"]) == ("127.0.0.1", 1, "pw")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "idem.db",
        "postgres://db/x",
        "sqlite://host/x.db",
        "sqlite:///",
        "sqlite:///dir/",
        "sqlite:///:memory:",
        "sqlite:///x.db?mode=ro",
        "dynamodb://",
        "dynamodb://ab",
        "dynamodb://table/extra",
        "dynamodb://user:hunter2@table",
        "dynamodb://table?x=1",
        "dynamodb://table:hunter2",
        "redis://host/²",
        "redis://",
        "redis://host:notaport/0",
        "redis://host/zero",
        "redis://host/0/1",
        "redis://user:hunter2/host",
        "rediss://user:hunter2@host:99999/0",
        "redis://user:hunter2@[bad/0",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(StoreUrlError) as info:
        build_persistence_layer(url)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "IDEMPOTENCY_STORE" in message
    assert "dynamodb://TABLE_NAME" in message
    assert "hunter2" not in message
    assert info.value.__cause__ is None


def test_file_is_in_wal_mode_with_a_busy_timeout(db: Path) -> None:
    """What makes several processes on one host safe: readers beside the writer, queued writers."""
    start, layer = make_start(db, lambda e: "ok")
    start(event=EVENT)
    conn = layer._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    with sqlite3.connect(db) as other:  # a second process opening the file sees WAL too
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
