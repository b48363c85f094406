"""Shared request schedules (GCRA, see ``handler.domain.ratelimit``) in the idempotency store.

The schedule lives in the same store family as the idempotency records, so a deployment needs
nothing new: the SQLite file (table ``gme_rate``), the DynamoDB table (items ``id =
gme-autorecord.rate#<action>#<credential>#<region>``, a conditional write per slot or for
several, TTL ``expiration``) or Redis (the same key, one Lua script per slot).
``<credential>`` is a hash of the SecretId, never the SecretId itself
(``handler.domain.ratelimit.credential_tag``). Each implementation makes "read tat, compute,
store new tat" atomic against every other worker. Clocks: the caller's wall clock; Lambda hosts
are NTP-synchronised to a few milliseconds (the pace's jitter tolerance is in
``handler.domain.ratelimit.Pace``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from handler.adapters.sqlite_files import ThreadConnections
from handler.adapters.stores import DynamoDBStore, RedisStore, SQLiteStore, parse_store_url
from handler.domain.ratelimit import Pace, reserve, reserve_each

KEY_PREFIX = "gme-autorecord.rate#"
KEY_TTL_SECONDS = 3600  # a schedule idle for an hour is in the past anyway


class SlotStore(Protocol):
    """Reserve the next slot of ``key``: its start (epoch seconds), or None if none starts within
    ``max_wait`` seconds (then nothing is reserved). Stores keep it under ``KEY_PREFIX + key``.
    ``pace`` is the configured one; a caller may reserve at a slower one of its own (the
    gateway does where it sees arrival jitter, ``handler.domain.ratelimit.Pace.within``)."""

    pace: Pace

    def reserve(self, key: str, max_wait: float, pace: Pace | None = None) -> float | None: ...


class SQLiteSlots:
    """Schedules in a table of the SQLite idempotency file (one write transaction per slot)."""

    def __init__(self, path: str | os.PathLike[str], pace: Pace) -> None:
        self.pace = pace
        self._files = ThreadConnections(
            path, ("CREATE TABLE IF NOT EXISTS gme_rate (id TEXT PRIMARY KEY, tat REAL NOT NULL)",)
        )

    def _connection(self) -> sqlite3.Connection:
        return self._files.get()

    def reserve(self, key: str, max_wait: float, pace: Pace | None = None) -> float | None:
        key = KEY_PREFIX + key
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # the write lock first: no two workers read the same tat
        try:
            row = conn.execute("SELECT tat FROM gme_rate WHERE id = ?", (key,)).fetchone()
            got = reserve(row[0] if row else 0.0, time.time(), pace or self.pace, max_wait)
            if got is not None:
                conn.execute(
                    "INSERT INTO gme_rate (id, tat) VALUES (?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET tat = excluded.tat",
                    (key, got[0]),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return None if got is None else got[1]


@dataclass
class _Ask:
    """One caller's request for a slot, answered by whichever caller writes for the key."""

    pace: Pace
    max_wait: float
    done: bool = False
    start: float | None = None


@dataclass
class _Turns:
    """The callers of one key in one process: one writes at a time, for all that wait."""

    writer: threading.Lock = field(default_factory=threading.Lock)
    guard: threading.Lock = field(default_factory=threading.Lock)
    waiting: list[_Ask] = field(default_factory=list)


