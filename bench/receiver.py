"""Receiver benchmark: what one webhook request costs in process, against merely parsing its JSON.

    .venv/bin/python -m bench.receiver        (RECEIVER_REQUESTS=5000 by default)

Measures, per request, the Lambda entry `handler.entrypoints.webhook.handler` in queue mode:
routing, Standard Webhooks verification, bounded parsing, the once-per-event-id idempotency record
(the real SQLite store, in a temporary file) and the publish to an in-memory queue client handed to
the real `SqsPublisher` (so no network time is counted). Every request carries a new event id,
so each one takes the full enqueue path; none is a cheap duplicate. The same body is also timed
through `json.loads` alone. Printed: p50 and p99 of both, the ratio of the p50s, and a verdict
for the target p99 < 2 ms. Standalone (standard library and the project only); its result
lines follow the `bench/` harness protocol when BENCH_REPORT_RESULTS is set.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handler.adapters.queue import SqsPublisher  # noqa: E402
from handler.bootstrap import app  # noqa: E402 - the path above makes `handler` importable
from handler.domain.signatures import sign_standard_webhook, standard_webhook_key  # noqa: E402
from handler.entrypoints import webhook  # noqa: E402
from handler.ingress.enqueue import Enqueuer  # noqa: E402
from handler.ingress.ingest import Route, ingest  # noqa: E402
from handler.tools.local import LocalContext, http_event  # noqa: E402

SECRET = "whsec_" + "YmVuY2gtcmVjZWl2ZXIta2V5"  # "bench-receiver-key", public
TARGET_P99_MS = 2.0
RESULT_PREFIX = "BENCH-RESULT "


class MemorySqs:
    """Stands in for the boto3 SQS client: keeps the messages, answers like SQS."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send_message(self, **message: Any) -> dict[str, str]:
        self.messages.append(message)
        return {"MessageId": str(uuid.uuid4())}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-int(pct * 100) * len(ordered) // 10_000))  # nearest rank
    return ordered[rank - 1]


def report(metric: str, value: float, target: float, op: str, detail: str = "") -> bool:
    passed = value <= target if op == "<=" else value >= target
    print(f"  => {metric} = {value:.3f} (target {op} {target:g}): {'PASS' if passed else 'MISS'}")
    if os.environ.get("BENCH_REPORT_RESULTS"):
        line = {"bench": "receiver", "metric": metric, "value": value, "target": target,
                "op": op, "detail": detail}  # fmt: skip
        print(RESULT_PREFIX + json.dumps(line), flush=True)
    return passed


def requests(count: int) -> list[tuple[dict[str, Any], bytes]]:
    doc = json.loads((ROOT / "events" / "room-created.json").read_text())
    key = standard_webhook_key(SECRET)
    now = int(time.time())
    out = []
    for i in range(count):
        body = json.dumps({**doc, "id": f"evt-bench-{i}", "session": f"s-{i}"}).encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": f"msg-{i}",
            "webhook-timestamp": str(now),
            "webhook-signature": sign_standard_webhook(key, f"msg-{i}", now, body),
        }
        out.append((http_event("POST", "/v1/room-events", headers, body), body))
    return out


def main() -> int:
    count = int(os.environ.get("RECEIVER_REQUESTS") or 5000)
    warmup = min(500, count)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            WEBHOOK_SECRETS=SECRET,
            TRTC_CALLBACK_KEY="1400000000:bench-only",
            GME_CALLBACK_KEY="bench-only",
            IDEMPOTENCY_STORE=f"sqlite:///{tmp}/bench.db",
            RECORD_QUEUE_URL="https://sqs.local/000000000000/bench",
            POWERTOOLS_LOG_LEVEL="ERROR",
        )
        app.reset()
        from handler.adapters.stores import build_persistence_layer

        queue = MemorySqs()
        settings = app.settings()
        enqueuer = Enqueuer(
            SqsPublisher(settings.record_queue_url or "", client=queue),
            build_persistence_layer(settings.idempotency_store),
            settings.idempotency_expiry_seconds,
        )
        app.enqueuer = functools.cache(lambda: enqueuer)  # type: ignore[assignment] # memory queue
        work = requests(count + warmup)
        context = LocalContext("webhook")
        enqueuer.register_context(context)
        handled: list[float] = []
        core: list[float] = []
        parsed: list[float] = []
        publisher = SqsPublisher("memory", client=MemorySqs())
        clock, cpu = time.perf_counter, time.thread_time
        cpu_handled: list[float] = []
        for i, (event, body) in enumerate(work):
            c0 = cpu()
            t0 = clock()
            result = webhook.handler(event, context)
            t1 = clock()
            c1 = cpu()
            publisher.publish(ingest(Route.ROOM_EVENTS, event["headers"], body, settings))
            t2 = clock()
            json.loads(body)
            t3 = clock()
            if result["statusCode"] != 202:
                print(f"request {i} answered {result['statusCode']}: {result['body']}")
                return 1
            if i >= warmup:
                handled.append(t1 - t0)
                cpu_handled.append(c1 - c0)
                core.append(t2 - t1)
                parsed.append(t3 - t2)
        assert len(queue.messages) == len(work)
        app.reset()

    print(f"receiver: {count} signed room events, each verified, parsed and enqueued once")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  load average {load} on {os.cpu_count()} cores (p99 counts scheduler preemption)")
    j50 = percentile(parsed, 50)
    for name, values in (
        ("Lambda entry (routing, verify, parse, dedupe record, enqueue)", handled),
        ("  the same, CPU time of this thread only (no preemption, no I/O wait)", cpu_handled),
        ("verify + parse + enqueue (ingest, SqsPublisher)", core),
        ("json.loads of the same body", parsed),
    ):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(
            f"  {name}\n      p50 {p50 * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms  "
            f"mean {statistics.mean(values) * 1000:.3f} ms  "
            f"p50 ratio to json.loads {p50 / j50:.0f}x"
        )
    report("receiver entry p99 ms", percentile(handled, 99) * 1000, TARGET_P99_MS, "<=",
           "Lambda entry in queue mode, SQLite dedupe store, memory queue")  # fmt: skip
    report("receiver entry CPU p99 ms", percentile(cpu_handled, 99) * 1000, TARGET_P99_MS, "<=",
           "thread CPU time: what the code costs when the machine is shared")  # fmt: skip
    report("receiver verify+parse+enqueue p99 ms", percentile(core, 99) * 1000, TARGET_P99_MS,
           "<=", "ingest() and SqsPublisher.publish to a memory queue")  # fmt: skip
    report("receiver entry p50 / json.loads p50", percentile(handled, 50) / j50, 100, "<=",
           "how many json.loads the whole receiver costs")  # fmt: skip
    return 0  # a missed target is a finding to report, not a crash


if __name__ == "__main__":
    raise SystemExit(main())
