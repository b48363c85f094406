"""The zip as Lambda runs it. Its `handler/` and `policies/` (with their Python 3.12 bytecode),
beside the same dependencies built for this machine's CPU (`make smoke`) and only the boto3 the
Lambda runtime brings, are imported by a Python 3.12 that sees nothing else: no site-packages, no
repository, no tests. A signed room event through the webhook entry starts one recording on the
emulator, the same event through the worker entry is answered as a duplicate, a scheduler tick
runs, and every module loaded on the way came from those folders or the standard library.

What this catches that the other tests cannot: a module the code imports but `requirements.txt`
does not ship (the venv has the dev requirements too), code that fails on Python 3.12, and
bytecode in the zip that does not load.
"""

from __future__ import annotations

import json
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from handler.domain.signatures import sign_standard_webhook, standard_webhook_key
from handler.tools.local import http_event
from tests.conftest import ROOT, WEBHOOK_SECRET, load_event, sqs_event
from tests.deploy.helpers import ARTIFACT, lambda_python

SMOKE = ROOT / "build" / "smoke"

# Runs in the bare Python 3.12: the two folders first on the path, then the entries' work.
PRELUDE = r"""
import json, os, sys, sysconfig
function_dir, runtime_dir = os.environ["FUNCTION_DIR"], os.environ["RUNTIME_DIR"]
sys.path[:0] = [function_dir, runtime_dir]
import handler.entrypoints.scheduler, handler.entrypoints.webhook, handler.entrypoints.worker


class Context:
    function_name = "smoke"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:smoke"
    aws_request_id = "smoke-request"

    def get_remaining_time_in_millis(self):
        return 20_000
"""
DRIVER = (
    PRELUDE
    + r"""

events = json.load(sys.stdin)
results = {
    "webhook": handler.entrypoints.webhook.handler(events["webhook"], Context()),
    "worker": handler.entrypoints.worker.handler(events["worker"], Context()),
    "scheduler": handler.entrypoints.scheduler.handler(events["scheduler"], Context()),
}
allowed = (function_dir, runtime_dir, sysconfig.get_paths()["stdlib"],
           sysconfig.get_paths()["platstdlib"])
outside = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith(allowed)
)
print(json.dumps({"results": results, "outside": outside}))
"""
)

pytestmark = [
    pytest.mark.skipif(lambda_python() is None, reason="no Python 3.12: `make artifact` warned"),
    pytest.mark.skipif(
        not (SMOKE / ".installed").exists(), reason="run `make smoke` (part of `make test`)"
    ),
]


def function_folder(into: Path) -> Path:
    """The zip's own handler/ and policies/ (bytecode included), the smoke dependencies beside."""
    with zipfile.ZipFile(ARTIFACT) as archive:
        ours = [n for n in archive.namelist() if n.startswith(("handler/", "policies/"))]
        archive.extractall(into, members=ours)
    for item in (SMOKE / "deps").iterdir():
        (into / item.name).symlink_to(item)
    return into


def lambda_env(folder: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """What the Lambda runtime sets, the deployment's settings, nothing from this machine."""
    return {
        "PATH": "/usr/bin:/bin",
        "FUNCTION_DIR": str(folder),
        "RUNTIME_DIR": str(SMOKE / "runtime"),
        "AWS_LAMBDA_FUNCTION_NAME": "smoke",
        "AWS_REGION": "eu-west-1",
        "POWERTOOLS_METRICS_NAMESPACE": "GmeAutorecord",
        "IDEMPOTENCY_STORE": f"sqlite:///{tmp_path}/idempotency.db",
        "WEBHOOK_SECRETS": WEBHOOK_SECRET,
        **extra,
    }


def events() -> dict[str, Any]:
    room = load_event("room-created.json")
    raw = json.dumps(room).encode()
    stamp = int(time.time())
    signature = sign_standard_webhook(standard_webhook_key(WEBHOOK_SECRET), "smoke-1", stamp, raw)
    headers = {
        "content-type": "application/json",
        "webhook-id": "smoke-1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }
    return {
        "webhook": http_event("POST", "/v1/room-events", headers, raw),
        "worker": sqs_event(room),
        "scheduler": {"id": "smoke-tick", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }


def test_the_zip_records_a_room_with_nothing_but_its_own_contents(tmp_path: Path) -> None:
    assert ARTIFACT.exists(), "run `make package`"
    folder = function_folder(tmp_path / "function")
    python = lambda_python()
    assert python is not None
    with GmeEmulator() as emu:
        env = lambda_env(
            folder,
            tmp_path,
            GME_ENDPOINT=emu.url,
            TENCENTCLOUD_SECRET_ID=DEFAULT_SECRET_ID,
            TENCENTCLOUD_SECRET_KEY=DEFAULT_SECRET_KEY,
        )
        done = subprocess.run(
            [python, "-I", "-S", "-c", DRIVER],  # -I -S: no site-packages, no user paths
            input=json.dumps(events()),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        tasks = emu.tasks()

    assert report["outside"] == []
    webhook = report["results"]["webhook"]
    assert webhook["statusCode"] == 200, webhook
    assert json.loads(webhook["body"])["status"] == "started"
    assert report["results"]["worker"] == {"batchItemFailures": []}  # a duplicate, answered
    assert report["results"]["scheduler"]["status"] == "ok"
    assert len(tasks) == 1


# The webhook of the default zip, given settings that need a part the zip lacks.
MISSING_PART_DRIVER = (
    PRELUDE
    + r"""
print(json.dumps(handler.entrypoints.webhook.handler(json.load(sys.stdin), Context())))
"""
)


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"IDEMPOTENCY_STORE": "redis://127.0.0.1:1/0"}, "EXTRAS=redis"),
        ({"POWERTOOLS_TRACE_DISABLED": "false", "LAMBDA_TASK_ROOT": "/var/task"}, "EXTRAS=xray"),
    ],
)
def test_a_setting_needing_a_part_the_default_zip_lacks_is_refused_by_name(
    tmp_path: Path, setting: dict[str, str], named: str
) -> None:
    """No ImportError on a request: the webhook answers 503 misconfigured (the sender retries)
    and its log line names the setting and the build option that adds the part."""
    assert ARTIFACT.exists(), "run `make package`"
    assert ARTIFACT.with_suffix(".extras").read_text().split() == [], "needs the default zip"
    folder = function_folder(tmp_path / "function")
    env = lambda_env(folder, tmp_path, **setting)
    done = subprocess.run(
        [str(lambda_python()), "-I", "-S", "-c", MISSING_PART_DRIVER],
        input=json.dumps(events()["webhook"]),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    *logs, last = done.stdout.strip().splitlines()
    answer = json.loads(last)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["code"] == "misconfigured"
    assert "Traceback" not in done.stdout + done.stderr
    [error] = [json.loads(line) for line in logs if '"configuration error"' in line]
    assert named in error["error"], error
