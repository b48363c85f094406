"""At studio scale: bursts, schedule windows, renewals and the sweep at GME's own limit.

The project's own code (worker record handler, policy, recorder with Powertools idempotency on
SQLite, SQLite ledger, the fleet-wide pace, the scheduler's planner and lifecycle steps) runs on
a virtual clock (`bench._virtual`), against the emulator's GME state in process with a round
trip of L seconds, in the deployed shape read from serverless.yml (`bench._stack`). Two figures
run for real instead: two BizIds under one credential (real SDK over loopback HTTP, real time)
and DynamoDB round trips per new room (moto_server). What is modelled and what is not:
bench/README.md, "scale".

    .venv/bin/python -m bench.scale [--rooms N] [--latency 0.1,0.3] [--only burst,...]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import _scale_lifecycle as lc
from bench import _stack
from bench._common import (
    Result,
    biz_id,
    env_int,
    event_body,
    header,
    report,
    room_id,
    sqs_event,
    sqs_record,
    stdout_to_devnull,
)
from bench._fleet import batch_runs_side_by_side
from bench._stack import THROTTLED, Shape, build_stack, deployed_shape
from bench._virtual import VirtualClock
from handler.domain.ratelimit import Pace

GME_LIMIT = 20  # StartRecords per second GME allows one credential
BURST_TARGET = 1.1
#: Seconds a real-time consumer thread waits before it looks at an empty queue again.
CONSUMER_POLL = 0.005


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else float("nan")


@dataclass(frozen=True)
class BurstRun:
    """What one burst did: when each room was created and started (virtual epoch seconds)."""

    t0: float
    give_up: float
    created: dict[str, float]
    started: dict[str, float]
    throttled: int
    dead_letters: int
    pace: Pace  # StartRecord's, as slowed for the jitter the gateway saw
    summary: str


def run_burst(
    latency: float, rooms: int, spread: float, shape: Shape, concurrent: bool
) -> BurstRun:
    """``rooms`` room-created events spread evenly over ``spread`` seconds, into the queue,
    through the deployed shape on the virtual clock, until every room started or give-up."""
    from handler.bootstrap import app

    clock = VirtualClock(time.time())
    t0 = clock.now()
    began = time.perf_counter()
    with build_stack(clock, latency) as gme, stdout_to_devnull():
        world = lc.World(clock, gme, shape, concurrent)
        created = world.rooms_arrive("scale", rooms, spread)
        give_up = t0 + spread + 10 * rooms / GME_LIMIT
        while len(created) < rooms or world.queue.pending():
            if clock.now() >= give_up or clock.failures:
                break
            clock.sleep(1.0)
        pace = app.gme().pace("StartRecord")
    if clock.failures:
        raise clock.failures[0]
    return BurstRun(
        t0=t0,
        give_up=give_up,
        created=created,
        started={room: at for room, at in gme.started_at.items() if room in created},
        throttled=gme.throttled,
        dead_letters=len(world.queue.dlq),
        pace=pace,
        summary=world.summary(began),
    )


def burst(
    latency: float, rooms: int, spread: float, shape: Shape, concurrent: bool
) -> list[Result]:
    """``rooms`` room-created events spread evenly over ``spread`` seconds, into the queue."""
    name = f"burst L={latency:g}s"
    header(
        f"scale / {name}: {rooms} rooms created within {spread:g} s, {shape.instances} workers x "
        f"batches of {shape.batch_size} ({'side by side' if concurrent else 'one by one'})"
    )
    run = run_burst(latency, rooms, spread, shape, concurrent)
    created, started = run.created, run.started
    last = max(started.values(), default=run.give_up) - run.t0
    ideal = max(rooms / GME_LIMIT, spread)  # the spread bounds small bursts
    ttr = [started[room] - created[room] for room in started]
    # The best any system could do: rooms started in arrival order at exactly GME's limit.
    best = [max(spread * i / rooms, i / GME_LIMIT) - spread * i / rooms for i in range(rooms)]
    ttr_target = round(BURST_TARGET * (p99(best) + latency), 1)
    missing = rooms - len(started)
    print(
        f"  last start {last:.1f} s after the first event (ideal {ideal:.0f} s); "
        f"{len(started)} started, {missing} not; {run.dead_letters} in the DLQ; "
        f"StartRecord paced at {run.pace.rate:.2f}/s by the end; {run.summary}"
    )
    detail = f"{rooms} rooms in {spread:g} s, L={latency:g}s, {shape.instances}x{shape.batch_size}"
    return [
        report(
            Result(
                "scale",
                f"{name}: last start / ({rooms} / {GME_LIMIT} s)",
                last / ideal if not missing else float("inf"),
                BURST_TARGET,
                "<=",
                detail,
            )
        ),
        report(
            Result(
                "scale",
                f"{name}: p99 time-to-record s (best possible {p99(best) + latency:.1f})",
                p99(ttr),
                ttr_target,
                "<=",
                detail,
            )
        ),
        report(Result("scale", f"{name}: throttled answers", run.throttled, 0, "<=", detail)),
    ]


def two_apps(rooms: int, latency: float, shape: Shape, side_by_side: bool) -> list[Result]:
    """Real time, real SDK over loopback HTTP: two BizIds under the emulator's one credential,
    every GME call ``latency`` long (half before GME counts it), ``shape.instances`` threads
    each running ``worker.process_batch`` on batches of ``shape.batch_size``; every record is a
    new room, so the pace is the only limit. Then the same rooms through the virtual model, to
    check it."""
    from bench._common import handler_environment
    from bench.throughput import Queue
    from emulator import GmeEmulator
    from emulator.state import RateLimiter
    from handler.bootstrap import app
    from handler.entrypoints import worker
    from handler.tools.local import LocalContext

    apps = (biz_id(), biz_id() + 1)
    header(
        f"scale / two BizIds {apps}, one credential: {rooms} new rooms, L={latency:g}s, real time"
    )
    queue = Queue(redelivery_delay=1.0)
    queue.put([sqs_record(room_id("apps", i), biz_id=apps[i % 2]) for i in range(rooms)])
    queue.open()
    emulated = GmeEmulator(rate_limit_per_second=GME_LIMIT, latency=latency)
    with emulated as emu, handler_environment(emu):
        app.service()
        deadline = time.monotonic() + 10 * rooms / GME_LIMIT

        def consume() -> None:
            while not queue.done() and time.monotonic() < deadline:
                batch = queue.receive(shape.batch_size)
                if not batch:
                    time.sleep(CONSUMER_POLL)
                    continue
                queue.settle(batch, worker.process_batch(sqs_event(batch), LocalContext("w"))[1])

        began = time.time()
        with stdout_to_devnull():
            threads = [threading.Thread(target=consume) for _ in range(shape.instances)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        calls = emu.calls()
    refused = sum(1 for c in calls if (c.error_code or "").startswith(THROTTLED))
    # GME counts per (action, credential), whichever BizId: replay what the emulator accepted
    # through that rule, in case this emulator counts differently.
    replay_clock = [0.0]
    limiter = RateLimiter(GME_LIMIT, lambda: replay_clock[0])
    over = 0
    for call in sorted((c for c in calls if c.error_code is None), key=lambda c: c.at):
        replay_clock[0] = call.at
        over += not limiter.allow((call.action, "the one credential"))
    starts = [c.at for c in calls if c.action == "StartRecord" and c.error_code is None]
    real_last = max(starts, default=began) + latency / 2 - began  # the last start's answer
    virtual_last = _virtual_twin(rooms, latency, shape, side_by_side, apps)
    print(
        f"  {len(starts)} of {rooms} started, the last answered after {real_last:.1f} s; "
        f"RequestLimitExceeded answers {refused}; accepted calls beyond {GME_LIMIT} in a rolling "
        f"second per action for the one credential {over}; the virtual model of the same run: "
        f"{virtual_last:.1f} s"
    )
    detail = f"{rooms} rooms over BizIds {apps[0]} and {apps[1]}, L={latency:g}s"
    check = virtual_last / real_last if len(starts) == rooms else float("inf")
    return [
        report(
            Result(
                "scale",
                "two BizIds, one credential: throttled or over-limit answers",
                refused + over,
                0,
                "<=",
                detail,
            )
        ),
        report(
            Result(
                "scale",
                "model check: |virtual / real time of the last start - 1|",
                abs(check - 1),
                0.15,
                "<=",
                f"{detail}: real {real_last:.1f} s, virtual {virtual_last:.1f} s",
            )
        ),
    ]


def _virtual_twin(
    rooms: int, latency: float, shape: Shape, side_by_side: bool, apps: tuple[int, int]
) -> float:
    """The real-time run on the virtual clock, with no store latency (the real run's stores are
    local SQLite files) and its consumers' poll: seconds until the last start's answer."""
    clock = VirtualClock(time.time())
    t0 = clock.now()
    with build_stack(clock, latency, store_latency=0.0) as gme, stdout_to_devnull():
        world = lc.World(clock, gme, shape, side_by_side, poll_gap=CONSUMER_POLL)
        for i in range(rooms):
            world.queue.send(event_body(room_id("twin", i), t0, biz_id=apps[i % 2]))
        while world.queue.pending() and clock.now() < t0 + 10 * rooms / GME_LIMIT:
            clock.sleep(0.5)
    return max(gme.started_at.values(), default=clock.now()) - t0


def round_trips(rooms: int) -> list[Result]:
    """Real time: ``worker.process_batch`` with the deployed stores (DynamoDB idempotency, pace
    and ledger) on moto_server behind a counting proxy, GME the emulator over the real SDK."""
    from bench._stack import scratch_app
    from emulator import GmeEmulator
    from handler.bootstrap import app
    from handler.entrypoints import worker
    from handler.tools.local import LocalContext
    from tests.ddb_counter import DynamoDBCounter
    from tests.servers import AWS_ENV, create_idempotency_table, moto_server

    header(f"scale / DynamoDB round trips: {rooms} new rooms, then their closes, one per batch")

    def one(room: str, session: str, kind: str) -> None:
        record = sqs_record(room, session=session, type=kind)
        _, report_ = worker.process_batch(sqs_event([record]), LocalContext("worker"))
        if not report_[0]["ok"]:
            raise RuntimeError(f"{kind} of {room} failed: {report_[0]['reason']}")

    with moto_server() as moto, DynamoDBCounter(moto.url) as counter, GmeEmulator() as emu:
        create_idempotency_table(moto, "scale-idempotency")
        env = {
            **AWS_ENV,
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL_DYNAMODB": counter.url,
            "IDEMPOTENCY_STORE": "dynamodb://scale-idempotency",
            "LEDGER_STORE": "dynamodb://scale-ledger",
            "ACTIVE_RECORDINGS": "ledger:",  # as serverless.yml deploys it
            "GME_ENDPOINT": emu.url,
        }
        with scratch_app(env), stdout_to_devnull():
            getattr(app.ledger(), "inner", app.ledger()).create_table()
            one(room_id("ddb", -1), "warm-up", "room.created")  # clients built, pace items made
            sessions = [(room_id("ddb", i), f"match-{i}") for i in range(rooms)]
            counter.reset()
            for room, session in sessions:
                one(room, session, "room.created")
            created = dict(counter.calls)
            counter.reset()
            for room, session in sessions:
                one(room, session, "room.closed")
            closed = dict(counter.calls)

    def show(what: str, calls: dict[tuple[str, str], int]) -> float:
        per = sum(calls.values()) / rooms
        parts = ", ".join(f"{op} {t} {n / rooms:g}" for (op, t), n in sorted(calls.items()))
        print(f"  per {what}: {per:g} ({parts})")
        return per

    per_room = show("new room", created)
    per_close = show("close (for information)", closed)
    detail = f"{rooms} rooms; per close {per_close:g}"
    return [report(Result("scale", "DynamoDB round trips per new room", per_room, 4, "<=", detail))]


def _in_tmp(run: Callable[[Path], list[Result]]) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="gme-scale-") as tmp:
        return run(Path(tmp))


FIGURES: dict[str, Callable[[argparse.Namespace, Shape], list[Result]]] = {
    "burst": lambda a, shape: [
        r for latency in a.latency for r in burst(latency, a.rooms, a.spread, shape, a.side_by_side)
    ],
    "windows": lambda a, shape: _in_tmp(
        lambda tmp: [lc.windows(a.windows, a.lifecycle_latency, shape, a.side_by_side, tmp)]
    ),
    "renewal": lambda a, shape: _in_tmp(
        lambda tmp: [lc.renewal(a.tasks, a.lifecycle_latency, shape, a.side_by_side, tmp)]
    ),
    "sweep": lambda a, shape: [
        lc.full_sweep(a.sessions, a.lifecycle_latency, shape, a.side_by_side)
    ],
    "apps": lambda a, shape: two_apps(a.app_rooms, a.latency[0], shape, a.side_by_side),
    "ddb": lambda a, shape: round_trips(a.ddb_rooms),
}


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--rooms", type=int, default=env_int("BENCH_SCALE_ROOMS", 5000))
    parser.add_argument("--ddb-rooms", type=int, default=env_int("BENCH_SCALE_DDB_ROOMS", 20))
    parser.add_argument("--app-rooms", type=int, default=env_int("BENCH_SCALE_APP_ROOMS", 300))
    parser.add_argument("--windows", type=int, default=env_int("BENCH_SCALE_WINDOWS", 2000))
    parser.add_argument("--tasks", type=int, default=env_int("BENCH_SCALE_TASKS", 5000))
    parser.add_argument("--sessions", type=int, default=env_int("BENCH_SCALE_SESSIONS", 50_000))
    parser.add_argument(
        "--lifecycle-latency",
        type=float,
        default=0.3,
        help="GME round trip L for the windows, renewal and sweep figures (seconds)",
    )
    parser.add_argument("--spread", type=float, default=60.0, help="seconds the burst spans")
    parser.add_argument(
        "--latency",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[0.1, 0.3],
        help="GME round trips L to run the burst with, comma-separated seconds",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=_stack.JITTER,
        help="how far the way in to GME strays from L/2, as a share of it (default 0.2)",
    )
    parser.add_argument("--only", type=lambda v: v.split(","), default=list(FIGURES))
    args = parser.parse_args(argv)
    _stack.JITTER = args.jitter
    shape = deployed_shape()
    args.side_by_side = batch_runs_side_by_side(shape.batch_size)
    print(
        f"deployed shape (serverless.yml): {shape}; the worker runs a batch's records "
        + ("side by side" if args.side_by_side else "one after another")
    )
    results: list[Result] = []
    for name in args.only:
        results += FIGURES[name](args, shape)
    return results


if __name__ == "__main__":
    main()
