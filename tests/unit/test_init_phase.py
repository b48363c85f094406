"""Each entry module's init phase runs without the cyclic collector and leaves it on, with what
the import built frozen; and it never turns on a collector someone else had turned off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ENTRIES = [
    "handler.entrypoints.webhook",
    "handler.entrypoints.worker",
    "handler.entrypoints.scheduler",
]

PROBE = """
import gc, json, sys
{prelude}
before = [g["collections"] for g in gc.get_stats()]
import {module}
after = [g["collections"] for g in gc.get_stats()]
print(json.dumps({{"collections": [a - b for a, b in zip(after, before)],
                  "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}))
"""
#: Bytecode may be written: the first probe of a module compiles it (as a deployed artifact
#: ships it compiled), so that compiling, which allocates, is not counted as the init phase.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _probe(module: str, prelude: str = "") -> dict[str, object]:
    program = [sys.executable, "-c", PROBE.format(module=module, prelude=prelude)]
    subprocess.run(program, cwd=ROOT, env=ENV, capture_output=True, check=True)  # compiles
    done = subprocess.run(program, cwd=ROOT, env=ENV, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("module", ENTRIES)
def test_import_collects_nothing_then_collects_normally(module: str) -> None:
    seen = _probe(module)
    assert seen["collections"] == [0, 0, 0]  # not one young or full collection during init
    assert seen["enabled"] is True
    assert isinstance(seen["frozen"], int)
    assert seen["frozen"] > 10_000  # the objects the import built


def test_a_collector_turned_off_beforehand_stays_off() -> None:
    seen = _probe("handler.entrypoints.webhook", prelude="gc.disable()")
    assert seen["enabled"] is False


def test_two_entries_in_one_process_leave_the_collector_on() -> None:
    seen = _probe("handler.entrypoints.worker", prelude="import handler.entrypoints.webhook")
    assert seen["enabled"] is True
