"""Real backing services for tests: moto_server (DynamoDB, SQS, SSM) and redis-server.

The one place that starts them. Each runs as a subprocess on a free 127.0.0.1 port, is waited
for until it answers, and is stopped by its own PID afterwards. Nothing is shared with the
machine beyond the port. tests/conftest.py turns them into session fixtures (``moto``,
``moto_url``, ``redis_url``): one process of each per test session, so tests keep apart by
naming their own queues, tables and parameters, or by flushing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait(check: Any, proc: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {timeout} s")


@dataclass(frozen=True)
class Moto:
    url: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="eu-west-1", **_keys())

    def resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(service, endpoint_url=self.url, region_name="eu-west-1", **_keys())


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


@contextlib.contextmanager
def moto_server() -> Iterator[Moto]:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **AWS_ENV},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(
            lambda: urllib.request.urlopen(f"{url}/moto-api/", timeout=1).status == 200,
            proc,
            "moto_server",
        )
        yield Moto(url)
    finally:
        _stop(proc)


def moto_env(
    monkeypatch: pytest.MonkeyPatch, url: str, *services: str, region: str = "eu-west-1"
) -> dict[str, str]:
    """Point boto3 at moto in this test's environment: test credentials and region, and
    ``AWS_ENDPOINT_URL_<SERVICE>`` for each service named (``AWS_ENDPOINT_URL`` for all when
    none is), as a deployed function finds its endpoints. Returns what was set."""
    env = {**AWS_ENV, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    if services:
        env.update({f"AWS_ENDPOINT_URL_{service.upper()}": url for service in services})
    else:
        env["AWS_ENDPOINT_URL"] = url
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


def create_idempotency_table(moto: Moto, name: str) -> None:
    """The table as serverless.yml declares it: ``id`` string key, TTL on ``expiration``."""
    ddb = moto.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def redis_server(*options: str) -> Iterator[str]:
    """A throwaway redis-server (no persistence, TLS off, ``options`` appended to its command
    line); yields ``redis://127.0.0.1:PORT/0``."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed; `make test` installs it")
    port = free_port()
    quiet = ["--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", *quiet, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            # Up, whether it wants a password (-NOAUTH) or not.
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))

    try:
        _wait(ping, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)
