"""The project's own code wired to a virtual clock, and the deployed shape read from
serverless.yml.

`build_stack` lets the composition root (`handler.bootstrap.app`) build the app from the environment
as it does in Lambda, with the deployed settings (policy, SQLite idempotency store and ledger,
lifecycle settings and steps), and hands it four parts of its own, all on the virtual clock:

* the GME gateway: the real `RateLimitedGme` (the fleet-wide pace, its backoff and deadline)
  over `StateGme`, which runs each call on the emulator's `RecordingService` in process, after
  half the round trip L (jittered) and before the other half, so GME's limit counts arrivals;
* the ledger, each call first costing a DynamoDB round trip (`TimedLedger`);
* the `Recorder`, its idempotency store's calls timed the same way;
* the `RecordingService`, whose ledger times and time-to-record follow the virtual clock.

The pace's schedule is `MemorySlots`: the pace's own arithmetic (`handler.domain.ratelimit.
reserve`) on a dict, a round trip a reservation. The stores' atomic read-compute-write is not
needed in virtual time, where one participant runs at a time.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from bench._common import ROOT, app_environment
from bench._virtual import VirtualClock
from emulator import DEFAULT_SECRET_ID
from emulator.state import RecordingService as EmulatedGme
from emulator.validation import ApiError
from handler.domain.decision import RecordMode, RecordPlan
from handler.domain.gme import GmeError, RecordStream, RunningTask
from handler.domain.ratelimit import Pace, limit_scope, reserve

THROTTLED = "RequestLimitExceeded"
#: Seconds one ledger or pace store call takes in virtual time: a DynamoDB round trip in-region.
STORE_LATENCY = 0.005
#: How far the way in to GME strays from L/2, as a share of it (`--jitter` sets it); the
#: answer comes back in exactly L/2, so the round trips spread as the arrivals do.
JITTER = 0.2


@dataclass(frozen=True)
class Shape:
    """The deployed worker and queue numbers (serverless.yml `params.default`)."""

    instances: int
    batch_size: int
    timeout: float
    visibility_timeout: float
    max_receives: int
    tick_seconds: float


def _serverless() -> tuple[str, dict[str, Any]]:
    text = (ROOT / "serverless.yml").read_text(encoding="utf-8")
    return text, yaml.load(text, Loader=_Lenient)  # noqa: S506 - our own file, tags dropped


def deployed_shape() -> Shape:
    text, doc = _serverless()
    params = doc["params"]["default"]
    found = re.search(r"maxReceiveCount:\s*(\d+)", text)
    rate = re.fullmatch(r"rate\((\d+) minutes?\)", str(params["schedule"]))
    return Shape(
        instances=int(params["workerConcurrency"]),
        batch_size=int(params["workerBatchSize"]),
        timeout=float(params["workerTimeout"]),
        visibility_timeout=float(params["queueVisibilityTimeout"]),
        max_receives=int(found.group(1)) if found else 5,
        tick_seconds=60.0 * int(rate.group(1)) if rate else 300.0,
    )


#: Deployed settings that point at AWS or hold secrets: the benchmark sets its own.
_OWN = frozenset(
    {"IDEMPOTENCY_STORE", "LEDGER_STORE", "GME_ENDPOINT", "RECORD_QUEUE_URL", "RECORDING_POLICY"}
)


def deployed_env() -> dict[str, str]:
    """The worker's and the scheduler's plain settings as serverless.yml deploys them
    (``${param:...}`` resolved; references to AWS resources and secrets left out)."""
    _, doc = _serverless()
    params = doc["params"]["default"]
    merged = dict(doc["provider"].get("environment") or {})
    for function in ("worker", "scheduler"):
        merged.update(doc["functions"][function].get("environment") or {})
    env: dict[str, str] = {}
    for name, value in merged.items():
        if name in _OWN or name.startswith("POWERTOOLS_") or value is None:
            continue
        text = re.sub(
            r"\$\{param:(\w+)\}", lambda m: str(params.get(m.group(1), "${?}")), str(value)
        )
        if "${" not in text and not text.startswith("ssm:"):
            env[name] = text
    return env


class _Lenient(yaml.SafeLoader):
    """Reads serverless.yml's CloudFormation tags (!Ref, !If, ...) as plain values."""


