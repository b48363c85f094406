"""What a slot of the fleet-wide pace costs on DynamoDB: every request counted on its way to
moto_server (``tests.ddb_counter``), alone and with several processes taking slots of one key
at the pace. Whatever the count, the slots handed out stay one interval apart."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from handler.adapters.buckets import DynamoDBSlots, build_slot_store
from handler.domain.ratelimit import Pace
from tests.ddb_counter import DynamoDBCounter
from tests.servers import create_idempotency_table, moto_env

KEY = "StartRecord#tag#region"


@pytest.fixture
def counted(moto: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh idempotency table reached through the counting proxy: (store URL, counter)."""
    with DynamoDBCounter(moto.url) as counter:
        moto_env(monkeypatch, counter.url, "dynamodb")
        table = f"pace-{uuid.uuid4().hex[:10]}"
        create_idempotency_table(moto, table)
        counter.reset()
        yield f"dynamodb://{table}", counter


def test_an_uncontended_slot_is_one_conditional_write(counted: Any) -> None:
    store, counter = counted
    pace = Pace(1000, 1)
    slots = build_slot_store(store, pace)
    starts = [slots.reserve(KEY, max_wait=5) for _ in range(20)]
    assert counter.calls == {("PutItem", store.removeprefix("dynamodb://")): 20}
    assert counter.refused.total() == 0
    # A process that never saw the key (another Lambda instance) is refused once, learns the
    # stored value from the refusal itself, and goes on at one request a slot.
    counter.reset()
    other = build_slot_store(store, pace)
    more = [other.reserve(KEY, max_wait=5) for _ in range(5)]
    assert counter.requests() == 6
    assert counter.refused.total() == 1
    ordered = [s for s in starts + more if s is not None]
    assert len(ordered) == 25
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= pace.interval - 1e-5


def test_a_slot_beyond_the_wait_known_from_what_was_seen_costs_no_request(
    counted: Any,
) -> None:
    store, counter = counted
    slots = build_slot_store(store, Pace(0.5, 1))
    assert slots.reserve(KEY, max_wait=0) is not None
    counter.reset()
    assert slots.reserve(KEY, max_wait=0.5) is None  # the next slot is 2 s away
    assert counter.requests() == 0


def test_threads_of_one_process_share_their_writes(counted: Any) -> None:
    """A worker batch's ten records wanting a slot at once: each still gets its own slot, one
    interval apart, and the threads that came while one write was under way are served by the
    next one (one write, not ten, most of them refused)."""
    store, counter = counted
    pace = Pace(20, 1)
    slots = build_slot_store(store, pace)
    slots.reserve(KEY, max_wait=5)  # the key seen, as in a warm worker
    counter.reset()
    gate, starts = threading.Barrier(10), []

    def record() -> None:
        gate.wait()
        starts.append(slots.reserve(KEY, max_wait=5))

    threads = [threading.Thread(target=record) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert None not in starts
    ordered = sorted(s for s in starts if s is not None)
    assert len(ordered) == 10
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= pace.interval - 1e-5
    print(f"{counter.requests()} requests for 10 slots")
    assert counter.requests() <= 3
    assert counter.refused.total() == 0


def _take(store: str, count: int, rate: float) -> list[float]:
    """One worker process taking ``count`` slots at the pace: sleeps until each one starts."""
    slots = build_slot_store(store, Pace(rate, 1))
    starts: list[float] = []
    for _ in range(count):
        start = slots.reserve(KEY, max_wait=30)
        assert start is not None
        starts.append(start)
        time.sleep(max(0.0, start - time.time()))
    return starts


def test_processes_at_the_pace_share_one_schedule(counted: Any) -> None:
    """Four processes take slots of one key at 20/s: each slot is still its own, one interval
    from the next, and the requests per slot are printed (a refused write costs one more)."""
    store, counter = counted
    processes, each, rate = 4, 10, 20.0
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.apply(time.sleep, (0,))  # started and imported before the count begins
        counter.reset()
        shares = pool.starmap(_take, [(store, each, rate)] * processes)
    starts = sorted(itertools.chain.from_iterable(shares))
    assert len(starts) == processes * each
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 1 / rate - 1e-5
    slots, requests = len(starts), counter.requests()
    print(f"{requests / slots:.2f} requests a slot, {counter.refused.total()} refused")
    assert counter.calls.keys() == {("PutItem", store.removeprefix("dynamodb://"))}
    # At most one refusal per slot another process took in between: each refusal carries the
    # value to go on from, so no process ever writes twice from one stale value.
    assert requests - slots == counter.refused.total() <= slots * (processes - 1)


class SecondWriteFails:
    """The real client, slow on its first PutItem (so threads queue behind it, to be served by
    the next write) and refusing the second as DynamoDB refuses a throttled write (moto never
    throttles)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.exceptions = inner.exceptions
        self._writes = 0

    def put_item(self, **request: Any) -> Any:
        self._writes += 1
        if self._writes == 1:
            time.sleep(0.2)
        if self._writes == 2:
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
            raise ClientError({"Error": error}, "PutItem")
        return self._inner.put_item(**request)


def test_a_failed_write_fails_its_caller_and_the_threads_it_wrote_for_go_again(
    counted: Any,
) -> None:
    """Five threads queue behind a slow write; the next write, for all of them, is refused. The
    thread that made it gets the store's error (its item fails with that reason, never a
    made-up "no slot"); the others go again and each gets a slot of its own."""
    store, _ = counted
    pace = Pace(50, 1)
    client = SecondWriteFails(boto3.client("dynamodb"))
    slots = DynamoDBSlots(store.removeprefix("dynamodb://"), pace, client=client)

    def take() -> float | ClientError | None:
        try:
            return slots.reserve(KEY, max_wait=5)
        except ClientError as exc:
            return exc

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(take)]
        time.sleep(0.05)  # the slow write under way (whichever thread makes it, one is)
        futures += [pool.submit(take) for _ in range(5)]
    answers = [future.result() for future in futures]
    errors = [a for a in answers if isinstance(a, ClientError)]
    starts = sorted(a for a in answers if isinstance(a, float))
    assert (len(errors), len(starts)) == (1, 5)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= pace.interval - 1e-5


def test_a_value_learned_from_a_refusal_is_kept_when_no_slot_fits(counted: Any) -> None:
    """A refused write shows the stored schedule; when that puts the next slot beyond the wait,
    nothing is written, but the value is kept: asking again costs no request."""
    store, counter = counted
    ours, other = build_slot_store(store, Pace(5, 1)), build_slot_store(store, Pace(5, 1))
    assert ours.reserve(KEY, max_wait=0) is not None  # seen: its next slot 0.2 s away
    assert None not in [other.reserve(KEY, max_wait=5) for _ in range(11)]  # 2.2 s on
    counter.reset()
    assert ours.reserve(KEY, max_wait=0.5) is None  # refused once, learns: next slot ~2 s away
    assert (counter.requests(), counter.refused.total()) == (1, 1)
    assert ours.reserve(KEY, max_wait=0.5) is None
    assert counter.requests() == 1
