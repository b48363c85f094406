"""The emulated GME recording service: tasks, the five actions, rate limits, faults, call log.

Everything here is guarded by one lock, because the HTTP server answers each connection in its
own thread and the behaviour under test (two starts racing for one room, a retry after a lost
response) is exactly the concurrent case. Nothing here sleeps or does I/O while holding the lock.
"""

from __future__ import annotations

import heapq
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from emulator import validation as v
from emulator.chaos import Chaos
from emulator.faults import FaultPlan, FaultQueues
from emulator.validation import ApiError

ACTIONS = frozenset(
    {"StartRecord", "StopRecord", "DescribeTaskInfo", "DescribeRecordInfo", "ModifyRecordInfo"}
)
# Above 2**53 so that any client that routes a TaskId through a float corrupts it visibly.
TASK_ID_MIN = 2**53 + 1
TASK_ID_MAX = 2**62
MAX_CALLS_KEPT = 10_000

RECORDING = 2
UPLOAD_FINISHED = 13
#: GME ends every recording task 24 hours after it started, whether or not anyone stops it.
TASK_CAP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Task:
    """A snapshot of one recording task; ``stopped_at`` is None while it runs."""

    task_id: int
    biz_id: int
    room_id: str
    record_mode: int
    subscribe_user_ids: tuple[str, ...]
    unsubscribe_user_ids: tuple[str, ...]
    started_at: float
    stopped_at: float | None = None

    @property
    def running(self) -> bool:
        return self.stopped_at is None


@dataclass(frozen=True)
class Call:
    """One authenticated-or-not API request as the emulator saw it, for assertions."""

    action: str
    biz_id: int | None
    room_id: str | None
    error_code: str | None
    at: float
    task_id: int | None = None
    fault: str | None = None
    request_id: str = ""


class RateLimiter:
    """At most ``limit`` accepted requests per key in any rolling second; 0 disables it.

    The key is GME's own dimension: (action, SecretId). Tencent Cloud limits each API per
    Action + access region + the credentials used, counted at arrival; one emulator is one
    region. It is never per BizId: every app under one credential shares the same 20 a second.

    Rejected requests are not counted, so a client that keeps retrying still gets ``limit``
    requests per second through, like a token bucket that refills continuously.
    """

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        if limit < 0:
            raise ValueError("rate limit must be >= 0")
        self.limit = limit
        self._clock = clock
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def allow(self, key: tuple[str, str]) -> bool:
        if self.limit == 0:
            return True
        now = self._clock()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.limit:
            return False
        window.append(now)
        return True

    def reset(self) -> None:
        self._windows.clear()


