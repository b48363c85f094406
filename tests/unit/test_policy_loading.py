"""Policy sources and the provider: cached reloads, and a broken document never replaces a good
one. File sources use real files; SSM and AppConfig sources get a fake fetch (no AWS here)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from handler.adapters.policy_source import (
    AppConfigSource,
    FileSource,
    PolicyProvider,
    SsmSource,
    source_from_setting,
)
from handler.bootstrap import app
from handler.bootstrap.config import ConfigError, Settings
from handler.domain.policy import PolicyError
from tests.unit.policy_helpers import room

GOOD = "version: 1\ndefault: {action: skip, reason: first}\n"
NEWER = "version: 1\ndefault: {action: record, record_mode: single}\n"
BROKEN = "version: 1\ndefault: {action: record, record_mode: loud}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_file_changes_are_picked_up_after_the_cache_time(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    provider = PolicyProvider(FileSource(path), cache_seconds=300, clock=clock)
    first = provider.current()
    assert not first.decide(room()).record
    path.write_text(NEWER)
    clock.now += 299
    assert provider.current() is first  # still cached
    clock.now += 1
    assert provider.current().decide(room()).record
    assert provider.current().version != first.version


def test_broken_document_keeps_the_last_good_one_and_logs(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    provider = PolicyProvider(FileSource(path), cache_seconds=60, clock=clock)
    good = provider.current()
    path.write_text(BROKEN)
    clock.now += 60
    with caplog.at_level(logging.ERROR):
        assert provider.current() is good
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "new policy refused; keeping the last good policy"
    assert "default.record_mode: must be single" in record.__dict__["error"]
    assert record.__dict__["policy_version"] == good.version
    # A vanished file is a fetch failure: same rule.
    path.unlink()
    clock.now += 60
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert provider.current() is good
    assert "cannot read policy" in caplog.records[0].__dict__["error"]
    # Fixed: taken at the next check.
    path.write_text(NEWER)
    clock.now += 60
    assert provider.current().decide(room()).record


def test_cold_start_on_a_broken_document_fails_then_recovers(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(BROKEN)
    provider = PolicyProvider(FileSource(path), clock=clock)
    with pytest.raises(PolicyError, match=r"default\.record_mode"):
        provider.current()
    path.write_text(GOOD)
    assert provider.current().document.default.reason == "first"


def test_zero_cache_seconds_loads_once(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    provider = PolicyProvider(FileSource(path), cache_seconds=0, clock=clock)
    first = provider.current()
    path.write_text(NEWER)
    clock.now += 10**6
    assert provider.current() is first


def test_ssm_source_reload_and_failures(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    answers: list[object] = [GOOD, GOOD, RuntimeError("throttled"), "", NEWER]
    calls: list[int] = []

    def fetch() -> object:
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    provider = PolicyProvider(SsmSource("/gme/policy", fetch), cache_seconds=10, clock=clock)
    good = provider.current()
    assert good.source == "ssm:/gme/policy"
    for _ in range(3):  # unchanged, fetch error, empty answer: all keep the good policy
        clock.now += 10
        with caplog.at_level(logging.ERROR):
            assert provider.current() is good
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "policy fetch failed; keeping the last good policy",
        "policy fetch failed; keeping the last good policy",
    ]
    clock.now += 10
    assert provider.current().decide(room()).record
    assert len(calls) == 5


def test_appconfig_source_accepts_bytes_json() -> None:
    source = AppConfigSource(
        "gme", "prod", "policy", lambda: b'{"version": 1, "default": {"action": "record"}}'
    )
    policy = PolicyProvider(source).current()
    assert policy.source == "appconfig:gme/prod/policy"
    assert policy.decide(room()).record


def test_source_from_setting() -> None:
    assert isinstance(source_from_setting("ssm:/gme/prod/policy"), SsmSource)
    appconfig = source_from_setting("appconfig:gme/prod/recording-policy")
    assert isinstance(appconfig, AppConfigSource)
    assert (appconfig.application, appconfig.environment, appconfig.profile) == (
        "gme",
        "prod",
        "recording-policy",
    )
    assert isinstance(source_from_setting("file:policies/default.yaml"), FileSource)
    assert isinstance(source_from_setting("policies/default.yaml"), FileSource)
    for bad in ("ssm:", "appconfig:gme/prod", "appconfig:a//c"):
        with pytest.raises(PolicyError, match="RECORDING_POLICY"):
            source_from_setting(bad)


def test_settings_refuse_a_malformed_reference_and_read_the_cache_time() -> None:
    with pytest.raises(ConfigError, match="RECORDING_POLICY"):
        Settings.from_env({"RECORDING_POLICY": "appconfig:only-one-part"})
    with pytest.raises(ConfigError, match="POLICY_CACHE_SECONDS"):
        Settings.from_env({"POLICY_CACHE_SECONDS": "-1"})
    assert Settings.from_env({}).policy_cache_seconds == 300
    assert Settings.from_env({"POLICY_CACHE_SECONDS": "30"}).policy_cache_seconds == 30


def test_app_uses_the_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("RECORDING_POLICY", str(path))
    monkeypatch.setenv("POLICY_CACHE_SECONDS", "45")
    app.reset()
    try:
        assert app.policy_provider().cache_seconds == 45
        assert app.policy().source == str(path)
        assert app.policy() is app.policy()
    finally:
        app.reset()
