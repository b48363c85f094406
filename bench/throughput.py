"""A burst of room-created events against GME's rate limit at the deployed shape: do we reach it?

N SQS messages (distinct rooms, two BizIds under one credential) are processed by K worker
*processes*, each standing in for one Lambda instance (``maximumConcurrency`` 4 in
serverless.yml): each takes batches of B records (10) from one shared in-memory queue and hands
them to the real ``handler.entrypoints.worker.process_batch``, which runs a batch's records side by
side. They share one SQLite idempotency and pacing store, and the emulator enforces GME's limit, 20
requests per second per API and credential, with a round trip of L seconds on every call (half
before GME counts the request). A new room costs one StartRecord, so the best clean pace is the
fleet's own: GME_RATE_LIMIT_PER_SECOND 19 a second, 0.95 of 20. The burst runs once per L.

A message that fails (for instance on ``RequestLimitExceeded``) is redelivered the way SQS would
redeliver it, only sooner: after ``--redelivery-delay`` seconds (default 1 s) instead of a real
visibility timeout. The run stops when every room has its task, or at the deadline (30 s).

Verdicts per L, both read from the emulator's call log (``emu.calls()``):
  * accepted StartRecords per second at GME over the burst (from the first accepted StartRecord
    to the last), / 20 (target >= 0.95);
  * RequestLimitExceeded answers, all APIs (target 0).
The burst's wall time (first record in to last answer out, round trips included) is printed too.

    .venv/bin/python -m bench.throughput [-n EVENTS] [-k INSTANCES] [--batch-size B]
        [--latencies 0.05,0.3]
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager
from typing import Any

from bench._common import (
    Result,
    biz_id,
    env_float,
    env_int,
    header,
    report,
    room_id,
    sqs_event,
    sqs_record,
    stdout_to_devnull,
)

LIMIT_PER_SECOND = 20  # the emulator's default, and GME's documented limit per API
TARGET_RATIO = 0.95
TARGET_THROTTLED = 0
THROTTLED = "RequestLimitExceeded"
FUNCTION_TIMEOUT_MS = 30_000  # serverless.yml's workerTimeout


@dataclass
class Queue:
    """A tiny in-memory SQS shared by the instance processes (through a manager): messages
    become visible again after a failed delivery."""

    redelivery_delay: float
    visible: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    waiting: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    deliveries: collections.Counter[str] = field(default_factory=collections.Counter)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    outstanding: int = 0
    ready: int = 0
    opened: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self.visible.extend(records)
            self.outstanding += len(records)

    def mark_ready(self) -> None:
        with self.lock:
            self.ready += 1

    def ready_count(self) -> int:
        with self.lock:
            return self.ready

    def open(self) -> None:
        with self.lock:
            self.opened = True

    def receive(self, max_count: int) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self.lock:
            if not self.opened:
                return []
            due = [item for item in self.waiting if item[0] <= now]
            if due:
                self.waiting = [item for item in self.waiting if item[0] > now]
                self.visible.extend(record for _, record in sorted(due, key=lambda i: i[0]))
            batch = [self.visible.popleft() for _ in range(min(max_count, len(self.visible)))]
            for record in batch:
                self.deliveries[record["messageId"]] += 1
            return batch

    def settle(self, batch: list[dict[str, Any]], report: list[dict[str, Any]]) -> None:
        by_id = {record["messageId"]: record for record in batch}
        again = time.monotonic() + self.redelivery_delay
        with self.lock:
            for item in report:
                if item["ok"]:
                    self.outstanding -= 1
                else:
                    self.reasons[item["reason"].split(":", 2)[1].strip()] += 1
                    self.waiting.append((again, by_id[item["message_id"]]))

    def done(self) -> bool:
        with self.lock:
            return self.outstanding == 0

    def summary(self) -> tuple[dict[int, int], dict[str, int]]:
        with self.lock:
            return dict(collections.Counter(self.deliveries.values())), dict(self.reasons)


class QueueManager(BaseManager):
    pass


QueueManager.register("Queue", Queue)


def instance(queue: Any, batch_size: int, deadline: float) -> None:
    """One Lambda instance: its own process, SDK client, store connections and record threads.
    Configured from the environment it inherited."""
    from handler.bootstrap import app
    from handler.entrypoints import worker
    from handler.tools.local import LocalContext

    app.service()  # built before the burst, as a warm instance has it
    queue.mark_ready()
    with stdout_to_devnull():
        while not queue.done() and time.time() < deadline:
            batch = queue.receive(batch_size)
            if not batch:
                time.sleep(0.005)
                continue
            _, messages = worker.process_batch(
                sqs_event(batch), LocalContext("worker", FUNCTION_TIMEOUT_MS)
            )
            queue.settle(batch, messages)


def burst_records(count: int, tag: str) -> list[dict[str, Any]]:
    """Fresh rooms, alternately of two BizIds: one credential, one pace for both."""
    records = []
    for i in range(count):
        record = sqs_record(room_id(tag, i))
        body = json.loads(record["body"])
        body["biz_id"] = biz_id() + i % 2
        record["body"] = json.dumps(body)
        records.append(record)
    return records


def run_burst(args: argparse.Namespace, latency: float) -> list[Result]:
    from bench._common import handler_environment
    from emulator import GmeEmulator

    header(
        f"throughput: {args.events} rooms of 2 BizIds, {args.instances} instances x batches of "
        f"{args.batch_size} (records side by side), GME round trip {latency:g} s, emulator "
        f"limit {LIMIT_PER_SECOND}/s per API and credential"
    )
    spawn = multiprocessing.get_context("spawn")
    with (
        GmeEmulator(rate_limit_per_second=LIMIT_PER_SECOND, latency=latency) as emu,
        handler_environment(emu),
        QueueManager(ctx=spawn) as manager,
    ):
        queue: Any = manager.Queue(args.redelivery_delay)  # type: ignore[attr-defined]
        queue.put(burst_records(args.events, f"burst{int(latency * 1000)}"))
        deadline = time.time() + 60 + args.deadline  # start-up, then the burst's own deadline
        procs = [
            spawn.Process(target=instance, args=(queue, args.batch_size, deadline))
            for _ in range(args.instances)
        ]
        for proc in procs:
            proc.start()
        while queue.ready_count() < args.instances:
            if not all(p.is_alive() for p in procs):
                raise SystemExit("an instance process died during start-up")
            time.sleep(0.05)
        began = time.time()
        queue.open()
        for proc in procs:
            proc.join(args.deadline + 60)
        elapsed = time.time() - began
        calls = emu.calls()
        running = len(emu.tasks(running_only=True))
        deliveries, reasons = queue.summary()
    if any(p.exitcode for p in procs):
        raise SystemExit(f"instance processes failed: {[p.exitcode for p in procs]}")

    starts = sorted(c.at for c in calls if c.action == "StartRecord" and c.error_code is None)
    started = len(starts)
    span = starts[-1] - starts[0] if started > 1 else float("nan")
    throttled = collections.Counter(
        c.action for c in calls if c.error_code and c.error_code.startswith(THROTTLED)
    )
    other_errors = collections.Counter(
        f"{c.action}:{c.error_code}"
        for c in calls
        if c.error_code and not c.error_code.startswith(THROTTLED)
    )
    unfinished = args.events - started
    per_action = collections.Counter(c.action for c in calls)
    rate = started / span
    ratio = rate / LIMIT_PER_SECOND
    total_throttled = sum(throttled.values())

    status = "all rooms started" if not unfinished else f"DEADLINE HIT, {unfinished} not started"
    print(f"  wall time {elapsed:.2f} s ({status}); running tasks in the emulator: {running}")
    print(
        f"  GME calls: {len(calls)} ("
        + ", ".join(f"{a} {n}" for a, n in sorted(per_action.items()))
        + ")"
    )
    print(
        f"  accepted StartRecords: {started} in {span:.2f} s at GME -> {rate:.2f} per second "
        f"(over the wall time, round trips included: {started / elapsed:.2f})"
    )
    print(
        f"  {THROTTLED} answers: {total_throttled}"
        + (
            " (" + ", ".join(f"{a} {n}" for a, n in sorted(throttled.items())) + ")"
            if throttled
            else ""
        )
    )
    if other_errors:
        print("  other GME errors: " + ", ".join(f"{k} {n}" for k, n in other_errors.items()))
    print(
        "  deliveries per message: "
        + ", ".join(f"{d}x: {n}" for d, n in sorted(deliveries.items()))
        + f" (redelivery after {args.redelivery_delay:g} s)"
    )
    if reasons:
        print(
            "  failed deliveries by reason: "
            + ", ".join(f"{r} {n}" for r, n in collections.Counter(reasons).most_common())
        )
    if len(calls) >= 10_000:
        print("  WARNING: the emulator keeps only the last 10000 calls; counts are a lower bound")
    detail = (
        f"{started} starts in {span:.2f} s at GME (wall {elapsed:.2f} s), {args.instances} "
        f"instances x {args.batch_size}, L = {latency:g} s; {total_throttled} throttled; "
        f"{unfinished} unfinished"
    )
    return [
        report(
            Result(
                "throughput",
                f"StartRecords per second / {LIMIT_PER_SECOND} at L = {latency:g} s",
                ratio,
                TARGET_RATIO,
                ">=",
                detail,
            )
        ),
        report(
            Result(
                "throughput",
                f"{THROTTLED} answers at L = {latency:g} s",
                float(total_throttled),
                TARGET_THROTTLED,
                "<=",
                detail,
            )
        ),
    ]


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    parser.add_argument("-n", "--events", type=int, default=env_int("BENCH_THROUGHPUT_N", 200))
    parser.add_argument(
        "-k",
        "--instances",
        type=int,
        default=env_int("BENCH_THROUGHPUT_INSTANCES", 4),
        help="worker processes, each one Lambda instance (serverless.yml maximumConcurrency)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=env_int("BENCH_THROUGHPUT_BATCH", 10),
        help="records per process_batch call (serverless.yml workerBatchSize)",
    )
    parser.add_argument(
        "--latencies",
        default=os.environ.get("BENCH_THROUGHPUT_LATENCIES", "0.05,0.3"),
        help="comma-separated GME round trips in seconds; one burst each",
    )
    parser.add_argument(
        "--redelivery-delay",
        type=float,
        default=env_float("BENCH_THROUGHPUT_REDELIVERY", 1.0),
        help="seconds before a failed message is visible again (stands in for SQS's timeout)",
    )
    parser.add_argument(
        "--deadline", type=float, default=env_float("BENCH_THROUGHPUT_DEADLINE", 30.0)
    )
    args = parser.parse_args(argv)
    results: list[Result] = []
    for latency in (float(x) for x in args.latencies.split(",") if x.strip()):
        results += run_burst(args, latency)
    return results


if __name__ == "__main__":
    main()
