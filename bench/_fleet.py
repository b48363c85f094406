"""The worker fleet in virtual time: Lambda's SQS poller running the real record handler.

`Fleet` models the deployed event source mapping (`maximumConcurrency` invocations, each with a
batch of up to `batchSize` messages and the worker's timeout as its deadline); whether the
records of a batch run side by side is not assumed but probed on the real `worker.process_batch`
(`batch_runs_side_by_side`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bench._common import room_id, stdout_to_devnull
from bench._stack import Shape, scratch_app
from bench._virtual import Message, SimQueue, VirtualClock, Waiter
from handler.domain.decision import RecordPlan
from handler.domain.gme import RunningTask

#: Seconds from the end of one invocation to the start of the next on the same instance.
POLL_GAP = 0.1


class VirtualContext:
    """The Lambda context parts the code reads, its deadline on the virtual clock."""

    function_name = "gme-autorecord-bench-worker"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:bench:000000000000:function:worker"
    memory_limit_in_mb = 256
    aws_request_id = "bench"
    log_group_name = log_stream_name = "bench"

    def __init__(self, clock: VirtualClock, deadline: float) -> None:
        self._clock = clock
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.now()) * 1000))


@dataclass
class Fleet:
    """``shape.instances`` worker invocations at a time, each taking up to ``shape.batch_size``
    messages and running them side by side (``concurrent``) or one after another, then polling
    again; a failed record goes back to the queue. Each record runs the worker's own
    ``record_handler`` (parse, dispatch to the service or the lifecycle steps)."""

    clock: VirtualClock
    queue: SimQueue
    shape: Shape
    concurrent: bool = True
    poll_gap: float = POLL_GAP
    failures: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        for _ in range(self.shape.instances):
            self.clock.spawn(self._instance)

    def _instance(self) -> None:
        lanes = self.shape.batch_size if self.concurrent else 1
        inboxes: list[list[Message]] = [[] for _ in range(lanes)]
        idle = [Waiter() for _ in range(lanes)]
        done = Waiter()
        left = [0]
        ctx: list[VirtualContext] = []

        def lane(i: int) -> None:
            while True:
                if not inboxes[i]:
                    self.clock.wait(idle[i])
                    continue
                while inboxes[i]:
                    self._run(inboxes[i].pop(0), ctx[0])
                left[0] -= 1
                if left[0] == 0:
                    self.clock.wake(done)

        for i in range(lanes):
            self.clock.spawn(lane, i)
        while True:
            batch = self.queue.receive(self.shape.batch_size)
            ctx[:] = [VirtualContext(self.clock, self.clock.now() + self.shape.timeout)]
            for n, msg in enumerate(batch):
                inboxes[n % lanes].append(msg)
            left[0] = sum(1 for box in inboxes if box)
            for i in range(lanes):
                if inboxes[i]:
                    self.clock.wake(idle[i])
            self.clock.wait(done)
            self.clock.sleep(self.poll_gap)  # the poller hands this instance its next batch

    def _run(self, msg: Message, context: VirtualContext) -> None:
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

        from handler.bootstrap import app
        from handler.entrypoints import worker

        app.bind_context(context)
        record = SQSRecord(
            {
                "messageId": msg.message_id,
                "body": msg.body,
                "attributes": {"ApproximateReceiveCount": str(msg.receives)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
        )
        try:
            worker.record_handler(record)
        except Exception as exc:
            name = getattr(exc, "code", None) or type(exc).__name__
            self.failures[name] = self.failures.get(name, 0) + 1
            self.queue.settle(msg, ok=False)
        else:
            self.queue.settle(msg, ok=True)


class _OverlapProbe:
    """A gateway whose StartRecord takes 50 ms of real time and notes how many overlap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 0
        self.peak = 0

    def start_record(self, biz_id: int, room_id: str, plan: RecordPlan) -> str:
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)
        time.sleep(0.05)
        with self._lock:
            self._now -= 1
        return str(abs(hash(room_id)))

    def describe_task(self, biz_id: int, room_id: str) -> RunningTask | None:
        return None


def batch_runs_side_by_side(batch_size: int) -> bool:
    """Whether the real ``worker.process_batch`` runs the records of one batch at the same
    time: three new rooms through it, on a gateway that sees how many starts overlap."""
    from bench._common import sqs_event, sqs_record
    from handler.bootstrap import app
    from handler.entrypoints import worker
    from handler.tools.local import LocalContext

    probe = _OverlapProbe()
    with scratch_app(), stdout_to_devnull():
        app.gme.provide(probe)
        records = [sqs_record(room_id("probe", i)) for i in range(min(3, batch_size))]
        worker.process_batch(sqs_event(records), LocalContext("worker"))
    return probe.peak > 1
