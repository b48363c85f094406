"""The scale figures of the lifecycle, on the virtual clock: schedule windows, renewals over a
day, and a full sweep. The scheduler's own tick (`handler.service_layer.lifecycle.tick.Lifecycle`
with its planner) runs every `serverless.yml` period and hands its commands to the simulated queue;
the worker fleet runs them through the real record handler, like room events.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench._common import (
    RUN_ID,
    Result,
    biz_id,
    event_body,
    header,
    report,
    room_id,
    stdout_to_devnull,
)
from bench._fleet import POLL_GAP, Fleet
from bench._stack import Shape, StateGme, build_stack
from bench._virtual import SimQueue, VirtualClock

GME_LIMIT = 20
CAP_SECONDS = 24 * 3600
#: Seconds a SendMessageBatch of the tick takes (an in-region SQS round trip).
SQS_LATENCY = 0.01


class TimedQueue(SimQueue):
    """The tick's queue: each SendMessageBatch costs one SQS round trip."""

    def send_commands(self, commands: Any) -> int:
        self.clock.sleep(SQS_LATENCY)
        return super().send_commands(commands)


class World:
    """Clock, queue, fleet and the scheduler's tick of one virtual run."""

    def __init__(
        self,
        clock: VirtualClock,
        gme: StateGme,
        shape: Shape,
        side_by_side: bool,
        poll_gap: float = POLL_GAP,
    ) -> None:
        from handler.bootstrap import app
        from handler.service_layer.lifecycle.plan import Planner
        from handler.service_layer.lifecycle.tick import Lifecycle

        self.clock, self.gme, self.shape = clock, gme, shape
        self.queue = TimedQueue(clock, shape.visibility_timeout, shape.max_receives)
        self.fleet = Fleet(clock, self.queue, shape, side_by_side, poll_gap)
        settings = app.lifecycle_settings()
        planner = Planner(app.ledger(), app.schedules, settings)
        self.lifecycle = Lifecycle(
            planner, app.lifecycle_steps, app.ledger(), settings, self.queue, clock.now
        )
        self.ticks = 0
        clock.enter()
        self.fleet.start()

    def rooms_arrive(self, prefix: str, rooms: int, spread: float) -> dict[str, float]:
        """From now on, ``rooms`` room-created events evenly over ``spread`` seconds, each sent
        to the queue at its time (by a participant of its own); returns room -> sent time,
        filled as they go."""
        t0 = self.clock.now()
        sent: dict[str, float] = {}

        def arrive() -> None:
            for i in range(rooms):
                self.clock.sleep(t0 + spread * i / rooms - self.clock.now())
                room = room_id(prefix, i)
                sent[room] = self.clock.now()
                self.queue.send(event_body(room, sent[room]))

        self.clock.spawn(arrive)
        return sent

    def summary(self, began: float) -> str:
        """What the run cost: ticks, throttled answers, GME calls, failures, real seconds."""
        return (
            f"{self.ticks} ticks; {self.gme.throttled} throttled; GME calls "
            f"{dict(sorted(self.gme.calls.items()))}; failed deliveries {self.fleet.failures}; "
            f"{time.perf_counter() - began:.1f} s real"
        )

    def tick(self) -> dict[str, int]:
        self.ticks += 1
        return self.lifecycle.tick(datetime.fromtimestamp(self.clock.now(), tz=UTC))

    def run_ticks(self, until: float, done: Callable[[], bool] = lambda: False) -> None:
        """Tick every period from now until ``until`` (or ``done()``); a tick longer than the
        period delays the next (one scheduler at a time, as deployed)."""
        while self.clock.now() < until and not done() and not self.clock.failures:
            began = self.clock.now()
            self.tick()
            self.clock.sleep(max(0.0, began + self.shape.tick_seconds - self.clock.now()))
        if self.clock.failures:
            raise self.clock.failures[0]