_Lenient.add_multi_constructor("!", lambda loader, suffix, node: None)


class MemorySlots:
    """`SlotStore` on a dict, on the virtual clock, with the pace's own reservation rule; each
    reservation costs ``latency`` (the store's round trip) before it is made."""

    def __init__(self, pace: Pace, clock: VirtualClock, latency: float) -> None:
        self.pace = pace
        self._clock = clock
        self._latency = latency
        self._tat: dict[str, float] = {}

    def reserve(self, key: str, max_wait: float, pace: Pace | None = None) -> float | None:
        self._clock.sleep(self._latency)
        got = reserve(self._tat.get(key, 0.0), self._clock.now(), pace or self.pace, max_wait)
        if got is None:
            return None
        self._tat[key] = got[0]
        return got[1]


def _timed(call: Callable[..., Any], clock: VirtualClock, latency: float) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        clock.sleep(latency)
        return call(*args, **kwargs)

    return timed


class TimedLedger:
    """The app's ledger, each call costing ``latency`` virtual seconds first (a DynamoDB round
    trip; the SQLite ledger underneath answers in no virtual time). The idempotency store's
    calls are timed the same way (`build_stack`)."""

    def __init__(self, inner: Any, clock: VirtualClock, latency: float) -> None:
        self.inner = inner
        self._clock = clock
        self._latency = latency

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        return _timed(attr, self._clock, self._latency) if callable(attr) else attr


def _plan(plan: RecordPlan) -> dict[str, Any]:
    params: dict[str, Any] = {"RecordMode": int(plan.record_mode)}
    if plan.allow_user_ids:
        params["SubscribeRecordUserIds"] = {"SubscribeUserIds": list(plan.allow_user_ids)}
    elif plan.block_user_ids:
        params["SubscribeRecordUserIds"] = {"UnSubscribeUserIds": list(plan.block_user_ids)}
    return params


class StateGme:
    """`GmeGateway` on the emulator's state, in process: the call reaches GME after
    ``latency / 2`` (times 1 +- ``jitter``, seeded), is counted against GME's limit for the
    emulator's credential on arrival, and its answer is back ``latency / 2`` later."""

    def __init__(
        self,
        emu: EmulatedGme,
        clock: VirtualClock,
        latency: float,
        jitter: float | None = None,
        seed: int = 7,
    ) -> None:
        self.emu = emu
        self.clock = clock
        self.latency = latency
        self.jitter = JITTER if jitter is None else jitter
        self._random = random.Random(seed)
        self.throttled = 0
        self.calls: dict[str, int] = {}
        #: When each room's latest StartRecord answered, for the burst and window figures.
        self.started_at: dict[str, float] = {}
        #: Rooms asked about with DescribeTaskInfo (the sweep's checks).
        self.described: set[str] = set()

    def describe_task(self, biz_id: int, room_id: str) -> RunningTask | None:
        got = self._call("DescribeTaskInfo", {"BizId": biz_id, "RoomId": room_id})
        self.described.add(room_id)
        if got.get("TaskId") is None:
            return None
        subs = got.get("SubscribeRecordUserIds") or {}
        return RunningTask(
            task_id=str(got["TaskId"]),
            record_mode=RecordMode(got["RecordMode"]) if got.get("RecordMode") else None,
            allow_user_ids=tuple(subs.get("SubscribeUserIds") or ()),
            block_user_ids=tuple(subs.get("UnSubscribeUserIds") or ()),
        )

    def start_record(self, biz_id: int, room_id: str, plan: RecordPlan) -> str:
        params = {"BizId": biz_id, "RoomId": room_id, **_plan(plan)}
        task_id = str(self._call("StartRecord", params)["TaskId"])
        self.started_at[room_id] = self.clock.now()
        return task_id

    def stop_record(self, biz_id: int, task_id: str) -> None:
        self._call("StopRecord", {"BizId": biz_id, "TaskId": int(task_id)})

    def modify_record(self, biz_id: int, task_id: str, plan: RecordPlan) -> None:
        params = {"BizId": biz_id, "TaskId": int(task_id), **_plan(plan)}
        params.setdefault("SubscribeRecordUserIds", {})  # always sent, as the SDK adapter does
        self._call("ModifyRecordInfo", params)

    def describe_record_info(self, biz_id: int, task_id: str) -> tuple[RecordStream, ...]:
        got = self._call("DescribeRecordInfo", {"BizId": biz_id, "TaskId": int(task_id)})
        return tuple(
            RecordStream(
                user_id=str(r["UserId"]),
                file_name=r["FileName"],
                begin_time=r["RecordBeginTime"],
                status=r["RecordStatus"],
            )
            for r in got["RecordInfo"]
        )

    def _call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        half = self.latency / 2
        self.clock.sleep(half * (1 + self.jitter * (2 * self._random.random() - 1)))
        self.calls[action] = self.calls.get(action, 0) + 1
        try:
            if not self.emu.allow_rate(action, DEFAULT_SECRET_ID):
                self.throttled += 1
                raise ApiError(THROTTLED, f"too many {action} requests")
            answer = self.emu.execute(action, params)
        except ApiError as exc:
            self.clock.sleep(half)
            raise GmeError(action, exc.code, exc.message) from None
        self.clock.sleep(half)
        return answer


