"""The local HTTP server (`make run`) as clients that misbehave or arrive together see it."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from handler.tools.cli import signed_request
from tests.e2e.test_local_run import _env, local_runner

FRESH_PROCESSES = 6
SIMULTANEOUS = 8


def _start(env: dict[str, str]):  # type: ignore[no-untyped-def]
    runner = local_runner(env)
    lines = runner.__enter__()
    seen: list[str] = []
    while True:
        line = lines.get(timeout=30)
        seen.append(line)
        if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
            return runner, lines, seen, m.group(1)


def _post_room(url: str, room: str) -> tuple[int, dict[str, object]]:
    doc = json.loads(Path("events/room-created.json").read_text())
    doc.update(id=f"evt-{room}", room_id=room, session=f"s-{room}")
    route, body, headers = signed_request(json.dumps(doc).encode())
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", route, body, headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _together(url: str, rooms: list[str]) -> list[tuple[int, dict[str, object]]]:
    """POST one room-created event per room, all released at the same instant."""
    gate = threading.Barrier(len(rooms))
    results: list[tuple[int, dict[str, object]]] = [(0, {})] * len(rooms)

    def send(i: int) -> None:
        gate.wait()
        results[i] = _post_room(url, rooms[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(rooms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.slow
def test_concurrent_first_requests_build_each_adapter_once(tmp_path: Path) -> None:
    """8 first requests at once on fresh processes: each is answered for its own room, every
    adapter is built once, and the pacing deadline stays the current request's, so calls that
    wait for a slot (or for their turn: `invoke_locally`) still get one later.
    GME_TIMEOUT_SECONDS=28 leaves 1.5 s of each 30 s local request for pacing waits: a gateway
    holding an older request's deadline answers NoTimeLeft within seconds instead of ~25 s."""
    for process in range(FRESH_PROCESSES):
        env = _env(tmp_path / str(process))
        (tmp_path / str(process)).mkdir()
        env.update(
            LOG_FORMAT="json",
            POWERTOOLS_LOG_LEVEL="DEBUG",
            LOCAL_TICK_SECONDS="0",
            GME_TIMEOUT_SECONDS="28",
        )
        runner, lines, seen, url = _start(env)
        try:
            first = _together(url, [f"p{process}-first-{i}" for i in range(SIMULTANEOUS)])
            time.sleep(2)  # older than the 1.5 s budget of the first requests' deadlines
            later = _together(url, [f"p{process}-later-{i}" for i in range(SIMULTANEOUS)])
        finally:
            runner.__exit__(None, None, None)
        seen += list(lines.queue)
        rooms = [
            f"p{process}-{batch}-{i}" for batch in ("first", "later") for i in range(SIMULTANEOUS)
        ]
        answers = [
            (s, b.get("code") or b.get("status"), b.get("room_id")) for s, b in first + later
        ]
        assert answers == [(200, "started", room) for room in rooms], process
        built = Counter(json.loads(line)["adapter"] for line in seen if '"adapter built"' in line)
        assert built, seen
        assert set(built.values()) == {1}, (process, built)


READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    env = _env(tmp_path_factory.mktemp("local-server"))
    env.update(LOCAL_TICK_SECONDS="0", LOCAL_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT))
    runner, _, _, url = _start(env)
    try:
        parts = urlsplit(url)
        yield str(parts.hostname), int(parts.port or 0)
    finally:
        runner.__exit__(None, None, None)


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Read one answer from a raw socket until the server closes it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _request(server: tuple[str, int], method: str, path: str, headers: list[tuple[str, str]],
             body: bytes = b"") -> tuple[int, dict[str, object]]:  # fmt: skip
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        assert resp.getheader("Content-Type") == "application/json"
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "GET"])
def test_every_method_gets_the_json_405(server: tuple[str, int], method: str) -> None:
    status, body = _request(server, method, "/v1/room-events", [])
    assert (status, body["code"]) == (405, "method_not_allowed")


def test_a_malformed_request_line_gets_json(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(b"POST /v1/room-events HTTP/7.0\r\n\r\n")
        status, body = _answer(sock)
    assert (status, body["code"]) == (505, "http_version_not_supported")


def test_a_stalled_body_is_dropped_with_408_and_others_are_served(server: tuple[str, int]) -> None:
    stalled = socket.create_connection(server, timeout=READ_TIMEOUT + 3)
    trickle = socket.create_connection(server, timeout=READ_TIMEOUT + 3)
    idle = socket.create_connection(server, timeout=READ_TIMEOUT + 3)
    try:
        started = time.monotonic()
        head = b"POST /v1/room-events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        stalled.sendall(head + b"{")
        trickle.sendall(head)
        assert _request(server, "GET", "/health", [])[0] == 200  # not held up by either
        for _ in range(int(READ_TIMEOUT / 0.2) + 2):  # a byte every 0.2 s: never idle, too slow
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                trickle.sendall(b" ")
        status, body = _answer(stalled)
        assert (status, body["code"]) == (408, "request_timeout")
        assert _answer(trickle)[0] == 408
        assert idle.recv(1) == b""  # a connection that never sends a request is closed
        assert time.monotonic() - started < READ_TIMEOUT + 2.5
    finally:
        for sock in (stalled, trickle, idle):
            sock.close()


def test_a_repeated_signing_header_is_400_over_http(server: tuple[str, int]) -> None:
    """Two webhook-signature headers, each valid alone: refused, as the deployed API refuses
    the comma-joined value API Gateway makes of them."""
    doc = json.loads(Path("events/room-created.json").read_text())
    doc.update(id="evt-repeated-header", room_id="repeated-header")
    route, body, headers = signed_request(json.dumps(doc).encode())
    pairs = [*headers.items(), ("Webhook-Signature", headers["webhook-signature"])]
    status, answer = _request(server, "POST", route, pairs, body)
    assert (status, answer["code"], answer["field"]) == (
        400, "duplicate_header", "webhook-signature"
    )  # fmt: skip
    doc = json.loads(Path("events/trtc-room-created.json").read_text())
    route, body, headers = signed_request(json.dumps(doc).encode())
    status, answer = _request(server, "POST", route, [*headers.items(), ("Sign", "x")], body)
    assert (status, answer["code"], answer["field"]) == (400, "duplicate_header", "sign")
