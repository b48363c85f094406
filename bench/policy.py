"""Policy engine speed: a generated 200-rule policy over 100,000 generated room events.

    python -m bench.policy [--rules 200] [--events 100000] [--seed 7]

Prints decisions per second for the service's path (`decide(..., explain=False)`), p50/p99 per
decision, the same with explanations on, and — measured in the same run on the same events — a
naive evaluation that walks every rule in order through the explaining matcher (no BizId index,
strings built for each miss), so the ratio shows what compiling and indexing buy. Target: at
least 50,000 decisions per second on the service's path.

The policy uses every kind of condition (BizId sets, room globs and regexes, attribute equals /
in / numeric, source, time of day across midnight in several zones, days, date ranges) and every
action (skip, record with modes and lists, sampling, caps). Events are spread over 22 BizIds
(two named by no rule), eight room families, a year of times and two sources; the run prints how
many rules won at least once and how many events fell through to the default.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._common import Result, report
from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.policy import InMemoryActiveRecordings, Policy, parse_policy
from handler.domain.policy.matchers import Moment, why_not

TARGET_PER_SECOND = 50_000
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata"]
PREFIXES = ["ranked", "casual", "tourney", "practice", "support", "party", "raid", "arena"]
MODES = ["ranked", "casual", "custom", "coop"]
TIERS = ["bronze", "silver", "gold", "platinum", "diamond"]
REGIONS = ["eu", "na", "apac", "sa"]


def generate_policy(rules: int, rng: random.Random) -> dict[str, Any]:
    biz_ids = [1400000000 + i for i in range(20)]
    out: list[dict[str, Any]] = []
    for i in range(rules):
        when: dict[str, Any] = {}
        if rng.random() < 0.85:
            when["biz_id"] = rng.sample(biz_ids, rng.choice([1, 1, 2, 3]))
        kind = i % 6
        prefix = rng.choice(PREFIXES)
        if kind == 0:
            when["room_id"] = [f"{prefix}-{rng.choice(REGIONS)}-*", f"{prefix}-x{i}-*"]
        elif kind == 1:
            when["room_id_regex"] = rf"^{prefix}-(eu|na)-\d*{i % 10}$"
        elif kind == 2:
            when["attributes"] = {
                "mode": rng.choice(MODES),
                "players": {"gte": rng.randint(2, 8)},
            }
        elif kind == 3:
            when["attributes"] = {"tier": {"in": rng.sample(TIERS, 2)}}
            when["source"] = rng.choice(["webhook", "queue"])
        elif kind == 4:
            start = rng.randint(0, 23)
            when["timezone"] = rng.choice(ZONES)
            when["time_of_day"] = f"{start:02d}:00-{(start + rng.randint(2, 8)) % 24:02d}:30"
            when["days"] = rng.choice(["mon-fri", "weekends", "fri-sun", ["tue", "thu"]])
            when["room_id"] = f"{prefix}-*"
        else:
            when["dates"] = [f"2026-{rng.randint(1, 12):02d}-01..2026-12-31"]
            when["timezone"] = rng.choice(ZONES)
            when["attributes"] = {"region": rng.choice(REGIONS), "ranked": {"exists": True}}
        rule: dict[str, Any] = {"name": f"rule-{i:03d}", "when": when}
        if rng.random() < 0.2:
            rule.update(action="skip", reason=f"skip {i}")
        else:
            rule.update(action="record", record_mode=rng.choice(["single", "mixed", "both"]))
            if rng.random() < 0.3:
                rule["sample_percent"] = rng.choice([1, 5, 12.5, 50, 99.99])
            if rng.random() < 0.2:
                rule["max_concurrent"] = rng.randint(5, 50)
            if rng.random() < 0.2:
                rule["block_user_ids"] = [f"bot-{n}" for n in range(rng.randint(1, 20))]
        out.append(rule)
    return {"version": 1, "rules": out, "default": {"action": "skip", "reason": "no rule"}}


def generate_events(count: int, rng: random.Random) -> list[RoomEvent]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for i in range(count):
        attributes: dict[str, str | int | bool] = {
            "mode": rng.choice(MODES),
            "players": rng.randint(1, 10),
            "tier": rng.choice(TIERS),
            "region": rng.choice(REGIONS),
        }
        if rng.random() < 0.5:
            attributes["ranked"] = True
        events.append(
            RoomEvent(
                kind=EventKind.ROOM_CREATED,
                event_id=f"evt-{i}",
                biz_id=1400000000 + rng.randint(0, 21),  # two BizIds no rule names
                room_id=f"{rng.choice(PREFIXES)}-{rng.choice(REGIONS)}-{rng.randint(0, 99999)}",
                session=f"m-{i}",
                occurred_at=start + timedelta(seconds=rng.randint(0, 365 * 86400)),
                format=InboundFormat.ROOM_EVENT_V1,
                source=rng.choice([EventSource.WEBHOOK, EventSource.QUEUE]),
                attributes=attributes,
            )
        )
    return events


def naive_decide(policy: Policy, event: RoomEvent) -> str:
    """The pre-index way: every rule in order, each asked in words why it does not match."""
    moment = Moment(event.occurred_at)
    for rule in policy.document.rules:
        if why_not(rule.when, event, moment) is None:
            return rule.name
    return "default"


def _rate(run: Any, events: list[RoomEvent]) -> float:
    began = time.perf_counter()
    for event in events:
        run(event)
    return len(events) / (time.perf_counter() - began)


def _latencies(run: Any, events: list[RoomEvent]) -> tuple[float, float]:
    clock = time.perf_counter_ns
    samples = []
    for event in events:
        t0 = clock()
        run(event)
        samples.append(clock() - t0)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] / 1000, cuts[98] / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policy", description=__doc__)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    began = time.perf_counter()
    policy = parse_policy(generate_policy(args.rules, rng), "generated")
    load_ms = (time.perf_counter() - began) * 1000
    events = generate_events(args.events, rng)
    active = InMemoryActiveRecordings({f"rule-{i:03d}": i % 40 for i in range(args.rules)})

    def fast(event: RoomEvent) -> Any:
        return policy.decide(event, active=active, explain=False)

    def explaining(event: RoomEvent) -> Any:
        return policy.decide(event, active=active, explain=True)

    def naive(event: RoomEvent) -> Any:
        return naive_decide(policy, event)

    _rate(fast, events[:2000])  # warm up
    winners: dict[str, int] = {}
    for event in events:
        rule = fast(event).rule
        winners[rule] = winners.get(rule, 0) + 1
    fast_rate = _rate(fast, events)
    p50, p99 = _latencies(fast, events)
    naive_sample = events[: max(1, len(events) // 10)]
    explain_rate = _rate(explaining, naive_sample)
    explain_p50, explain_p99 = _latencies(explaining, naive_sample)
    naive_rate = _rate(naive, naive_sample)
    agree = sum(fast(e).rule == naive(e) for e in naive_sample) == len(naive_sample)

    print(f"policy engine: {args.rules} rules, {args.events} events (seed {args.seed})")
    print(
        f"  python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"policy load {load_ms:.0f} ms"
    )
    print(f"  rules that won at least once: {len(winners) - ('default' in winners)}")
    print(f"  fell through to default: {winners.get('default', 0) * 100 / len(events):.1f}%")
    print(
        f"  decide (service path):    {fast_rate:>10,.0f} decisions/s   p50 {p50:6.1f} µs"
        f"   p99 {p99:6.1f} µs"
    )
    print(
        f"  decide with explanations: {explain_rate:>10,.0f} decisions/s   "
        f"p50 {explain_p50:6.1f} µs   p99 {explain_p99:6.1f} µs"
    )
    print(
        f"  naive walk (every rule, in words, {len(naive_sample)} events): "
        f"{naive_rate:,.0f} decisions/s"
    )
    print(
        f"  ratio compiled+indexed / naive: {fast_rate / naive_rate:.1f}x "
        f"(same winners: {'yes' if agree else 'NO'})"
    )
    print(
        f"  ratio to target {TARGET_PER_SECOND:,}/s: {fast_rate / TARGET_PER_SECOND:.2f} "
        f"({'met' if fast_rate >= TARGET_PER_SECOND else 'NOT met'})"
    )
    report(
        Result(
            "policy",
            "decisions per second / 50,000",
            fast_rate / TARGET_PER_SECOND,
            1.0,
            ">=",
            f"{fast_rate:,.0f}/s, p99 {p99:.1f} µs",
        )
    )
    report(Result("policy", "compiled+indexed / naive walk", fast_rate / naive_rate, 1.0, ">="))
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
