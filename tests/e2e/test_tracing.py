"""Tracing and the cold-start metric on, as in Lambda with Active tracing: the real X-Ray SDK
streams its subsegments over UDP to a "daemon" that is a socket of ours, and they must name the
policy, the recorder and each GME call. Run in a child process: the X-Ray SDK patches
requests/botocore for the whole process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Stack, load_event

ROOT = Path(__file__).resolve().parents[2]
TRACE_HEADER = "Root=1-6742b5a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
CHILD = """
import json, sys
from handler.entrypoints import webhook
from handler.tools.local import LocalContext
result = webhook.handler(json.load(sys.stdin), LocalContext("webhook"))
print("RESULT " + json.dumps(result))
"""


def names(doc: dict[str, Any]) -> list[str]:
    out = [doc.get("name", "")]
    for sub in doc.get("subsegments", []):
        out.extend(names(sub))
    return out


def test_subsegments_reach_the_xray_daemon(stack: Stack, tmp_path: Path) -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(1)
    port = daemon.getsockname()[1]
    env = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "gme-autorecord-test-webhook",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "POWERTOOLS_METRICS_DISABLED": "false",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    request = stack.room_event_request(load_event("room-created.json"))
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    [result] = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert json.loads(result.removeprefix("RESULT "))["statusCode"] == 200
    # In Lambda (AWS_LAMBDA_FUNCTION_NAME set) the first invocation also counts a cold start.
    metrics = [
        m["Name"]
        for line in child.stdout.splitlines()
        if line.startswith("{") and '"_aws"' in line
        for m in json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    ]
    assert sorted(metrics) == ["ColdStart", "RecordingOutcome", "RecordingStarted", "TimeToRecord"]
    seen: list[str] = []
    try:
        while True:
            datagram = daemon.recv(65536).decode()
            header, _, body = datagram.partition("\n")
            assert json.loads(header)["format"] == "json"
            seen.extend(names(json.loads(body)))
    except TimeoutError:
        pass
    finally:
        daemon.close()
    for expected in (
        "## handler",
        "## policy.decide",
        "## recorder.ensure",
        "## gme.StartRecord",
    ):
        assert expected in seen, (expected, seen)
    assert "## gme.DescribeTaskInfo" not in seen  # a new room costs one GME call
    assert stack.starts() == 1
