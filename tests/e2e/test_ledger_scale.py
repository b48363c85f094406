"""A room id's past does not make its events dearer: a room id with 3,000 earlier sessions costs
the same ledger reads per event (TRTC create, GME callback, TRTC close, a room event's close
and stop) as one with a single earlier session. Measured through the real webhook entry point
on both ledgers: DynamoDB on moto_server behind a counting proxy (requests and items read), and
SQLite (virtual-machine steps of the ledger's own connection)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.ledger import LedgerEntry, LedgerState, new_entry
from handler.entrypoints import webhook, worker
from tests.conftest import BIZ_ID, Stack, load_event, sqs_event
from tests.ddb_counter import DynamoDBCounter
from tests.e2e.test_ledger_budget import gme_request
from tests.servers import create_idempotency_table, moto_env

PAST = 3000
T0 = 1_700_000_000_000  # ms; every seeded session is older than the events sent


def past_sessions(room: str, count: int) -> list[LedgerEntry]:
    """Finished sessions of every kind the events look at: TRTC sessions with their tombstones
    and tasks, and room-event sessions."""
    out = []
    for i in range(count):
        ms = T0 + i * 1000
        kind = i % 3
        session = f"trtc-{ms}" if kind == 0 else f"trtc-close-{ms}" if kind == 1 else f"match-{i}"
        entry = new_entry(
            BIZ_ID,
            room,
            session,
            LedgerState.STOPPED,
            ms / 1000,
            task_id=None if kind == 1 else str(10**15 + i),
            closed_at=ms / 1000 + 1,
            stopped_at=ms / 1000 + 1,
        ).noted(ms / 1000, "close", "seeded")
        out.append(entry)
    return out


class Meter:
    """Seeds a room's past and measures what one call costs the ledger."""

    seed: Callable[[list[LedgerEntry]], None]
    measure: Callable[[Callable[[], Any]], tuple[int, ...]]
    #: The most a 3,000-session room may cost where a 1-session one costs `few`: SQLite a few
    #: more B-tree steps; DynamoDB the same requests, and at most the one seeded tombstone
    #: more read (the newest-tombstone query finds one where the small room has none).
    bound: Callable[[int], float]


@pytest.fixture(params=["sqlite", "dynamodb"])
def meter(
    request: pytest.FixtureRequest, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Meter]:
    m = Meter()
    if request.param == "sqlite":
        ledger: Any = app.ledger().inner  # type: ignore[attr-defined]

        def seed_sqlite(entries: list[LedgerEntry]) -> None:
            conn = ledger._conn()
            conn.execute("BEGIN IMMEDIATE")
            for e in entries:
                ledger._write(conn, e)
            conn.execute("COMMIT")

        def steps(call: Callable[[], Any]) -> tuple[int, ...]:
            conn: sqlite3.Connection = ledger._conn()
            count = [0]

            def tick() -> int:
                count[0] += 1
                return 0

            conn.set_progress_handler(tick, 1)
            try:
                call()
            finally:
                conn.set_progress_handler(None, 1)
            return (count[0],)

        m.seed, m.measure, m.bound = seed_sqlite, steps, lambda few: few * 1.1 + 20
        yield m
        return
    moto = request.getfixturevalue("moto")
    with DynamoDBCounter(moto.url) as counter:
        table = f"ledger-{uuid.uuid4().hex[:8]}"
        moto_env(monkeypatch, counter.url, "dynamodb")
        monkeypatch.setenv("LEDGER_STORE", f"dynamodb://{table}")
        app.reset()
        ddb: Any = app.ledger().inner  # type: ignore[attr-defined]
        ddb.create_table()

        def seed_dynamodb(entries: list[LedgerEntry]) -> None:
            with ddb._table.batch_writer() as batch:
                for e in entries:
                    batch.put_item(Item=ddb._item(e, 1))

        def reads(call: Callable[[], Any]) -> tuple[int, ...]:
            counter.reset()
            call()
            return (counter.requests(table), counter.items_read[table])

        m.seed, m.measure, m.bound = seed_dynamodb, reads, lambda few: few + 1
        yield m


def events(stack: Stack, room: str, trtc_room: str) -> dict[str, Callable[[], Any]]:
    """Each event once, in an order that makes every one do its full work."""
    ms = T0 + 10 * PAST * 1000

    def trtc(kind: str, at: int) -> dict[str, Any]:
        doc = load_event(kind)
        return {**doc, "EventInfo": {"RoomId": trtc_room, "EventTs": at // 1000, "EventMsTs": at}}

    def send(request: dict[str, Any]) -> dict[str, Any]:
        result = webhook.handler(request, stack.context("webhook"))
        assert result["statusCode"] == 200, result
        return dict(json.loads(result["body"]))

    created = {**load_event("room-created.json"), "room_id": room, "session": "match-now"}
    closed = {**load_event("room-closed.json"), "room_id": room, "session": "match-now"}
    task: dict[str, str] = {}

    def trtc_create() -> None:
        task["trtc"] = send(stack.trtc_request(trtc("trtc-room-created.json", ms)))["task_id"]

    def callback() -> None:
        body = {
            "BizID": BIZ_ID,
            "RoomID": trtc_room,
            "UserID": "0",
            "TaskID": int(task["trtc"]),
            "RecordMode": 1,
            "Timestamp": int(time.time()),
            "EventType": 3,
            "Detail": {"SeqNo": 1, "FileName": "a.mp3"},
        }
        assert send(gme_request(body))["session"] == f"trtc-{ms}"

    def trtc_close() -> None:
        assert send(stack.trtc_request(trtc("trtc-room-dismissed.json", ms + 5000)))["status"] == (
            "stopped"
        )

    def create() -> None:
        assert send(stack.room_event_request(created))["status"] == "started"

    def stop() -> None:
        assert send(stack.room_event_request(closed))["status"] == "stopped"

    return {
        "trtc_create": trtc_create,
        "callback": callback,
        "trtc_close": trtc_close,
        "create": create,
        "stop": stop,
    }


def cost(stack: Stack, meter: Meter, past: int, suffix: str) -> dict[str, tuple[int, ...]]:
    room, trtc_room = f"ranked-{suffix}", f"support-{suffix}"
    meter.seed(past_sessions(room, past) + past_sessions(trtc_room, past))
    return {name: meter.measure(call) for name, call in events(stack, room, trtc_room).items()}


def test_a_room_id_with_3000_past_sessions_costs_what_one_with_one_does(
    stack: Stack, meter: Meter
) -> None:
    small = cost(stack, meter, 1, "1001")
    large = cost(stack, meter, PAST, "2002")
    for name in small:
        for few, many in zip(small[name], large[name], strict=True):
            assert many <= meter.bound(few), (name, small, large)


@pytest.fixture
def deployed(
    stack: Stack, moto: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DynamoDBCounter, str, str]]:
    """The deployed stores on moto_server behind the counting proxy, fresh tables:
    (counter, idempotency table, ledger table)."""
    with DynamoDBCounter(moto.url) as counter:
        idem, ledger = f"idem-{uuid.uuid4().hex[:8]}", f"ledger-{uuid.uuid4().hex[:8]}"
        create_idempotency_table(moto, idem)
        moto_env(monkeypatch, counter.url, "dynamodb")
        monkeypatch.setenv("IDEMPOTENCY_STORE", f"dynamodb://{idem}")
        monkeypatch.setenv("LEDGER_STORE", f"dynamodb://{ledger}")
        app.reset()
        app.ledger().create_table()  # type: ignore[attr-defined]
        yield counter, idem, ledger


def test_dynamodb_round_trips_of_a_new_room_and_of_its_close(
    stack: Stack, deployed: tuple[DynamoDBCounter, str, str]
) -> None:
    """Every DynamoDB request a new room and its close make, by table: the ledger, the
    idempotency records and the fleet-wide pace (which lives in the idempotency table)."""
    counter, idem, ledger = deployed
    doc = {**load_event("room-created.json"), "room_id": "ranked-rt", "session": "s1"}
    counter.reset()
    result = webhook.handler(stack.room_event_request(doc), stack.context("webhook"))
    assert json.loads(result["body"])["status"] == "started"
    start = dict(counter.calls)
    assert counter.refused[ledger] == 0
    closed = {**load_event("room-closed.json"), "room_id": "ranked-rt", "session": "s1"}
    counter.reset()
    result = webhook.handler(stack.room_event_request(closed), stack.context("webhook"))
    assert json.loads(result["body"])["status"] == "stopped"
    close = dict(counter.calls)
    # A close in a process that never saw the entry (another function instance) reads
    # first instead of guessing "absent" (a refused put is billed as a write).
    again = {**doc, "session": "s2"}
    webhook.handler(stack.room_event_request(again), stack.context("webhook"))
    app.reset()
    counter.reset()
    closed_elsewhere = {**closed, "session": "s2", "id": "evt-close-s2"}
    result = webhook.handler(stack.room_event_request(closed_elsewhere), stack.context("webhook"))
    assert json.loads(result["body"])["status"] == "stopped"
    assert counter.refused[ledger] == 0
    assert counter.calls[("GetItem", ledger)] == 1
    print(f"new room: {start}\nclose: {close}")
    by_table = {t: sum(n for (_, x), n in start.items() if x == t) for t in (idem, ledger)}
    assert by_table[ledger] == 2  # `starting` and the outcome: one conditional put each
    assert sum(n for (_, x), n in close.items() if x == ledger) == 3  # close, owner, stopped
    # Idempotency: in progress (a put) and the outcome (an update); the pace: one conditional
    # write from the value this process last saw (docs/lifecycle.md).
    assert start[("PutItem", idem)] == 2
    assert start[("UpdateItem", idem)] == 1
    assert sum(start.values()) == 5
    assert sum(close.values()) == 4  # the ledger's 3 and the pace's 1


def test_dynamodb_round_trips_of_a_batch_of_new_rooms(
    stack: Stack, deployed: tuple[DynamoDBCounter, str, str]
) -> None:
    """Ten new rooms in one worker batch, their records side by side: each still makes its own
    ledger and idempotency writes, but their StartRecord slots take far fewer than ten pace
    writes, the records that reach the pace together sharing one."""
    counter, idem, ledger = deployed
    created = load_event("room-created.json")

    def batch(prefix: str, rooms: int) -> list[dict[str, Any]]:
        bodies = [
            {**created, "id": f"evt-{prefix}-{i}", "room_id": f"ranked-{prefix}-{i}"}
            for i in range(rooms)
        ]
        return worker.process_batch(sqs_event(*bodies), stack.context("worker"))[1]

    assert all(item["ok"] for item in batch("warm", 1))  # clients built, the pace key seen
    counter.reset()
    report = batch("batch", 10)
    calls = dict(counter.calls)
    assert [item["outcome"]["status"] for item in report] == ["started"] * 10
    print(f"a batch of 10 new rooms: {calls}")
    assert calls[("UpdateItem", idem)] == 10  # each record's idempotency outcome
    pace = calls[("PutItem", idem)] - 10  # beyond each record's in-progress put
    assert 1 <= pace <= 6  # 3 or 4 when measured; 10 when each slot was a write of its own
    assert sum(n for (_, t), n in calls.items() if t == ledger) == 20


def failed(room: str, checked_at: float, retryable: bool) -> LedgerEntry:
    return new_entry(
        BIZ_ID,
        room,
        "s",
        LedgerState.FAILED,
        checked_at,
        checked_at=checked_at,
        retryable=retryable,
        failed_at=checked_at,
        last_error="InvalidParameter: refused" if not retryable else "InternalError: busy",
    )


def test_permanent_failures_do_not_hold_up_the_sweep_queue(stack: Stack, meter: Meter) -> None:
    """300 permanent failures older than every retryable one: the sweep's query still returns
    the retryable ones first, for what it costs without them."""
    ledger = app.ledger()
    meter.seed([failed(f"retry-{i}", 5000.0 + i, True) for i in range(5)])
    alone = meter.measure(lambda: ledger.due_for_check(9000.0, 5))
    meter.seed([failed(f"refused-{i}", float(i), False) for i in range(300)])
    due: list[LedgerEntry] = []
    crowded = meter.measure(lambda: due.extend(ledger.due_for_check(9000.0, 5)))
    assert [e.room_id for e in due] == [f"retry-{i}" for i in range(5)]
    for few, many in zip(alone, crowded, strict=True):
        assert many <= meter.bound(few), (alone, crowded)
