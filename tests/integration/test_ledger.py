"""The ledger port against both adapters: a real SQLite file and DynamoDB on a real moto_server
started here on a free loopback port. Same contract, same assertions."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from handler.adapters.ledger_sqlite import SQLiteLedger
from handler.adapters.ledgers import LedgerUrlError, build_ledger, default_ledger_url
from handler.domain.decision import Decision, RecordPlan
from handler.domain.ledger import CallbackNote, Ledger, LedgerEntry, LedgerState
from handler.domain.ledger_rules import after_outcome, callback, closing, starting, stopped
from handler.domain.outcome import Outcome, OutcomeStatus

BIZ = 1400000000
DECISION = Decision(
    record=True, rule="r", reason="test", policy_version="v1", plan=RecordPlan(record_mode=3)
)
BIG_TASK = str(2**62 + 12345)


def _dynamodb(endpoint: str, name: str) -> Ledger:
    import boto3

    from handler.adapters.ledger_dynamodb import DynamoDBLedger

    resource = boto3.resource(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ledger = DynamoDBLedger(name, client=resource)
    ledger.create_table()
    return ledger


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        return SQLiteLedger(tmp_path / "ledger.db")
    url = request.getfixturevalue("moto_url")
    return _dynamodb(url, f"ledger-{os.getpid()}-{time.monotonic_ns()}")


def _start(ledger: Ledger, room: str, session: str, at: float, **kw: Any) -> LedgerEntry | None:
    return ledger.update(BIZ, room, session, starting(BIZ, room, session, DECISION, at, **kw))


def _started(task: str) -> Outcome:
    return Outcome(status=OutcomeStatus.STARTED, task_id=task, reason="ok")


def test_create_record_close_round_trip(ledger: Ledger) -> None:
    e = _start(ledger, "r1", "s1", 100.0)
    assert e is not None
    assert e.state is LedgerState.STARTING
    e = ledger.update(BIZ, "r1", "s1", after_outcome(_started(BIG_TASK), 101.0))
    assert e is not None
    assert (e.state, e.task_id, e.task_started_at) == (LedgerState.RECORDING, BIG_TASK, 101.0)
    got = ledger.get(BIZ, "r1", "s1")
    assert got == e  # exact round trip, TaskId beyond 2**53 intact
    assert got is not None
    assert got.record_mode == 3
    e = ledger.update(BIZ, "r1", "s1", closing(BIZ, "r1", "s1", 200.0, "closed"))
    assert e is not None
    assert e.state is LedgerState.STOPPING
    again = ledger.update(BIZ, "r1", "s1", closing(BIZ, "r1", "s1", 201.0, "closed"))
    assert again == e  # a repeated close changes nothing
    e = ledger.update(BIZ, "r1", "s1", stopped(202.0, "done"))
    assert e is not None
    assert [h.what for h in e.history] == ["decision: record", "started", "close", "stop"]


def test_close_first_leaves_a_tombstone_that_refuses_starts(ledger: Ledger) -> None:
    ledger.update(BIZ, "r2", "s", closing(BIZ, "r2", "s", 50.0, "closed early"))
    e = _start(ledger, "r2", "s", 60.0)
    assert e is not None
    assert e.closed
    assert e.state is LedgerState.STOPPING  # the caller still stops a task nobody recorded
    assert e.task_id is None


def test_queries(ledger: Ledger) -> None:
    _start(ledger, "a", "s", 10.0)
    ledger.update(BIZ, "a", "s", after_outcome(_started("11"), 10.0))
    _start(ledger, "b", "s", 20.0)
    ledger.update(BIZ, "b", "s", after_outcome(_started("22"), 5000.0))
    _start(ledger, "c", "s", 30.0, ends_at=400.0)
    _start(ledger, "a", "s2", 40.0)
    assert [e.room_id for e in ledger.by_state(LedgerState.RECORDING)] == ["b", "a"]
    assert {e.session for e in ledger.by_room(BIZ, "a")} == {"s", "s2"}
    assert [e.room_id for e in ledger.nearing_cap(1000.0, 10)] == ["a"]
    assert [e.room_id for e in ledger.ending(500.0, 10)] == ["c"]
    assert ledger.ending(399.0, 10) == []
    due = ledger.due_for_check(35.0, 10)
    assert [e.checked_at for e in due] == sorted(e.checked_at for e in due)
    assert {(e.room_id, e.session) for e in due} == {("a", "s"), ("b", "s"), ("c", "s")}
    assert len(ledger.due_for_check(35.0, 2)) == 2


def test_count_open_counts_a_rule_s_starting_and_recording_sessions(ledger: Ledger) -> None:
    other = DECISION.model_copy(update={"rule": "other-rule"})
    assert ledger.count_open(DECISION.rule) == 0
    _start(ledger, "q1", "s", 1.0)  # starting
    _start(ledger, "q2", "s", 2.0)
    ledger.update(BIZ, "q2", "s", after_outcome(_started("2"), 2.0))  # recording
    _start(ledger, "q3", "s", 3.0)
    ledger.update(BIZ, "q3", "s", closing(BIZ, "q3", "s", 4.0, "closed"))  # stopping: freed
    ledger.update(BIZ, "q4", "s", starting(BIZ, "q4", "s", other, 5.0))  # another rule's
    assert ledger.count_open(DECISION.rule) == 2
    assert ledger.count_open("other-rule") == 1
    ledger.update(BIZ, "q2", "s", closing(BIZ, "q2", "s", 6.0, "closed"))
    ledger.update(BIZ, "q2", "s", stopped(7.0, "done"))
    assert ledger.count_open(DECISION.rule) == 1
    assert ledger.count_open("no-such-rule") == 0


def test_rule_page_pages_through_a_rule_s_counted_sessions_once_each(ledger: Ledger) -> None:
    other = DECISION.model_copy(update={"rule": "other-rule"})
    for i in range(7):
        _start(ledger, f"p{i}", "s", float(i))
    ledger.update(BIZ, "p1", "s", after_outcome(_started("1"), 9.0))  # recording: still in
    ledger.update(BIZ, "p2", "s", closing(BIZ, "p2", "s", 9.0, "closed"))  # stopping: out
    ledger.update(BIZ, "x", "s", starting(BIZ, "x", "s", other, 9.0))  # another rule's
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page, after = ledger.rule_page(DECISION.rule, 2, after)
        pages += 1
        assert len(page) <= 2
        seen += [e.room_id for e in page]
        if after is None:
            break
    assert sorted(seen) == ["p0", "p1", "p3", "p4", "p5", "p6"]
    assert len(seen) == len(set(seen))
    assert pages <= 4
    assert ledger.rule_page("no-such-rule", 10) == ([], None)


def test_callbacks_deduplicate(ledger: Ledger) -> None:
    _start(ledger, "cb", "s", 1.0)
    note = CallbackNote(task_id="7", event_type=3, seq=1, files=("f1.mp3",))
    first = ledger.update(BIZ, "cb", "s", callback(note, 2.0))
    second = ledger.update(BIZ, "cb", "s", callback(note, 3.0))
    assert first == second
    assert first is not None
    assert first.files == ("f1.mp3",)


def test_sqlite_ttl_purges_only_finished_entries(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "l.db", ttl_seconds=3600)
    _start(ledger, "open", "s", 0.0)
    _start(ledger, "done", "s", 0.0)
    ledger.update(BIZ, "done", "s", closing(BIZ, "done", "s", 1.0, "x"))
    assert ledger.purge_expired(10_000.0) == 0  # still stopping: the sweep needs it
    ledger.update(BIZ, "done", "s", stopped(2.0, "x"))
    assert ledger.purge_expired(3000.0) == 0  # not yet expired
    assert ledger.purge_expired(10_000.0) == 1
    assert ledger.get(BIZ, "done", "s") is None
    assert ledger.get(BIZ, "open", "s") is not None


def _bump(path: str, rounds: int) -> None:
    ledger = SQLiteLedger(path)
    for _ in range(rounds):
        ledger.update(
            BIZ,
            "shared",
            "s",
            lambda e: e.changed(e.updated_at, generation=e.generation + 1) if e else None,
        )


def test_sqlite_updates_from_several_processes_are_never_lost(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    _start(SQLiteLedger(path), "shared", "s", 0.0)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_bump, args=(path, 50)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    entry = SQLiteLedger(path).get(BIZ, "shared", "s")
    assert entry is not None
    assert entry.generation == 200


def test_store_urls() -> None:
    assert default_ledger_url("sqlite:///.local/idempotency.db") == "sqlite:///.local/ledger.db"
    assert default_ledger_url("dynamodb://idem") == "dynamodb://idem-ledger"
    with pytest.raises(LedgerUrlError, match="LEDGER_STORE"):
        default_ledger_url("redis://localhost:6379/0")
    with pytest.raises(LedgerUrlError, match="LEDGER_STORE"):
        build_ledger("postgres://x", 60)


def test_room_lookups_read_only_what_they_name(ledger: Ledger) -> None:
    _start(ledger, "lk", "trtc-1700000000000", 10.0)
    ledger.update(BIZ, "lk", "trtc-1700000000000", after_outcome(_started("41"), 11.0))
    for session, at in (("trtc-close-1700000000500", 12.0), ("trtc-close-1700000009000", 13.0)):
        ledger.update(BIZ, "lk", session, closing(BIZ, "lk", session, at, "dismissed"))
    _start(ledger, "lk", "window-a", 20.0)
    ledger.update(BIZ, "lk", "window-a", after_outcome(_started("41"), 21.0))  # shares the task
    skip = Decision(record=False, rule="s", reason="no", policy_version="v1")
    ledger.update(BIZ, "lk", "skipped", starting(BIZ, "lk", "skipped", skip, 30.0))
    newest = ledger.newest_session(BIZ, "lk", "trtc-close-")
    assert newest is not None
    assert newest.session == "trtc-close-1700000009000"
    assert ledger.newest_session(BIZ, "lk", "nothing-") is None
    assert [r.session for r in ledger.open_sessions(BIZ, "lk")] == [
        "window-a",
        "trtc-1700000000000",
    ]
    owners = ledger.task_sessions(BIZ, "41")
    assert [(r.room_id, r.session, r.closed) for r in owners] == [
        ("lk", "window-a", False),
        ("lk", "trtc-1700000000000", False),
    ]
    assert ledger.task_sessions(BIZ + 1, "41") == []  # another app's task of the same id
    ledger.update(BIZ, "lk", "window-a", closing(BIZ, "lk", "window-a", 40.0, "ended"))
    assert [r.session for r in ledger.open_sessions(BIZ, "lk")] == ["trtc-1700000000000"]
    assert [r.closed for r in ledger.task_sessions(BIZ, "41")] == [True, False]
    assert len(ledger.by_room(BIZ, "lk", limit=2)) == 2


def test_an_optimistic_write_from_a_stale_copy_never_loses_a_change(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Two adapters over one store: each writes from what it last saw; the stale one's
    condition fails, and its change is applied to the stored entry instead."""
    if isinstance(ledger, SQLiteLedger):
        other: Ledger = SQLiteLedger(ledger.path)
    else:
        import boto3

        from handler.adapters.ledger_dynamodb import DynamoDBLedger

        assert isinstance(ledger, DynamoDBLedger)
        resource = boto3.resource(
            "dynamodb",
            endpoint_url=ledger._table.meta.client.meta.endpoint_url,
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        other = DynamoDBLedger(ledger._table.name, client=resource)
    _start(ledger, "race", "s", 1.0)
    assert other.get(BIZ, "race", "s") is not None  # `other` remembers version 1
    ledger.update(BIZ, "race", "s", after_outcome(_started("5"), 2.0))  # version 2
    e = other.update(BIZ, "race", "s", closing(BIZ, "race", "s", 3.0, "closed"))
    assert e is not None
    assert (e.task_id, e.state) == ("5", LedgerState.STOPPING)  # both changes hold