class DynamoDBSlots:
    """Schedules as items of the idempotency table: one conditional write per slot, or fewer.

    The write is conditioned on the ``tat`` this process last saw for the key (what it last
    wrote, or what a refused write showed it), or on there being none yet for a key it never
    saw, so an uncontended slot costs one request and no read. A lost race (another process
    wrote in between: ConditionalCheckFailed) asks for the item as it stands
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) and goes again from it, still without a
    read. ``tat`` is stored as a decimal string with microseconds and kept as that string, so
    the condition compares exactly what was stored.

    The threads of one process (a worker batch's records) take the slots of a key in turns, and
    a turn takes a slot for every thread that came while the one before was being written: one
    write for all of them (``handler.domain.ratelimit.reserve_each``), where separate writes
    from one value would all but one be refused. A value seen is never later than the stored one
    (every write moves ``tat`` forward; TTL removes only an item an hour idle), so slots it
    already puts beyond every caller's ``max_wait`` are refused without a request.
    """

    def __init__(self, table_name: str, pace: Pace, client: Any = None) -> None:
        self.table_name = table_name
        self.pace = pace
        if client is None:
            import boto3  # lazy: only DynamoDB deployments pay for it

            client = boto3.client("dynamodb")
        self._client = client
        #: The stored ``tat`` string last seen per key; None: none seen, or the item has none.
        self._seen: dict[str, str | None] = {}
        self._turns: dict[str, _Turns] = {}
        self._turns_guard = threading.Lock()

    def reserve(self, key: str, max_wait: float, pace: Pace | None = None) -> float | None:
        key = KEY_PREFIX + key
        with self._turns_guard:
            turns = self._turns.setdefault(key, _Turns())
        ask = _Ask(pace or self.pace, max_wait)
        with turns.guard:
            turns.waiting.append(ask)
        with turns.writer:
            if ask.done:  # taken by the turn before, with its own
                return ask.start
            with turns.guard:
                asks, turns.waiting = turns.waiting, []
            try:
                starts = self._write(key, [(a.pace, a.max_wait) for a in asks])
            except BaseException:
                with turns.guard:  # the others go again, in turns of their own
                    turns.waiting[:0] = [a for a in asks if a is not ask]
                raise
            for each, start in zip(asks, starts, strict=True):
                each.start, each.done = start, True
        return ask.start

    def _write(self, key: str, asks: list[tuple[Pace, float]]) -> list[float | None]:
        """Move ``key``'s tat past a slot for each caller (one request when uncontended)."""
        exc_type = self._client.exceptions.ConditionalCheckFailedException
        old = self._seen.get(key)
        while True:
            now = time.time()
            tat, starts = reserve_each(float(old) if old else 0.0, now, asks)
            if all(start is None for start in starts):
                return starts
            new = f"{tat:.6f}"
            condition: dict[str, Any] = (
                {"ConditionExpression": "attribute_not_exists(tat)"}
                if old is None
                else {
                    "ConditionExpression": "tat = :old",
                    "ExpressionAttributeValues": {":old": {"N": old}},
                }
            )
            try:
                self._client.put_item(
                    TableName=self.table_name,
                    Item={
                        "id": {"S": key},
                        "tat": {"N": new},
                        "expiration": {"N": str(int(now) + KEY_TTL_SECONDS)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **condition,
                )
            except exc_type as exc:  # another process took a slot: go on from its tat
                item = exc.response.get("Item") or {}
                old = item["tat"]["N"] if "tat" in item else None
                self._seen[key] = old
                continue
            self._seen[key] = new
            return starts


# Atomic inside Redis: read tat, compute the slot, store the new tat (with a TTL).
_LUA_RESERVE = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local base = math.max(tat, now)
local start = math.max(now, base - (burst - 1) * interval)
if start - now > max_wait then return false end
redis.call('SET', KEYS[1], string.format('%.6f', base + interval), 'EX', tonumber(ARGV[5]))
return string.format('%.6f', start)
"""


class RedisSlots:
    """Schedules as Redis strings updated by one Lua script (same arithmetic as ``reserve``)."""

    def __init__(self, client: Any, pace: Pace) -> None:
        self.pace = pace
        self._script = client.register_script(_LUA_RESERVE)

    def reserve(self, key: str, max_wait: float, pace: Pace | None = None) -> float | None:
        pace = pace or self.pace
        args = [f"{time.time():.6f}", repr(pace.interval), pace.burst, repr(max_wait)]
        answer = self._script(keys=[KEY_PREFIX + key], args=[*args, KEY_TTL_SECONDS])
        return None if answer is None else float(answer)


def build_slot_store(store_url: str, pace: Pace) -> SlotStore:
    """The schedule store of the family ``IDEMPOTENCY_STORE`` names (no connection opened yet)."""
    spec = parse_store_url(store_url)
    if isinstance(spec, SQLiteStore):
        return SQLiteSlots(spec.path, pace)
    if isinstance(spec, DynamoDBStore):
        return DynamoDBSlots(spec.table_name, pace)
    assert isinstance(spec, RedisStore)
    import redis

    client = redis.Redis(
        host=spec.host,
        port=spec.port,
        db=spec.db,
        username=spec.username or None,
        password=spec.password or None,
        ssl=spec.ssl,
        decode_responses=True,
    )
    return RedisSlots(client, pace)
