"""A counting loopback proxy in front of moto_server: every DynamoDB request any client makes
(ledger, idempotency, pacing) passes through it, and it counts requests by operation and table,
and the items each one read (GetItem 1, Query/Scan `ScannedCount`, BatchGetItem its answers),
as DynamoDB would bill them. Point `AWS_ENDPOINT_URL_DYNAMODB` at `url`."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


class DynamoDBCounter:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.calls: Counter[tuple[str, str]] = Counter()
        self.items_read: Counter[str] = Counter()
        #: Requests refused on a condition (billed, like any write).
        self.refused: Counter[str] = Counter()
        self._lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("POST", self.path, body, headers)
                answer = conn.getresponse()
                data = answer.read()
                counter._count(self.headers.get("x-amz-target", ""), body, data)
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _count(self, target: str, request: bytes, response: bytes) -> None:
        op = target.rsplit(".", 1)[-1]
        req = json.loads(request or b"{}")
        table = req.get("TableName") or next(iter(req.get("RequestItems", {})), "")
        try:
            got = json.loads(response or b"{}")
        except ValueError:
            got = {}
        if op == "GetItem":
            read = 1 if got.get("Item") else 0
        elif op in ("Query", "Scan"):
            read = int(got.get("ScannedCount", got.get("Count", 0)))
        elif op == "BatchGetItem":
            read = sum(len(v) for v in got.get("Responses", {}).values())
        else:
            read = 0
        with self._lock:
            self.calls[(op, table)] += 1
            self.items_read[table] += read
            if "ConditionalCheckFailed" in str(got.get("__type", "")):
                self.refused[table] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.items_read.clear()
            self.refused.clear()

    def requests(self, table: str | None = None) -> int:
        return sum(n for (_, t), n in self.calls.items() if table is None or t == table)

    def __enter__(self) -> DynamoDBCounter:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