def _start_of_next_minute(t: float) -> float:
    return (int(t) // 60 + 2) * 60.0


def windows(count: int, latency: float, shape: Shape, side_by_side: bool, tmp: Path) -> Result:
    """``count`` schedules whose windows open in the same minute; the tick runs at that minute."""
    opens = _start_of_next_minute(time.time())
    at = datetime.fromtimestamp(opens, tz=UTC)
    header(f"scale / {count} schedule windows opening at {at:%H:%M} UTC, L={latency:g}s")
    doc = {
        "version": 1,
        "schedules": [
            {
                "name": f"scale-{i}",
                "biz_id": biz_id(),
                "room_id": f"window-{RUN_ID}-{i}",
                "start": f"{at.minute} {at.hour} * * *",
                "duration": "2h",
            }
            for i in range(count)
        ],
    }
    path = tmp / "schedules.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    clock = VirtualClock(opens)
    began = time.perf_counter()
    env = {"RECORDING_SCHEDULES": str(path)}
    with build_stack(clock, latency, env) as gme, stdout_to_devnull():
        world = World(clock, gme, shape, side_by_side)
        rooms = {f"window-{RUN_ID}-{i}" for i in range(count)}
        give_up = opens + 20 * count / GME_LIMIT
        world.run_ticks(give_up, lambda: rooms <= gme.started_at.keys())
    started = [gme.started_at[r] for r in rooms if r in gme.started_at]
    last = max(started, default=give_up) - opens
    ideal = count / GME_LIMIT
    print(
        f"  {len(started)} of {count} recording, the last {last:.1f} s after the windows opened "
        f"(ideal {ideal:.0f} s); {world.summary(began)}"
    )
    value = last / ideal if len(started) == count else float("inf")
    detail = f"{count} windows, L={latency:g}s, tick every {shape.tick_seconds:g} s"
    return report(
        Result(
            "scale", f"{count} windows: all recording / ({count} / 20 s)", value, 1.2, "<=", detail
        )
    )


LONG_POLICY = {
    "version": 1,
    "rules": [
        {
            "name": "ranked-all-day",
            "when": {"attributes": {"mode": "ranked"}},
            "action": "record",
            "record_mode": "mixed",
            "max_duration": "none",
        }
    ],
    "default": {"action": "skip", "reason": "not ranked"},
}


def renewal(tasks: int, latency: float, shape: Shape, side_by_side: bool, tmp: Path) -> Result:
    """``tasks`` rooms created within a minute (recorded with no time limit), then 25 hours of
    ticks; the sweep is held to one check a tick (its figure is below), so renewals alone are
    measured."""
    header(f"scale / renewal: {tasks} rooms created within 60 s, then 25 h, L={latency:g}s")
    policy = tmp / "all-day.yaml"
    policy.write_text(yaml.safe_dump(LONG_POLICY), encoding="utf-8")
    clock = VirtualClock(time.time())
    t0 = clock.now()
    began = time.perf_counter()
    env = {"RECORDING_POLICY": str(policy), "SWEEP_BATCH": "1"}
    with build_stack(clock, latency, env) as gme, stdout_to_devnull():
        world = World(clock, gme, shape, side_by_side)
        world.rooms_arrive("day", tasks, 60)
        world.run_ticks(t0 + 25 * 3600)
        all_tasks = gme.emu.tasks()
    cut = [t for t in all_tasks if t.stopped_at and t.stopped_at - t.started_at >= CAP_SECONDS]
    by_room: dict[str, list[Any]] = {}
    for task in sorted(all_tasks, key=lambda t: t.started_at):
        by_room.setdefault(task.room_id, []).append(task)
    gaps = [
        b.started_at - (a.stopped_at or b.started_at)
        for runs in by_room.values()
        for a, b in itertools.pairwise(runs)
    ]
    print(
        f"  {len(by_room)} rooms recorded, {len(all_tasks)} tasks; cut by the 24 h cap: "
        f"{len(cut)}; renewal gaps max {max(gaps, default=0):.2f} s over {len(gaps)} renewals; "
        f"{world.summary(began)}"
    )
    detail = (
        f"{tasks} rooms, L={latency:g}s, {len(gaps)} renewals, max gap {max(gaps, default=0):.2f} s"
    )
    return report(
        Result("scale", f"{tasks} tasks over 25 h: cut by the 24 h cap", len(cut), 0, "<=", detail)
    )


def full_sweep(sessions: int, latency: float, shape: Shape, side_by_side: bool) -> Result:
    """``sessions`` open sessions, each with its running task, none checked for an hour: ticks
    until every one was checked against GME once."""
    from handler.bootstrap import app
    from handler.domain.decision import Decision, RecordPlan
    from handler.domain.ledger_rules import after_outcome, starting
    from handler.domain.outcome import Outcome, OutcomeStatus

    header(f"scale / sweep: {sessions} open sessions, L={latency:g}s")
    clock = VirtualClock(time.time())
    began = time.perf_counter()
    with build_stack(clock, latency) as gme, stdout_to_devnull():
        seeded = clock.now() - 3600
        plan = RecordPlan()
        decision = Decision(
            record=True, rule="seeded", reason="seeded", policy_version="v", plan=plan
        )
        # Seeded through the ledger's own port, under the timing and the metrics watcher: the
        # entry `starting` and then `recording`, in one write each.
        ledger = app.ledger().inner
        ledger = getattr(ledger, "inner", ledger)
        for i in range(sessions):
            room = room_id("open", i)
            params = {"BizId": biz_id(), "RoomId": room, "RecordMode": 2}
            outcome = Outcome(
                status=OutcomeStatus.STARTED,
                task_id=str(gme.emu.execute("StartRecord", params)["TaskId"]),
                record_mode=plan.record_mode,
            )
            key = (biz_id(), room, f"match-{i}")
            begin, end = (
                starting(*key, decision, seeded, None, "seeded"),
                after_outcome(outcome, seeded),
            )
            ledger.update(*key, lambda entry, b=begin, e=end: e(b(entry)))
        seeding = time.perf_counter() - began
        world = World(clock, gme, shape, side_by_side)
        first = clock.now()
        world.run_ticks(first + 20 * 3600, lambda: len(gme.described) >= sessions)
        cycle = clock.now() - first
    print(
        f"  {len(gme.described)} of {sessions} checked in {cycle:.0f} s; seeding {seeding:.1f} s; "
        f"{world.summary(began)}"
    )
    detail = f"{sessions} sessions, L={latency:g}s, {world.ticks} ticks of {shape.tick_seconds:g} s"
    return report(
        Result("scale", f"full sweep of {sessions} sessions, s", cycle, 3600, "<=", detail)
    )
