"""A burst of room-created events against GME's rate limit: how close to it do we get, cleanly?

N SQS messages (distinct rooms) are processed by ``handler.worker.process_batch`` from K threads
sharing one process (so one GME client and one idempotency store), against the emulator enforcing
its default limit: 20 requests per second per API per BizId, like GME. Every event needs one
DescribeTaskInfo and one StartRecord, so the best possible pace is 20 StartRecords per second.
The worker's own limiter (GME_RATE_LIMIT_PER_SECOND 18, burst 2, schedules in the SQLite store)
paces both APIs, so the clean best with the defaults is just above 18 per second (ratio ~0.905).

A message that fails (for instance on ``RequestLimitExceeded``) is redelivered the way SQS would
redeliver it, only sooner: after ``--redelivery-delay`` seconds (default 1 s) instead of a real
visibility timeout of tens of seconds. The run stops when every room has its task, or at the
deadline (default 30 s).

Two verdicts, both read from the emulator's call log (``emu.calls()``):
  * achieved StartRecords per second / 20 over the burst's wall time (target >= 0.9);
  * RequestLimitExceeded answers, all APIs (target 0).

    .venv/bin/python -m bench.throughput [-n EVENTS] [-k THREADS] [--batch-size B]
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench._common import (
    Result,
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
TARGET_RATIO = 0.9
TARGET_THROTTLED = 0
THROTTLED = "RequestLimitExceeded"


@dataclass
class Queue:
    """A tiny in-memory SQS: messages become visible again after a failed delivery."""

    redelivery_delay: float
    visible: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    waiting: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    deliveries: collections.Counter[str] = field(default_factory=collections.Counter)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    outstanding: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self.visible.extend(records)
            self.outstanding += len(records)

    def receive(self, max_count: int) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self.lock:
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


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    parser.add_argument("-n", "--events", type=int, default=env_int("BENCH_THROUGHPUT_N", 200))
    parser.add_argument("-k", "--threads", type=int, default=env_int("BENCH_THROUGHPUT_THREADS", 4))
    parser.add_argument(
        "--batch-size",
        type=int,
        default=env_int("BENCH_THROUGHPUT_BATCH", 10),
        help="records per process_batch call (SQS's default batch size is 10)",
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

    from bench._common import handler_environment
    from emulator import GmeEmulator
    from handler import worker
    from handler.local import LocalContext

    header(
        f"throughput: {args.events} rooms, {args.threads} threads, batches of "
        f"{args.batch_size}, emulator limit {LIMIT_PER_SECOND}/s per API per BizId"
    )
    queue = Queue(args.redelivery_delay)
    queue.put([sqs_record(room_id("burst", i)) for i in range(args.events)])
    errors: list[BaseException] = []

    with GmeEmulator(rate_limit_per_second=LIMIT_PER_SECOND) as emu, handler_environment(emu):
        # Build the adapters (settings, policy, SDK client, store) before the clock starts.
        from handler import app

        app.service()
        began = time.perf_counter()
        deadline = began + args.deadline

        def consume() -> None:
            try:
                while not queue.done() and time.perf_counter() < deadline:
                    batch = queue.receive(args.batch_size)
                    if not batch:
                        time.sleep(0.005)
                        continue
                    _, messages = worker.process_batch(sqs_event(batch), LocalContext("worker"))
                    queue.settle(batch, messages)
            except BaseException as exc:  # surfaced after the join
                errors.append(exc)

        threads = [threading.Thread(target=consume, daemon=True) for _ in range(args.threads)]
        with stdout_to_devnull():
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - began
        calls = emu.calls()
        running = len(emu.tasks(running_only=True))
    if errors:
        raise errors[0]

    started = sum(1 for c in calls if c.action == "StartRecord" and c.error_code is None)
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
    deliveries = collections.Counter(queue.deliveries.values())
    rate = started / elapsed
    ratio = rate / LIMIT_PER_SECOND
    total_throttled = sum(throttled.values())

    status = "all rooms started" if not unfinished else f"DEADLINE HIT, {unfinished} not started"
    print(f"  wall time {elapsed:.2f} s ({status}); running tasks in the emulator: {running}")
    print(
        f"  GME calls: {len(calls)} ("
        + ", ".join(f"{a} {n}" for a, n in sorted(per_action.items()))
        + ")"
    )
    print(f"  successful StartRecords: {started} -> {rate:.2f} per second")
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
        + f" (redelivery after {args.redelivery_delay:g} s; real SQS waits the visibility"
        " timeout and counts each one toward maxReceiveCount)"
    )
    if queue.reasons:
        print(
            "  failed deliveries by reason: "
            + ", ".join(f"{r} {n}" for r, n in queue.reasons.most_common())
        )
    if len(calls) >= 10_000:
        print("  WARNING: the emulator keeps only the last 10000 calls; counts are a lower bound")
    detail = (
        f"{started} starts in {elapsed:.2f} s with {args.threads} threads; "
        f"{total_throttled} throttled; {unfinished} unfinished"
    )
    return [
        report(
            Result(
                "throughput",
                f"StartRecords per second / {LIMIT_PER_SECOND}",
                ratio,
                TARGET_RATIO,
                ">=",
                detail,
            )
        ),
        report(
            Result(
                "throughput",
                f"{THROTTLED} answers",
                float(total_throttled),
                TARGET_THROTTLED,
                "<=",
                detail,
            )
        ),
    ]


if __name__ == "__main__":
    main()
