"""Per-event cost of the whole worker path, as a multiple of the one bare SDK call it must make.

Full path: ``handler.entrypoints.worker.process_batch`` on an SQS event holding one fresh room
(parse, policy, Powertools idempotency, the recording ledger, a rate-limit slot in the same store,
StartRecord over HTTP to the emulator, logging). A new room costs one GME call (StartRecord first),
so the verdict compares it with the official SDK's ``GmeClient`` (one instance, reused as in
production) making that StartRecord alone against the same emulator. Measured on each store:
SQLite (the verdict), DynamoDB on a local moto_server and Redis on a local redis-server (figures
for information: moto is a Python stand-in, far slower than DynamoDB, so its figure is an upper
bound). Samples are interleaved (full, bare, in alternating order) so that machine noise hits
both alike. The emulator's rate limit is off and the client's limiter runs at 1000/s: its
bookkeeping is measured, but it never has to wait.

    .venv/bin/python -m bench.overhead [-n EVENTS] [--warmup W] [--stores sqlite,dynamodb,redis]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench._common import (
    Result,
    biz_id,
    env_int,
    header,
    median,
    ms,
    p95,
    report,
    room_id,
    sqs_event,
    sqs_record,
    stdout_to_devnull,
)

TARGET = 1.3
BLOCKED_USER = "observer-bot"  # what policies/default.yaml's ranked-mixed rule sends


def bare_client(endpoint: str) -> Any:
    """The SDK client configured like ``TencentGme`` builds it (timeout, language, http)."""
    from tencentcloud.common.credential import Credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.gme.v20180711 import gme_client

    from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

    http = HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=5)
    profile = ClientProfile(httpProfile=http, language="en-US")
    return gme_client.GmeClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), "", profile)


def bare_start(client: Any) -> Callable[[str], None]:
    from tencentcloud.gme.v20180711 import models

    biz = biz_id()

    def start(room: str) -> None:
        req = models.StartRecordRequest()
        req.BizId, req.RoomId, req.RecordMode = biz, room, 2
        subs = models.SubscribeRecordUserIds()
        subs.UnSubscribeUserIds = [BLOCKED_USER]
        req.SubscribeRecordUserIds = subs
        if client.StartRecord(req).TaskId is None:
            raise RuntimeError("bare StartRecord returned no TaskId")

    return start


def full_path() -> Callable[[dict[str, Any]], None]:
    from handler.entrypoints import worker
    from handler.tools.local import LocalContext

    def run(event: dict[str, Any]) -> None:
        response, messages = worker.process_batch(event, LocalContext("worker"))
        if response.get("batchItemFailures") or messages[0]["outcome"]["status"] != "started":
            raise RuntimeError(f"worker path did not start a recording: {messages}")

    return run


LIMITER_ENV = {"GME_RATE_LIMIT_PER_SECOND": "1000", "GME_RATE_LIMIT_BURST": "100"}
STORES = ("sqlite", "dynamodb", "redis")


@contextlib.contextmanager
def store_service(kind: str) -> Iterator[tuple[str | None, dict[str, str]]]:
    """``(IDEMPOTENCY_STORE, extra environment)`` for one store family, its server started."""
    if kind == "sqlite":
        yield None, {}
        return
    from tests.servers import AWS_ENV, create_idempotency_table, moto_server, redis_server

    if kind == "dynamodb":
        with moto_server() as moto:
            create_idempotency_table(moto, "bench-idempotency")
            yield "dynamodb://bench-idempotency", {**AWS_ENV, "AWS_ENDPOINT_URL_DYNAMODB": moto.url}
        return
    with redis_server() as url:
        yield url, {}


def measure(emu: Any, kind: str, events: int, warmup: int) -> tuple[list[float], list[float]]:
    """Interleaved samples of the full worker path and the bare SDK StartRecord on one store."""
    from bench._common import handler_environment

    full: list[float] = []
    start: list[float] = []
    with (
        store_service(kind) as (store, extra),
        handler_environment(emu, store, {**LIMITER_ENV, **extra}),
    ):
        bare = bare_start(bare_client(emu.endpoint))
        run_full = full_path()
        clock = time.perf_counter
        index = 0

        def sample(path: str, sink: list[float] | None) -> None:
            nonlocal index
            index += 1
            room = room_id(f"{kind}-{path}", index)
            if path == "full":
                event = sqs_event([sqs_record(room)])  # built outside the timed part
                began = clock()
                run_full(event)
            else:
                began = clock()
                bare(room)
            elapsed = clock() - began
            if sink is not None:
                sink.append(elapsed)

        sinks = {"full": full, "start": start}
        order = ["full", "start"]
        with stdout_to_devnull():
            for _ in range(warmup):
                for path in order:
                    sample(path, None)
            for i in range(events):
                for path in order[i % 2 :] + order[: i % 2]:
                    sample(path, sinks[path])
    return full, start


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument("-n", "--events", type=int, default=env_int("BENCH_OVERHEAD_N", 300))
    parser.add_argument(
        "--warmup", type=int, default=env_int("BENCH_OVERHEAD_WARMUP", 30), help="per path"
    )
    parser.add_argument(
        "--stores",
        default=os.environ.get("BENCH_OVERHEAD_STORES", ",".join(STORES)),
        help="comma-separated: sqlite (the verdict), dynamodb (moto_server), redis (redis-server)",
    )
    parser.add_argument(
        "--other-n",
        type=int,
        default=env_int("BENCH_OVERHEAD_OTHER_N", 100),
        help="timed events per path for the stores other than sqlite",
    )
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
    if "sqlite" not in kinds or set(kinds) - set(STORES):
        parser.error(f"--stores must include sqlite and name only {', '.join(STORES)}")
    if "redis" in kinds and shutil.which("redis-server") is None:
        print("  (redis-server is not installed: the redis figure is skipped)")
        kinds.remove("redis")

    from emulator import GmeEmulator

    header(
        f"overhead: worker path vs bare SDK calls ({args.events} events on sqlite, "
        f"{args.other_n} on {', '.join(k for k in kinds if k != 'sqlite') or 'no other store'}; "
        "emulator rate limit off, client limiter on at 1000/s so it never waits)"
    )
    ratios: dict[str, float] = {}
    figures: dict[str, tuple[list[float], list[float]]] = {}
    expected = 0
    with GmeEmulator(rate_limit_per_second=0) as emu:
        for kind in kinds:
            n = args.events if kind == "sqlite" else args.other_n
            figures[kind] = measure(emu, kind, n, args.warmup)
            expected += (args.warmup + n) * 2
        tasks = len(emu.tasks(running_only=True))
    if tasks != expected:
        raise SystemExit(f"expected {expected} running tasks in the emulator, found {tasks}")

    for kind, (full, start) in figures.items():
        ratios[kind] = median(full) / median(start)
        print(f"  [{kind}]")
        for label, values in (("full worker path", full), ("bare SDK StartRecord", start)):
            print(f"    {label:24s} median {ms(median(values))}  p95 {ms(p95(values))}")
        print(f"    median ratio vs bare StartRecord: {ratios[kind]:.2f}")
    full, start = figures["sqlite"]
    others = "; ".join(f"{k} {r:.2f}" for k, r in ratios.items() if k != "sqlite")
    print("  verdict: sqlite, median ratio vs the bare StartRecord (the same one GME call)")
    return [
        report(
            Result(
                "overhead",
                "worker path / bare StartRecord (median, sqlite)",
                ratios["sqlite"],
                TARGET,
                "<=",
                f"full {ms(median(full))} p95 {ms(p95(full))}; start {ms(median(start))} "
                f"p95 {ms(p95(start))}; other stores (for information): "
                f"{others or 'none measured'}",
            )
        )
    ]


if __name__ == "__main__":
    main()
