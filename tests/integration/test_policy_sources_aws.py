"""The SSM policy source through the real Powertools Parameters and boto3, over HTTP to the
session's moto_server (tests/servers.py): reload, last-good on a broken or deleted parameter,
the app wiring and `check-policy ssm:...`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler.adapters.policy_source import PolicyProvider, SsmSource
from handler.bootstrap import app
from tests.servers import moto_env
from tests.unit.policy_helpers import room

ROOT = Path(__file__).resolve().parents[2]
NAME = "/gme-autorecord/test/recording-policy"
GOOD = "version: 1\ndefault: {action: skip, reason: first}\n"
NEWER = "version: 1\ndefault: {action: record, record_mode: single}\n"
BROKEN = "version: 1\ndefault: {action: record, sample_percent: 200}\n"


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    from aws_lambda_powertools.utilities.parameters import base

    env = moto_env(monkeypatch, moto_url, "ssm")
    base.DEFAULT_PROVIDERS.clear()  # Powertools builds its client once, from the environment
    yield env
    base.DEFAULT_PROVIDERS.clear()


def _ssm() -> Any:
    import boto3

    return boto3.client("ssm")


def _put(text: str) -> None:
    _ssm().put_parameter(Name=NAME, Value=text, Type="SecureString", Overwrite=True)


def test_ssm_policy_reloads_and_keeps_the_last_good(
    aws_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _put(GOOD)
    now = [0.0]
    provider = PolicyProvider(SsmSource(NAME), cache_seconds=30, clock=lambda: now[0])
    good = provider.current()
    assert good.source == f"ssm:{NAME}"
    assert good.document.default.reason == "first"

    _put(BROKEN)
    now[0] += 30
    with caplog.at_level(logging.ERROR):
        assert provider.current() is good
    assert "default.sample_percent" in caplog.records[-1].__dict__["error"]

    _put(NEWER)
    now[0] += 30
    newer = provider.current()
    assert newer.decide(room()).record

    _ssm().delete_parameter(Name=NAME)
    now[0] += 30
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert provider.current() is newer
    assert "ParameterNotFound" in caplog.records[-1].__dict__["error"]


def test_app_and_check_policy_read_ssm(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(NEWER)
    monkeypatch.setenv("RECORDING_POLICY", f"ssm:{NAME}")
    app.reset()
    try:
        assert app.policy().decide(room()).plan is not None
    finally:
        app.reset()
    result = subprocess.run(
        [sys.executable, "-m", "handler", "check-policy", f"ssm:{NAME}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **aws_env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: ssm:{NAME}: 0 rules, version sha256:")