class RecordingService:
    """Task store and action semantics of the GME recording API (version 2018-07-11)."""

    def __init__(self, clock: Callable[[], float], rate_limit_per_second: int) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks: dict[int, Task] = {}
        self._running: dict[tuple[int, str], int] = {}
        # (started_at, task_id) of every task started, earliest first: the 24-hour cap is found
        # by popping, not by scanning every running task on each call (50,000 in the benches).
        self._by_start: list[tuple[float, int]] = []
        self._calls: deque[Call] = deque(maxlen=MAX_CALLS_KEPT)
        self._faults = FaultQueues(ACTIONS)
        self._limiter = RateLimiter(rate_limit_per_second, clock)
        # Task time = clock + offset: tests move it (advance) without touching signature time.
        self._offset = 0.0
        self._chaos: Chaos | None = None
        # Mutated in place (tests call .add) and read under the lock; never rebound.
        self.missing_rooms: set[tuple[int, str]] = set()

    # ----------------------------------------------------------------- actions

    def execute(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run one action and return the fields of its ``Response`` (without RequestId)."""
        handler = {
            "StartRecord": self._start_record,
            "StopRecord": self._stop_record,
            "DescribeTaskInfo": self._describe_task_info,
            "DescribeRecordInfo": self._describe_record_info,
            "ModifyRecordInfo": self._modify_record_info,
        }.get(action)
        if handler is None:
            raise ApiError("InvalidAction", f"The action `{action}` does not exist.")
        with self._lock:
            self._end_capped()
            return handler(params)

    # ------------------------------------------------------------ task clock

    def now(self) -> float:
        """Task time: the clock plus whatever tests advanced it by."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move task time forward; tasks past the 24-hour cap end at their cap time."""
        if seconds < 0:
            raise ValueError("the task clock only moves forward")
        with self._lock:
            self._offset += seconds
            self._end_capped()

    def _end_capped(self) -> None:
        cutoff = self.now() - TASK_CAP_SECONDS
        while self._by_start and self._by_start[0][0] <= cutoff:
            _, task_id = heapq.heappop(self._by_start)
            task = self._tasks[task_id]
            if task.running:  # stopped ones were popped too late to matter
                self._tasks[task_id] = replace(task, stopped_at=task.started_at + TASK_CAP_SECONDS)
                del self._running[(task.biz_id, task.room_id)]

    def _start_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.reject_unknown(
            params, frozenset({"BizId", "RoomId", "RecordMode", "SubscribeRecordUserIds"})
        )
        biz_id = v.positive_int(params, "BizId", "InvalidParameterValue.InvalidBizId")
        room_id = v.room_id(params)
        mode = v.record_mode(params)
        allowed, blocked = v.subscribe_lists(params) or ((), ())
        self._check_room(biz_id, room_id)
        if (biz_id, room_id) in self._running:
            raise ApiError(
                "ResourceInUse.TaskInUse",
                f"Room {room_id!r} of BizId {biz_id} already has a running recording task.",
            )
        task_id = self._new_task_id()
        self._tasks[task_id] = Task(
            task_id=task_id,
            biz_id=biz_id,
            room_id=room_id,
            record_mode=mode,
            subscribe_user_ids=allowed,
            unsubscribe_user_ids=blocked,
            started_at=self.now(),
        )
        self._running[(biz_id, room_id)] = task_id
        heapq.heappush(self._by_start, (self._tasks[task_id].started_at, task_id))
        return {"TaskId": task_id}

    def _stop_record(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.reject_unknown(params, frozenset({"BizId", "TaskId"}))
        task = self._find_task(*self._ids(params), running=True)
        self._tasks[task.task_id] = replace(task, stopped_at=self.now())
        del self._running[(task.biz_id, task.room_id)]
        return {}

    def _describe_task_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.reject_unknown(params, frozenset({"BizId", "RoomId"}))
        biz_id = v.positive_int(params, "BizId", "InvalidParameterValue.InvalidBizId")
        room_id = v.room_id(params)
        self._check_room(biz_id, room_id)
        task_id = self._running.get((biz_id, room_id))
        if task_id is None:
            return {"TaskId": None, "RecordMode": None, "SubscribeRecordUserIds": None}
        task = self._tasks[task_id]
        lists = None
        if task.subscribe_user_ids or task.unsubscribe_user_ids:
            lists = {
                "SubscribeUserIds": list(task.subscribe_user_ids) or None,
                "UnSubscribeUserIds": list(task.unsubscribe_user_ids) or None,
            }
        return {
            "TaskId": task.task_id,
            "RecordMode": task.record_mode,
            "SubscribeRecordUserIds": lists,
        }

    def _describe_record_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.reject_unknown(params, frozenset({"BizId", "TaskId"}))
        task = self._find_task(*self._ids(params), running=False)
        status = RECORDING if task.running else UPLOAD_FINISHED
        begin = int(task.started_at)
        users: list[str] = []
        if task.record_mode in (2, 3):
            users.append("0")  # "0" is the mixed stream of the whole room
        if task.record_mode in (1, 3):
            users.extend(task.subscribe_user_ids)
        records = [
            {
                "UserId": user,
                "FileName": f"{task.biz_id}_{task.room_id}_{user}_{begin}.mp3",
                "RecordBeginTime": begin,
                "RecordStatus": status,
            }
            for user in users
        ]
        return {"RecordInfo": records, "RecordMode": task.record_mode, "RoomId": task.room_id}

    def _modify_record_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.reject_unknown(
            params, frozenset({"BizId", "TaskId", "RecordMode", "SubscribeRecordUserIds"})
        )
        biz_id, task_id = self._ids(params)
        mode = v.record_mode(params)
        lists = v.subscribe_lists(params)
        task = self._find_task(biz_id, task_id, running=True)
        # An omitted SubscribeRecordUserIds keeps the current lists; a given one replaces both.
        allowed, blocked = lists or (task.subscribe_user_ids, task.unsubscribe_user_ids)
        self._tasks[task.task_id] = replace(
            task, record_mode=mode, subscribe_user_ids=allowed, unsubscribe_user_ids=blocked
        )
        return {}

    # ----------------------------------------------------------------- helpers

    def _check_room(self, biz_id: int, room_id: str) -> None:
        if (biz_id, room_id) in self.missing_rooms:
            raise ApiError(
                "ResourceNotFound.RoomNotFound",
                f"Room {room_id!r} of BizId {biz_id} does not exist (nobody is in it).",
            )

    @staticmethod
    def _ids(params: Mapping[str, Any]) -> tuple[int, int]:
        biz_id = v.positive_int(params, "BizId", "InvalidParameterValue.InvalidBizId")
        task_id = v.positive_int(params, "TaskId", "InvalidParameterValue.InvalidTaskId")
        return biz_id, task_id

    def _find_task(self, biz_id: int, task_id: int, *, running: bool) -> Task:
        """The task, if it exists for this BizId (and still runs, when ``running``).

        A task of another BizId is reported as missing, never as someone else's task.
        """
        task = self._tasks.get(task_id)
        if task is None or task.biz_id != biz_id:
            raise ApiError(
                "ResourceNotFound.TaskNotFound",
                f"Task {task_id} does not exist for BizId {biz_id}.",
            )
        if running and not task.running:
            raise ApiError("ResourceNotFound.TaskNotFound", f"Task {task_id} is no longer running.")
        return task

    def _new_task_id(self) -> int:
        while True:
            task_id = TASK_ID_MIN + secrets.randbelow(TASK_ID_MAX - TASK_ID_MIN + 1)
            if task_id not in self._tasks:
                return task_id

    # ------------------------------------------------------- limits and faults

    @property
    def rate_limit(self) -> int:
        return self._limiter.limit

    def allow_rate(self, action: str, secret_id: str) -> bool:
        """Count one authenticated request of ``action`` by ``secret_id`` (False: refused)."""
        with self._lock:
            return self._limiter.allow((action, secret_id))

    def add_fault(self, kind: str, action: str, count: int, **details: Any) -> None:
        with self._lock:
            self._faults.add(kind, action, count, **details)

    def take_faults(self, action: str) -> FaultPlan:
        """Consume, for this request, the oldest pending fault of each kind that matches."""
        with self._lock:
            return self._faults.take(action, self._chaos)

    def set_chaos(self, chaos: Chaos | None) -> None:
        with self._lock:
            self._chaos = chaos

    def chaos_state(self) -> dict[str, Any] | None:
        with self._lock:
            return None if self._chaos is None else self._chaos.describe()

    # -------------------------------------------------------------- inspection

    def record_call(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def tasks(
        self, biz_id: int | None = None, room_id: str | None = None, running_only: bool = False
    ) -> list[Task]:
        with self._lock:
            self._end_capped()
            found = list(self._tasks.values())
        return [
            task
            for task in found
            if (biz_id is None or task.biz_id == biz_id)
            and (room_id is None or task.room_id == room_id)
            and (task.running or not running_only)
        ]

    def calls(self, action: str | None = None) -> list[Call]:
        with self._lock:
            found = list(self._calls)
        return [call for call in found if action is None or call.action == action]

    def reset(self) -> None:
        """Forget tasks, calls, pending faults, rate windows and missing rooms."""
        with self._lock:
            self._tasks.clear()
            self._running.clear()
            self._by_start.clear()
            self._calls.clear()
            self._faults.clear()
            self._limiter.reset()
            self.missing_rooms.clear()
            self._offset = 0.0
            self._chaos = None
