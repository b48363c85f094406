"""The local HTTP server with the deployed routes, the API Gateway event it builds and the
Lambda context it passes: what `make run` (`handler.tools.runner`) and the tests serve the webhook
with. Local only; nothing here runs in Lambda.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from handler.domain.headers import join_repeated

#: Local-only signing keys, used when the real ones are not configured. Never deploy them.
LOCAL_WEBHOOK_SECRET = "whsec_bG9jYWwtZGV2LW9ubHktbm90LWEtc2VjcmV0"  # noqa: S105 - public dev key
LOCAL_CALLBACK_KEY = "local-dev-only-callback-key"
LOCAL_TRTC_APP_ID = "1400000000"  # the app `send` signs TRTC bodies for (TRTC_SDK_APP_ID)
LOCAL_DEFAULTS = {
    "WEBHOOK_SECRETS": LOCAL_WEBHOOK_SECRET,
    "TRTC_CALLBACK_KEY": f"{LOCAL_TRTC_APP_ID}:{LOCAL_CALLBACK_KEY}",  # bound, as keys must be
    "GME_CALLBACK_KEY": LOCAL_CALLBACK_KEY,
}


class LocalContext:
    """The parts of the Lambda context Powertools reads."""

    def __init__(self, function_name: str, timeout_ms: int = 30_000) -> None:
        self.function_name = f"gme-autorecord-local-{function_name}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "local"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


#: Lambda runs one invocation at a time in an execution environment, and the entry points rely on
#: it: Powertools' resolver keeps the current event, the logger its keys and Metrics its buffer in
#: module globals. The local server reads and answers on many threads, so its invocations (the
#: webhook's and the local scheduler's) take turns here, as one environment's would.
_one_invocation_at_a_time = threading.Lock()


def invoke_locally(
    entry: Callable[[dict[str, Any], Any], dict[str, Any]], event: dict[str, Any], function: str
) -> dict[str, Any]:
    """Run one Lambda entry point on one event, after any invocation already running; its
    context's clock starts when it runs (time spent waiting for a turn is not its own)."""
    with _one_invocation_at_a_time:
        return entry(event, LocalContext(function))


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def http_event(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Build the API Gateway HTTP API (payload 2.0) event the deployed webhook receives."""
    now = time.time()
    try:
        text, b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        import base64

        text, b64 = base64.b64encode(body).decode(), True
    route, _, query = path.partition("?")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": route,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": route,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": text,
        "isBase64Encoded": b64,
    }


#: API Gateway HTTP APIs take payloads up to 10 MB; the local server stops well before.
MAX_LOCAL_BODY = 2 * 1024 * 1024

#: Seconds a client may stay silent while sending a request line or a header, and may take for
#: the whole body (LOCAL_READ_TIMEOUT_SECONDS). A slower client is dropped, so it cannot hold a
#: server thread forever; an idle keep-alive connection is closed after as long.
DEFAULT_READ_TIMEOUT = 10.0

#: Machine codes for the answers the stdlib server gives before a request reaches the webhook.
_SERVER_CODES = {
    400: "bad_request",
    408: "request_timeout",
    414: "uri_too_long",
    431: "headers_too_large",
    505: "http_version_not_supported",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "gme-autorecord-local"
    timeout = DEFAULT_READ_TIMEOUT  # the socket's: per read while the request line and headers come

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Every method, TRACE and CONNECT included, goes to the webhook's router, which answers
        # the JSON 405 (or 404) the deployed API gives, not the stdlib's HTML 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        from handler.entrypoints import webhook

        # Repeated headers are joined with commas, as API Gateway does before the function
        # runs, so the webhook refuses a repeated signing header alike in both places.
        headers = join_repeated(self.headers.items())
        length_text = headers.get("content-length") or "0"
        length = int(length_text) if length_text.isascii() and length_text.isdigit() else -1
        if not 0 <= length <= MAX_LOCAL_BODY:
            # API Gateway refuses these before any function runs; do the same, unread.
            code = "body_too_large" if length > 0 else "bad_content_length"
            self._refuse(413 if length > 0 else 400, code, code)
            return
        body = self._read_body(length)
        if body is None:
            self._refuse(408, "request_timeout", f"body not received within {self.timeout:g} s")
            return
        event = http_event(self.command, self.path, headers, body)
        result = invoke_locally(webhook.handler, event, "webhook")
        self._send(result.get("statusCode", 500), result.get("headers") or {}, result.get("body"))
        self.answered(self.command, self.path, result)

    def answered(self, method: str, path: str, result: dict[str, Any]) -> None:
        """Called after each answer; `make run` prints its one line per event here."""

    def _read_body(self, length: int) -> bytes | None:
        """The body, read within one read timeout in all (not per read, so a client trickling
        a byte at a time is dropped too); None when it did not arrive in time."""
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        missing = length
        try:
            while missing > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(missing, 65536))
                if not chunk:
                    return None
                chunks.append(chunk)
                missing -= len(chunk)
        except TimeoutError:
            return None
        finally:
            self.connection.settimeout(self.timeout)
        return b"".join(chunks)

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.close_connection = True
        body = json.dumps({"code": code, "message": message})
        self._send(status, {"Content-Type": "application/json", "Connection": "close"}, body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (malformed request line, headers too long or too many) as
        JSON with a machine code, like every other answer, instead of an HTML page; always
        with a status line, even when the request line never got to name its HTTP version."""
        self.request_version = self.protocol_version
        text = message or HTTPStatus(code).phrase
        self._refuse(code, _SERVER_CODES.get(code, "bad_request"), text)

    def _send(self, status: int, headers: dict[str, str], body: str | None) -> None:
        payload = (body or "").encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass
