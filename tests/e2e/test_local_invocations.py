"""The local server's threads and the Lambda entry points: one invocation at a time.

Lambda never runs two invocations in one execution environment at once, and the entry points
rely on it: Powertools' resolver holds the current event, the logger its keys and Metrics its
buffer in module globals. The local server reads and answers on many threads; these tests prove
the invocations themselves still take turns there, so no request is answered with another's event.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from handler.entrypoints import webhook
from handler.ingress.ingest import Route
from handler.tools.local import _Handler
from handler.tools.sending import signed_request
from tests.conftest import ROOT, Stack

AT_ONCE = 6


@pytest.fixture
def local_server(stack: Stack) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _post_room(port: int, room: str) -> tuple[int, dict[str, object]]:
    doc = json.loads((ROOT / "events" / "room-created.json").read_text())
    doc.update(id=f"evt-{room}", room_id=room, session=f"s-{room}")
    route, body, headers = signed_request(json.dumps(doc).encode())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", route, body, headers)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


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
    gate = threading.Barrier(AT_ONCE)
    answers: dict[str, tuple[int, dict[str, object]]] = {}

    def send(room: str) -> None:
        gate.wait()
        answers[room] = _post_room(local_server, room)

    threads = [threading.Thread(target=send, args=(room,)) for room in rooms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {room: (status, body.get("room_id")) for room, (status, body) in answers.items()} == {
        room: (200, room) for room in rooms
    }
    assert sorted(task.room_id for task in stack.emulator.tasks()) == sorted(rooms)
