"""The local server's threads and the Lambda entry points: one invocation at a time.

Lambda never runs two invocations in one execution environment at once, and the entry points
rely on it: Powertools' resolver holds the current event, the logger its keys and Metrics its
buffer in module globals. The local server reads and answers on many threads; these tests prove
the invocations themselves still take turns there, so no request is answered with another's event.
"""

from __future__ import annotations

import time

import pytest

from handler.entrypoints import webhook
from handler.ingress.ingest import Route
from tests.conftest import Stack
from tests.e2e.test_local_server import _together

AT_ONCE = 6


def test_requests_at_once_each_get_the_answer_to_their_own_event(
    stack: Stack, local_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six signed room events released together. The route is slowed by 0.2 s between the
    resolver taking the event and the route reading it, the gap in which a second invocation on
    another thread replaced the first one's event before the server took turns: rooms were then
    recorded under the wrong request and others answered `in_progress`."""
    route = webhook._accept

    def slow_route(which: Route) -> object:
        time.sleep(0.2)
        return route(which)

    monkeypatch.setattr(webhook, "_accept", slow_route)
    rooms = [f"at-once-{i}" for i in range(AT_ONCE)]
    answers = dict(zip(rooms, _together(f"http://127.0.0.1:{local_server}", rooms), strict=True))
    assert {room: (status, body.get("room_id")) for room, (status, body) in answers.items()} == {
        room: (200, room) for room in rooms
    }
    assert sorted(task.room_id for task in stack.emulator.tasks()) == sorted(rooms)
