"""One behavioural suite, three stores: SQLite file, DynamoDB (moto_server), Redis (redis-server).

Every test runs the real Powertools ``idempotent_function`` on the layer that
``build_persistence_layer(IDEMPOTENCY_STORE)`` returns for each family, so the promise "one room
session, one run" is checked the same way wherever the records live.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from handler.adapters.buckets import KEY_PREFIX, build_slot_store
from handler.adapters.stores import build_persistence_layer
from handler.domain.ratelimit import Pace
from tests.integration.idempotency import EVENT, Crash, make_start


def counting(result: Callable[[int], Any] = lambda n: {"task_id": str(2**60 + n)}) -> Any:
    calls: list[int] = []

    def body(event: dict[str, Any]) -> Any:
        calls.append(1)
        return result(len(calls))

    return body, calls


def test_duplicate_is_served_from_the_store(store_url: str) -> None:
    body, calls = counting()
    start = make_start(build_persistence_layer(store_url), body)
    first = start(event=EVENT)
    # A second process (fresh layer, same store) gets the stored answer, exact to the digit.
    again = make_start(build_persistence_layer(store_url), body)(event=dict(EVENT, user_ids=[]))
    assert first == again == {"task_id": str(2**60 + 1)}
    assert len(calls) == 1
    assert start(event=dict(EVENT, session="s-2")) == {"task_id": str(2**60 + 2)}


def test_concurrent_delivery_while_in_progress_is_refused(store_url: str) -> None:
    entered, release = threading.Event(), threading.Event()

    def body(event: dict[str, Any]) -> str:
        entered.set()
        assert release.wait(10)
        return "done"

    start = make_start(build_persistence_layer(store_url), body)
    other = make_start(build_persistence_layer(store_url), body)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(start(event=EVENT)))
    worker.start()
    try:
        assert entered.wait(10)
        with pytest.raises(IdempotencyAlreadyInProgressError):
            other(event=EVENT)
    finally:
        release.set()
        worker.join(10)
    assert result == ["done"]
    assert other(event=EVENT) == "done"


def test_many_threads_one_key_run_once(store_url: str) -> None:
    calls: list[int] = []
    barrier = threading.Barrier(8)

    def body(event: dict[str, Any]) -> str:
        calls.append(1)
        time.sleep(0.1)
        return "ok"

    starts = [make_start(build_persistence_layer(store_url), body) for _ in range(8)]
    outcomes: list[str] = []

    def run(start: Callable[..., Any]) -> None:
        barrier.wait(10)
        try:
            outcomes.append(start(event=EVENT))
        except IdempotencyAlreadyInProgressError:
            outcomes.append("busy")

    threads = [threading.Thread(target=run, args=(s,)) for s in starts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(calls) == 1
    assert sorted(set(outcomes)) in (["busy", "ok"], ["ok"])
    assert len(outcomes) == 8


def test_exception_deletes_the_record_and_the_retry_runs(store_url: str) -> None:
    def body_fn(n: int) -> str:
        if n == 1:
            raise RuntimeError("GME said InternalError")
        return "second time lucky"

    body, calls = counting(body_fn)
    start = make_start(build_persistence_layer(store_url), body)
    with pytest.raises(RuntimeError, match="InternalError"):
        start(event=EVENT)
    assert start(event=EVENT) == "second time lucky"
    assert len(calls) == 2


def test_crashed_worker_is_taken_over_after_the_in_progress_expiry(store_url: str) -> None:
    def body_fn(n: int) -> str:
        if n == 1:
            raise Crash
        return "recovered"

    body, calls = counting(body_fn)
    start = make_start(build_persistence_layer(store_url), body, remaining_ms=600)
    with pytest.raises(Crash):
        start(event=EVENT)
    with pytest.raises(IdempotencyAlreadyInProgressError):  # the dead worker's Lambda may live
        start(event=EVENT)
    time.sleep(0.8)
    assert start(event=EVENT) == "recovered"
    assert len(calls) == 2


def test_expired_record_runs_again(store_url: str) -> None:
    body, _ = counting(lambda n: n)
    start = make_start(build_persistence_layer(store_url), body, expires=1)
    assert start(event=EVENT) == 1
    assert start(event=EVENT) == 1
    time.sleep(2.1)  # expiry is whole epoch seconds in every layer
    assert start(event=EVENT) == 2


def test_payload_validation_serves_identical_and_refuses_changed(store_url: str) -> None:
    body, calls = counting(lambda n: "ok")
    start = make_start(build_persistence_layer(store_url), body, validation="user_ids")
    assert start(event=EVENT) == "ok"
    assert start(event=dict(EVENT)) == "ok"  # identical repeat (broken on stock Redis 3.37.0)
    with pytest.raises(IdempotencyValidationError):
        start(event=dict(EVENT, user_ids=["intruder"]))
    assert len(calls) == 1


def test_stock_redis_layer_fails_identical_repeat_which_ours_serves(redis_url: str) -> None:
    """Proof that the workaround is needed: Powertools 3.37.0 drops the hash on completion."""
    import redis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from aws_lambda_powertools.utilities.idempotency.persistence.cache import (
            CachePersistenceLayer,
        )
    redis.Redis.from_url(redis_url).flushdb()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stock = CachePersistenceLayer(client=client)
    body, _ = counting(lambda n: "ok")
    start = make_start(stock, body, validation="user_ids")
    assert start(event=EVENT) == "ok"
    with pytest.raises(IdempotencyValidationError):
        start(event=dict(EVENT))
    redis.Redis.from_url(redis_url).flushdb()
    ours = make_start(build_persistence_layer(redis_url), body, validation="user_ids")
    assert ours(event=EVENT) == "ok"
    assert ours(event=dict(EVENT)) == "ok"


def test_rate_slots_are_spaced_across_threads(store_url: str) -> None:
    """Three workers reserving from one schedule never get slots closer than 1/rate."""
    pace = Pace(rate=50, burst=1)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        slots = build_slot_store(store_url, pace)  # one store client per worker
        for _ in range(8):
            start = slots.reserve("StartRecord#1400000001", max_wait=5)
            assert start is not None
            with lock:
                starts.append(start)
            time.sleep(max(0.0, start - time.time()))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(starts) == 24
    ordered = sorted(starts)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= pace.interval - 1e-5  # stored with microseconds
    # A caller without enough time left reserves nothing; the next one gets the same slot.
    slots = build_slot_store(store_url, Pace(rate=0.5, burst=1))
    first = slots.reserve("DescribeTaskInfo#1", max_wait=0)
    assert first is not None
    assert first <= time.time()
    assert slots.reserve("DescribeTaskInfo#1", max_wait=0.5) is None
    second = slots.reserve("DescribeTaskInfo#1", max_wait=3)
    assert second == pytest.approx(first + 2.0, abs=1e-5)


def test_a_caller_may_reserve_at_a_slower_pace_of_its_own(store_url: str) -> None:
    """The gateway slowed for jitter passes its own pace: the slot after one taken at it is
    that pace's interval later, not the store's; and without one, the store's pace holds."""
    slots = build_slot_store(store_url, Pace(rate=10, burst=1))
    key = "StartRecord#own-pace"
    first = slots.reserve(key, max_wait=0, pace=Pace(rate=0.5, burst=1))
    assert first is not None
    second = slots.reserve(key, max_wait=5)
    assert second == pytest.approx(first + 2.0, abs=1e-5)  # 1 / 0.5 s: the caller's interval
    third = slots.reserve(key, max_wait=5)
    assert third == pytest.approx(second + 0.1, abs=1e-5)  # 1 / 10 s: the store's own


