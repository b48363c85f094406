"""The HTTP face of the emulator: Tencent Cloud API 3.0 over plain HTTP/1.1.

The real SDK is the client, so the server reproduces what the SDK depends on: every API answer is
HTTP 200 with ``Content-Type: application/json`` exactly (anything else and the SDK stops looking
for ``Error``), keep-alive connections (the SDK pools one session per client), and no Nagle delay
(headers and body go out in two writes; with Nagle on, each call would wait for a delayed ACK).

This module owns sockets, threads, routing and the ``/_emulator/*`` inspection routes; what an
API request means is decided in ``emulator.protocol`` and ``emulator.state``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from emulator.chaos import Chaos
from emulator.protocol import JSON_CONTENT_TYPE, ApiProtocol
from emulator.state import Call, RecordingService, Task

# Published on purpose: local-only credentials that tests and the local runner share.
DEFAULT_SECRET_ID = "AKIDgmeautorecordemulator"  # noqa: S105
DEFAULT_SECRET_KEY = "emulator-secret-key-not-a-secret"  # noqa: S105
MAX_BODY_BYTES = 10 * 1024 * 1024  # the API 3.0 limit for TC3-signed POST bodies
INSPECTION_PREFIX = "/_emulator/"

logger = logging.getLogger("emulator")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its emulator and stays quiet about client hang-ups."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: GmeEmulator, family: int) -> None:
        self.address_family = family
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients time out and hang up mid-answer on purpose in tests; that is not news.
        # socketserver calls this inside its except block, so the exception is current.
        logger.debug("connection from %s ended: %r", client_address, sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections release their thread eventually
    server_version = "gme-emulator"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.emulator._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Silence the default per-request stderr line; tests and benchmarks stay readable."""

    def _send(self, status: int, payload: dict[str, Any], content_type: str) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client left (e.g. after its own timeout)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a framing error (and closing)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(411, {"error": "chunked bodies are not supported"}, JSON_CONTENT_TYPE)
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {"error": "bad or too large Content-Length"}, JSON_CONTENT_TYPE)
            return None
        return self.rfile.read(length) if length else b""

    def _route(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        emulator = self.server.emulator
        if self.command == "POST" and url.path == "/":
            headers = {name.lower(): value for name, value in self.headers.items()}
            half_trip = emulator.latency / 2  # the way in: GME counts the request on arrival
            if half_trip:
                time.sleep(half_trip)
            status, payload, content_type, drop = emulator._protocol.answer(
                headers, body, url.query
            )
            if half_trip:
                time.sleep(half_trip)  # and the way back
            if drop:
                self.close_connection = True  # no status line, no headers: a lost response
                return
            self._send(status, payload, content_type)
            return
        found = emulator._inspect(self.command, url.path, parse_qs(url.query), body)
        if found is None:
            found = (404, {"error": f"no route for {self.command} {url.path}"})
        self._send(found[0], found[1], JSON_CONTENT_TYPE)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _route


class GmeEmulator:
    """A local GME recording API (2018-07-11) that the official SDK can talk to.

    Use ``endpoint`` with ``HttpProfile(endpoint=emu.endpoint, protocol="http")``. State is kept
    in memory and survives ``stop()``/``start()``; ``reset()`` clears it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: dict[str, str] | None = None,
        rate_limit_per_second: int = 20,
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0")
        self.host = host
        #: Seconds of network round trip every API call takes (half before GME counts it, half
        #: after), as from an AWS region to Tencent Cloud; 0 on loopback. For benchmarks.
        self.latency = latency
        self._requested_port = port
        self._service = RecordingService(clock, rate_limit_per_second)
        self._protocol = ApiProtocol(
            self._service, credentials or {DEFAULT_SECRET_ID: DEFAULT_SECRET_KEY}, clock
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self so ``emu = GmeEmulator().start()``."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = _Server((self.host, self._requested_port), self, family)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns quickly
            name=f"gme-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, so no request is answered after."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
            self._connections.clear()
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """``host:port`` with no scheme: the form ``HttpProfile(endpoint=...)`` signs correctly."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def advance(self, seconds: float) -> None:
        """Move the task clock (task ages, the 24-hour cap) forward; signatures keep real time."""
        self._service.advance(seconds)

    def now(self) -> float:
        """The task clock: what StartRecord stamps and the 24-hour cap measures against."""
        return self._service.now()

    @property
    def missing_rooms(self) -> set[tuple[int, str]]:
        """(BizId, RoomId) pairs that answer ResourceNotFound.RoomNotFound; add to it freely."""
        return self._service.missing_rooms

    # ------------------------------------------------------------ fault control

    def fail_next(self, action: str, code: str, message: str = "injected", count: int = 1) -> None:
        """Answer the next ``count`` calls of ``action`` with this error instead of executing."""
        if not code:
            raise ValueError("code must be a non-empty error code")
        self._service.add_fault("fail", action, count, code=code, message=message)

    def drop_next(self, action: str, count: int = 1, after_execute: bool = True) -> None:
        """Close the connection without any answer, after executing the call by default.

        That is the lost-response case: StartRecord created a task but the client never learns
        its id and sees a network error. ``after_execute=False`` loses the request instead.
        """
        self._service.add_fault("drop", action, count, after_execute=after_execute)

    def delay_next(
        self, action: str, seconds: float, count: int = 1, after_execute: bool = True
    ) -> None:
        """Sleep ``seconds`` before answering (after executing, unless ``after_execute=False``).

        With a client timeout shorter than the delay this is a slow success the client gave up
        on, the case where a retried StartRecord meets its own task.
        """
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._service.add_fault(
            "delay", action, count, seconds=seconds, after_execute=after_execute
        )

    def bad_content_type_next(self, action: str, count: int = 1) -> None:
        """Answer with ``Content-Type: application/json; charset=utf-8``.

        The SDK only looks for ``Error`` under the exact ``application/json``: an error answer
        (injected or real) then becomes a model with null fields and no exception. A success
        answer still parses normally.
        """
        self._service.add_fault("bad_content_type", action, count)

    def chaos(
        self,
        rates: dict[str, float],
        seed: int = 0,
        slow_seconds: float = 2.0,
        actions: list[str] | None = None,
    ) -> None:
        """Give every call a chance of a fault (see ``emulator.chaos``); ``rates={}`` stops it.

        Also over HTTP, for other processes: ``POST /_emulator/chaos`` with the same fields as
        JSON, ``GET`` for the rates and the faults injected so far, ``DELETE`` to stop.
        """
        self._service.set_chaos(
            Chaos(
                rates=dict(rates),
                seed=seed,
                slow_seconds=slow_seconds,
                actions=None if actions is None else frozenset(actions),
            )
            if rates
            else None
        )

    def chaos_counts(self) -> dict[str, int]:
        """Faults chaos injected so far, keyed ``"Action:kind"``."""
        state = self._service.chaos_state()
        return dict(state["counts"]) if state else {}

    # --------------------------------------------------------------- inspection

    def tasks(
        self, biz_id: int | None = None, room_id: str | None = None, running_only: bool = False
    ) -> list[Task]:
        return self._service.tasks(biz_id, room_id, running_only)

    def calls(self, action: str | None = None) -> list[Call]:
        return self._service.calls(action)

    def reset(self) -> None:
        self._service.reset()

    def set_credentials(self, credentials: dict[str, str]) -> None:
        """Rotate credentials as a Tencent Cloud account does: from now on only these
        SecretId → SecretKey pairs are accepted; any other answers AuthFailure.*."""
        self._protocol.set_credentials(credentials)

    def _inspect(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes = b""
    ) -> tuple[int, dict[str, Any]] | None:
        """Answer the ``/_emulator/*`` routes; None when the route does not exist."""
        if not path.startswith(INSPECTION_PREFIX):
            return None
        route = (method, path[len(INSPECTION_PREFIX) :].rstrip("/"))
        first = {name: values[-1] for name, values in query.items()}
        if route == ("GET", "health"):
            return 200, {"ok": True}
        if route == ("POST", "reset"):
            self.reset()
            return 200, {"reset": True}
        if route == ("POST", "advance"):  # move the task clock: ?seconds=3600
            try:
                seconds = float(first.get("seconds", ""))
                self.advance(seconds)
            except ValueError:
                return 400, {"error": "seconds must be a number >= 0"}
            return 200, {"now": self.now()}
        if route[1] == "chaos":
            return self._chaos_route(method, body)
        if route == ("GET", "calls"):
            calls = self.calls(first.get("action"))
            return 200, {"calls": [_with_id_str(asdict(call)) for call in calls]}
        if route == ("GET", "tasks"):
            try:
                biz_id = int(first["biz_id"]) if "biz_id" in first else None
            except ValueError:
                return 400, {"error": "biz_id must be an integer"}
            running_only = first.get("running_only", "").lower() in ("1", "true", "yes")
            tasks = self.tasks(biz_id, first.get("room_id"), running_only)
            return 200, {
                "tasks": [_with_id_str(asdict(task) | {"running": task.running}) for task in tasks]
            }
        return None

    def _chaos_route(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method == "GET":
            return 200, {"chaos": self._service.chaos_state()}
        if method == "DELETE":
            self._service.set_chaos(None)
            return 200, {"chaos": None}
        if method != "POST":
            return 405, {"code": "method_not_allowed", "error": "use GET, POST or DELETE"}
        try:
            doc = json.loads(body or b"null")
            if not isinstance(doc, dict):
                raise ValueError("the body must be a JSON object")
            chaos = Chaos.from_json(doc)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            return 400, {"code": "invalid_chaos", "error": str(exc)}
        self._service.set_chaos(chaos)
        return 200, {"chaos": chaos.describe()}

    # ---------------------------------------------------------------- API calls


def _with_id_str(item: dict[str, Any]) -> dict[str, Any]:
    """Add ``task_id_str`` so clients whose JSON parser uses floats can still read the id."""
    task_id = item.get("task_id")
    return item | {"task_id_str": None if task_id is None else str(task_id)}
