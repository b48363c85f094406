"""A freshly built idempotent use case serves its first calls side by side.

A worker's first batch after a cold start runs its records on ten threads at once, each the
first to use the recorder's persistence layer. Powertools configures a layer on first use and
marks it configured before it has compiled the key expression, so a second thread arriving in
between would read a key with no expression and fail the record
(``IdempotencyPersistenceLayerError``; seen once in the full suite on a loaded box). The window
is microseconds wide; these tests widen it by making the compile slow, then start eight first
calls at once, through the real layer on a real SQLite file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import jmespath
import pytest
from aws_lambda_powertools.utilities.idempotency.persistence import base as persistence_base

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from handler.adapters.gme_client import TencentGme
from handler.adapters.stores import build_persistence_layer
from handler.domain.decision import Decision, RecordPlan
from handler.domain.events import RoomEvent
from handler.domain.outcome import OutcomeStatus, StartCommand
from handler.ingress.enqueue import Enqueuer
from handler.service_layer.recorder import Recorder
from tests.conftest import BIZ_ID
from tests.integration.idempotency import FakeLambdaContext
from tests.unit.policy_helpers import room as room_event

T = TypeVar("T")
AT_ONCE = 8


@pytest.fixture
def slow_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Powertools' key-expression compile takes 50 ms: long enough for every thread to arrive."""
    original = jmespath.compile

    def compile_slowly(expression: str) -> Any:
        time.sleep(0.05)
        return original(expression)

    monkeypatch.setattr(persistence_base.jmespath, "compile", compile_slowly)


def all_at_once(call: Callable[[int], T]) -> list[T]:
    """``call(0)`` .. ``call(AT_ONCE - 1)``, released together."""
    gate = threading.Barrier(AT_ONCE)

    def together(i: int) -> T:
        gate.wait()
        return call(i)

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return list(pool.map(together, range(AT_ONCE)))


def command(i: int) -> StartCommand:
    return StartCommand(
        biz_id=BIZ_ID,
        room_id=f"cold-start-{i}",
        session="s-1",
        event_id=f"evt-cold-{i}",
        occurred_at=datetime.now(UTC),
        decision=Decision(
            record=True, rule="r", reason="test", policy_version="v", plan=RecordPlan()
        ),
    )


@pytest.mark.usefixtures("slow_compile")
def test_a_new_recorder_starts_eight_rooms_at_once(emulator: GmeEmulator, tmp_path: Path) -> None:
    gme = TencentGme(emulator.url, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, timeout_seconds=5)
    recorder = Recorder(gme, build_persistence_layer(f"sqlite:///{tmp_path / 'i.db'}"), 3600)
    recorder.register_context(FakeLambdaContext())
    outcomes = all_at_once(lambda i: recorder.ensure(command(i)))
    assert [o.status for o in outcomes] == [OutcomeStatus.STARTED] * AT_ONCE
    assert len(emulator.tasks(BIZ_ID)) == AT_ONCE


class Queue:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def publish(self, event: RoomEvent) -> str:
        with self._lock:
            self.sent.append(event.event_id)
            return f"m-{len(self.sent)}"


@pytest.mark.usefixtures("slow_compile")
def test_a_new_enqueuer_takes_eight_deliveries_at_once(tmp_path: Path) -> None:
    queue = Queue()
    enqueuer = Enqueuer(queue, build_persistence_layer(f"sqlite:///{tmp_path / 'i.db'}"), 3600)
    enqueuer.register_context(FakeLambdaContext())
    answers = all_at_once(lambda i: enqueuer.enqueue(room_event(f"cold-start-{i}")))
    assert sorted(a["event_id"] for a in answers) == sorted(queue.sent)
    assert len(set(queue.sent)) == AT_ONCE