def test_an_idle_schedule_is_removed_by_the_store_an_hour_after_its_last_slot(
    store_url: str,
) -> None:
    """DynamoDB's TTL and Redis's expiry drop a schedule an hour after its last slot (the
    documented figure), far beyond the 900 s any slot is reserved ahead, so a live schedule is
    never reset to an empty one that would allow a new burst."""
    key = "StartRecord#ttl"
    before = time.time()
    assert build_slot_store(store_url, Pace(rate=10, burst=1)).reserve(key, max_wait=1) is not None
    after = time.time()
    stored = KEY_PREFIX + key
    if store_url.startswith("dynamodb://"):
        import boto3

        table = store_url.removeprefix("dynamodb://")
        item = boto3.client("dynamodb").get_item(TableName=table, Key={"id": {"S": stored}})
        expires = int(item["Item"]["expiration"]["N"])
        assert int(before) + 3600 <= expires <= int(after) + 3600
    elif store_url.startswith("redis"):
        import redis

        ttl_ms = redis.Redis.from_url(store_url).pttl(stored)
        assert 3600_000 - (time.time() - before) * 1000 - 50 <= ttl_ms <= 3600_000
    else:  # no expiry in the file: its rows are one per action and credential, a few bytes each
        path = store_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT id FROM gme_rate").fetchall()
        assert rows == [(stored,)]


def test_a_failed_sqlite_reservation_raises_and_leaves_the_file_usable(tmp_path: Path) -> None:
    """Whatever fails between reading and writing a schedule (here a row no worker wrote, its
    ``tat`` not a number) reaches the caller as itself, the item fails with its type, and the
    write lock is given back: the next reservation on the same connection goes through."""
    path = tmp_path / "idempotency.db"
    slots = build_slot_store(f"sqlite:///{path}", Pace(rate=10, burst=1))
    assert slots.reserve("StartRecord#ok", max_wait=1) is not None  # file and table exist
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO gme_rate VALUES (?, 'garbled')", (KEY_PREFIX + "StartRecord#x",))
    with pytest.raises(TypeError):
        slots.reserve("StartRecord#x", max_wait=1)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM gme_rate WHERE id = ?", (KEY_PREFIX + "StartRecord#x",))
    assert slots.reserve("StartRecord#x", max_wait=1) is not None


def test_slots_on_a_redis_that_asks_for_credentials() -> None:
    """``redis://:password@`` (the default user's password, as ElastiCache's AUTH token) and
    ``redis://user:password@`` (an ACL user) both reach the schedule; the URL's credentials
    are what the slot store's client logs in with."""
    import redis

    from tests.servers import redis_server

    with redis_server("--requirepass", "pace-test-password") as url:
        admin = redis.Redis.from_url(url.replace("redis://", "redis://:pace-test-password@"))
        admin.acl_setuser(
            "pacer", enabled=True, passwords=["+pacer-pw"], keys=["*"], commands=["+@all"]
        )
        for user, login in (("default", ":pace-test-password@"), ("acl", "pacer:pacer-pw@")):
            slots = build_slot_store(url.replace("redis://", f"redis://{login}"), Pace(10, 1))
            assert slots.reserve("StartRecord#auth", max_wait=5) is not None, user
        assert admin.exists(KEY_PREFIX + "StartRecord#auth") == 1
