"""Per-event cost of the whole worker path, as a multiple of the bare SDK calls it must make.

Full path: ``handler.worker.process_batch`` on an SQS event holding one fresh room (parse, policy,
Powertools idempotency on SQLite, DescribeTaskInfo + StartRecord over HTTP to the emulator,
logging). Bare: the official SDK's ``GmeClient`` (one instance, reused as in production) calling
StartRecord alone, and DescribeTaskInfo + StartRecord back to back, against the same emulator.

The full path makes two GME calls, so the verdict uses the bare *pair*; the ratio to a single
StartRecord is printed for reference. Samples are interleaved (full, start, pair, in rotating
order) so that machine noise hits all three alike. The emulator's rate limit is off.

    .venv/bin/python -m bench.overhead [-n EVENTS] [--warmup W]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
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

TARGET = 1.5
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


def bare_calls(client: Any) -> tuple[Callable[[str], None], Callable[[str], None]]:
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

    def describe_then_start(room: str) -> None:
        req = models.DescribeTaskInfoRequest()
        req.BizId, req.RoomId = biz, room
        if client.DescribeTaskInfo(req).TaskId is not None:
            raise RuntimeError("fresh room already has a task")
        start(room)

    return start, describe_then_start


def full_path() -> Callable[[dict[str, Any]], None]:
    from handler import worker
    from handler.local import LocalContext

    def run(event: dict[str, Any]) -> None:
        response, messages = worker.process_batch(event, LocalContext("worker"))
        if response.get("batchItemFailures") or messages[0]["outcome"]["status"] != "started":
            raise RuntimeError(f"worker path did not start a recording: {messages}")

    return run


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument("-n", "--events", type=int, default=env_int("BENCH_OVERHEAD_N", 300))
    parser.add_argument(
        "--warmup", type=int, default=env_int("BENCH_OVERHEAD_WARMUP", 30), help="per path"
    )
    args = parser.parse_args(argv)

    from bench._common import handler_environment
    from emulator import GmeEmulator

    header(f"overhead: worker path vs bare SDK calls ({args.events} events, rate limit off)")
    full: list[float] = []
    start: list[float] = []
    pair: list[float] = []
    with GmeEmulator(rate_limit_per_second=0) as emu, handler_environment(emu):
        bare_start, bare_pair = bare_calls(bare_client(emu.endpoint))
        run_full = full_path()
        clock = time.perf_counter
        index = 0

        def sample(kind: str, sink: list[float] | None) -> None:
            nonlocal index
            index += 1
            room = room_id(kind, index)
            if kind == "full":
                event = sqs_event([sqs_record(room)])  # built outside the timed part
                began = clock()
                run_full(event)
            else:
                fn = bare_start if kind == "start" else bare_pair
                began = clock()
                fn(room)
            elapsed = clock() - began
            if sink is not None:
                sink.append(elapsed)

        sinks = {"full": full, "start": start, "pair": pair}
        order = ["full", "start", "pair"]
        with stdout_to_devnull():
            for _ in range(args.warmup):
                for kind in order:
                    sample(kind, None)
            for i in range(args.events):
                for kind in order[i % 3 :] + order[: i % 3]:
                    sample(kind, sinks[kind])
        tasks = len(emu.tasks(running_only=True))
    expected = (args.warmup + args.events) * 3
    if tasks != expected:
        raise SystemExit(f"expected {expected} running tasks in the emulator, found {tasks}")

    for label, values in (
        ("full worker path (describe + start)", full),
        ("bare SDK StartRecord", start),
        ("bare SDK DescribeTaskInfo + StartRecord", pair),
    ):
        print(f"  {label:40s} median {ms(median(values))}  p95 {ms(p95(values))}")
    vs_start = median(full) / median(start)
    vs_pair = median(full) / median(pair)
    print(
        f"  median ratio vs bare StartRecord: {vs_start:.2f} (not like for like: the worker "
        "path makes 2 GME calls, the bare path 1)"
    )
    print(f"  p95 ratio vs bare pair: {p95(full) / p95(pair):.2f}")
    print("  verdict uses the median ratio vs the bare describe+start pair (same 2 GME calls):")
    return [
        report(
            Result(
                "overhead",
                "worker path / bare describe+start (median)",
                vs_pair,
                TARGET,
                "<=",
                f"full {ms(median(full))} p95 {ms(p95(full))}; pair {ms(median(pair))} "
                f"p95 {ms(p95(pair))}; start {ms(median(start))} p95 {ms(p95(start))}; "
                f"vs single StartRecord {vs_start:.2f}",
            )
        )
    ]


if __name__ == "__main__":
    main()