@contextlib.contextmanager
def scratch_app(env: dict[str, str] | None = None) -> Iterator[None]:
    """A fresh app: SQLite stores in a temporary directory, the emulator's credentials, ``env``;
    the previous environment is restored afterwards."""
    from emulator import DEFAULT_SECRET_KEY

    # In memory where the machine has it: the stores' disk time is no part of virtual time.
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
    with tempfile.TemporaryDirectory(prefix="gme-scale-", dir=scratch) as tmp:
        values = {
            "IDEMPOTENCY_STORE": f"sqlite:///{tmp}/idem.db",
            "LEDGER_STORE": f"sqlite:///{tmp}/ledger.db",
            "GME_ENDPOINT": "gme.tencentcloudapi.com",
            "TENCENTCLOUD_SECRET_ID": DEFAULT_SECRET_ID,
            "TENCENTCLOUD_SECRET_KEY": DEFAULT_SECRET_KEY,
            **(env or {}),
        }
        with app_environment(values):
            yield


@contextlib.contextmanager
def build_stack(
    clock: VirtualClock,
    latency: float,
    env: dict[str, str] | None = None,
    store_latency: float = STORE_LATENCY,
) -> Iterator[StateGme]:
    """The app (see `scratch_app`, with the deployed settings and ``env``) with the gateway,
    the ledger, the recorder and the service on ``clock``; yields the emulated GME."""
    from handler.adapters.ratelimited_gme import RateLimitedGme
    from handler.adapters.stores import build_persistence_layer
    from handler.bootstrap import app
    from handler.service_layer.recorder import Recorder
    from handler.service_layer.service import RecordingService

    with scratch_app({**deployed_env(), **(env or {})}):
        s = app.settings()
        app.ledger.provide(TimedLedger(app.ledger(), clock, store_latency))
        gme = StateGme(EmulatedGme(clock.now, 20), clock, latency)
        pace = Pace(s.gme_rate_limit_per_second, s.gme_rate_limit_burst)
        app.gme.provide(
            RateLimitedGme(
                gme,
                MemorySlots(pace, clock, store_latency),
                scope=lambda: limit_scope(DEFAULT_SECRET_ID, "gme.tencentcloudapi.com"),
                reserve_seconds=s.gme_timeout_seconds + 0.5,
                sleep=clock.sleep,
                clock=clock.now,
                context=app.current_context,
            )
        )
        store = build_persistence_layer(s.idempotency_store)
        for name in ("_get_record", "_put_record", "_update_record", "_delete_record"):
            setattr(store, name, _timed(getattr(store, name), clock, store_latency))
        app.recorder.provide(
            Recorder(
                app.gme(),
                store,
                expiry_seconds=s.idempotency_expiry_seconds,
                room_not_found_grace_seconds=s.room_not_found_grace_seconds,
                clock=clock.now,
            )
        )
        app.service.provide(
            RecordingService(
                app.policy, app.recorder, app.ledger(), app.active_recordings(), clock=clock.now
            )
        )
        app.policy()  # load now: the first record must not pay it in virtual time
        yield gme
