"""Shared helpers: the emulator-backed environment, sample events, statistics, result lines.

Standard library only (plus the project itself). Every benchmark reports its verdicts through
`report()`, which prints a human line and a machine line that `python -m bench` collects.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SQS_EVENT = ROOT / "events" / "sqs-room-created.json"
RESULT_PREFIX = "BENCH-RESULT "
MACHINE_ENV = "BENCH_REPORT_RESULTS"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    rank = max(1, -(-95 * len(ordered) // 100))  # ceil(0.95 * n)
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


@dataclass(frozen=True)
class Result:
    bench: str
    metric: str
    value: float
    target: float
    op: str  # "<=" or ">="
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.target if self.op == "<=" else self.value >= self.target


def report(result: Result) -> Result:
    verdict = "PASS" if result.passed else "MISS"
    value = f"{result.value:.3f}" if result.value % 1 else f"{result.value:.0f}"
    print(f"  => {result.metric} = {value} (target {result.op} {result.target:g}): {verdict}")
    if os.environ.get(MACHINE_ENV):  # set by `python -m bench`, which collects these lines
        print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
    sys.stdout.flush()
    return result


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the measured part.

    The Powertools logger still formats and writes every JSON line (that cost is part of the
    handler path, as in Lambda), but the terminal does not have to render them.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def app_environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in the environment of a freshly built app; the previous environment (and a
    fresh app) afterwards."""
    from handler.bootstrap import app

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    app.reset()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        app.reset()


@contextlib.contextmanager
def handler_environment(
    emu: Any, store: str | None = None, extra: dict[str, str] | None = None
) -> Iterator[Path]:
    """Point the handler at ``emu`` with ``store`` (default: a fresh SQLite file) as
    ``IDEMPOTENCY_STORE``, a fresh SQLite ledger and ``extra`` variables, then reset the app.

    Yields the temporary directory; the previous environment is restored afterwards.
    """
    from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

    with tempfile.TemporaryDirectory(prefix="gme-bench-") as tmp:
        values = {
            "IDEMPOTENCY_STORE": store or f"sqlite:///{tmp}/idem.db",
            # The ledger stays on SQLite whatever the idempotency store, so store rows compare
            # idempotency stores only.
            "LEDGER_STORE": f"sqlite:///{tmp}/ledger.db",
            "GME_ENDPOINT": emu.url,
            "TENCENTCLOUD_SECRET_ID": DEFAULT_SECRET_ID,
            "TENCENTCLOUD_SECRET_KEY": DEFAULT_SECRET_KEY,
            **(extra or {}),
        }
        with app_environment(values):
            yield Path(tmp)


def _template() -> tuple[dict[str, Any], dict[str, Any]]:
    event = json.loads(SQS_EVENT.read_text(encoding="utf-8"))
    record = event["Records"][0]
    return record, json.loads(record["body"])


_RECORD, _BODY = _template()
RUN_ID = uuid.uuid4().hex[:8]


def room_id(prefix: str, index: int) -> str:
    """A room the default policy records (``ranked-*`` with mode=ranked, players>=2)."""
    return f"ranked-{prefix}-{RUN_ID}-{index}"


def event_body(room: str, at: float | None = None, **fields: Any) -> str:
    """A fresh room-created event (room event v1) for ``room`` at ``at`` (default: now), the
    template's other fields replaced by ``fields`` (``biz_id=...``)."""
    body = dict(_BODY)
    body.update(
        id=f"evt-{uuid.uuid4().hex}",
        room_id=room,
        session=f"match-{uuid.uuid4().hex[:8]}",
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
    )
    body.update(fields)
    return json.dumps(body)


def sqs_record(room: str, **fields: Any) -> dict[str, Any]:
    """One SQS record carrying a fresh room-created event (see `event_body`) for ``room``."""
    record = copy.deepcopy(_RECORD)
    record["messageId"] = str(uuid.uuid4())
    record["body"] = event_body(room, **fields)
    return record


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def biz_id() -> int:
    return int(_BODY["biz_id"])


def header(title: str) -> None:
    print(f"\n== {title}", flush=True)
