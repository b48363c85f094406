"""The running local stack, as the other commands find it: `.local/stack.json`.

`make run` writes the file once it listens and removes it when it stops. It holds what a second
terminal needs to act on that same stack with no settings of its own: the stack's URL, its
stores (absolute paths, so any working directory reaches the same files), its GME endpoint and,
for the emulator only, the emulator's public development credentials. Real credentials and
signing keys are never written: with real GME a command needs them in its own environment and
says so. A file whose process is gone is stale: it is removed and ignored. Local only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

STATE_FILE = Path(".local") / "stack.json"

#: Settings a command takes from the running stack when its own environment does not set them.
SHARED_SETTINGS = (
    "IDEMPOTENCY_STORE",
    "LEDGER_STORE",
    "RECORDING_POLICY",
    "RECORDING_SCHEDULES",
    "ACTIVE_RECORDINGS",
    "GME_ENDPOINT",
    "TRTC_SDK_APP_ID",
)


class Stack(BaseModel):
    """One running `make run`, as its state file describes it."""

    model_config = ConfigDict(frozen=True)

    pid: int
    url: str
    emulator_url: str | None = None  # None: real GME
    settings: dict[str, str] = {}
    emulator_credentials: dict[str, str] = {}  # the emulator's public dev keys, never real ones
    local_keys: list[str] = []  # signing settings the stack filled with local development keys

    @property
    def tasks_url(self) -> str | None:
        return f"{self.emulator_url}/_emulator/tasks" if self.emulator_url else None


def _absolute_store(value: str) -> str:
    """`sqlite:///relative` as `sqlite:////absolute`, so every working directory agrees."""
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(value[len("sqlite:///") :])
    return value


def describe(
    url: str, emulator_url: str | None, local_keys: list[str], effective: dict[str, str]
) -> Stack:
    """The stack this process runs: its environment, with the `effective` values of settings
    it left to their defaults (the stores)."""
    settings = {name: os.environ[name] for name in SHARED_SETTINGS if os.environ.get(name)}
    settings = {**effective, **settings}
    for name in ("IDEMPOTENCY_STORE", "LEDGER_STORE"):
        if name in settings:
            settings[name] = _absolute_store(settings[name])
    if "RECORDING_POLICY" in settings and os.path.exists(settings["RECORDING_POLICY"]):
        settings["RECORDING_POLICY"] = os.path.abspath(settings["RECORDING_POLICY"])
    credentials: dict[str, str] = {}
    if emulator_url:
        from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

        credentials = {
            "TENCENTCLOUD_SECRET_ID": DEFAULT_SECRET_ID,
            "TENCENTCLOUD_SECRET_KEY": DEFAULT_SECRET_KEY,
        }
    return Stack(
        pid=os.getpid(),
        url=url,
        emulator_url=emulator_url,
        settings=settings,
        emulator_credentials=credentials,
        local_keys=local_keys,
    )


def publish(stack: Stack, path: Path = STATE_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(stack.model_dump_json(indent=2), encoding="utf-8")
    temporary.replace(path)


def withdraw(path: Path = STATE_FILE) -> None:
    """Remove the file if it is still this process's (a newer stack may have replaced it)."""
    found = _read(path)
    if found is not None and found.pid == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read(path: Path) -> Stack | None:
    try:
        return Stack.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return None


def running(path: Path = STATE_FILE) -> Stack | None:
    """The stack that is up now, or None. A stale or unreadable file is removed."""
    if not path.exists():
        return None
    found = _read(path)
    if found is None or not _alive(found.pid):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return found


def attach(environ: Any = None) -> Stack | None:
    """Point this process at the running stack: its settings fill in what the environment does
    not set, and its emulator's credentials come along when it uses the emulator and this
    process has none of its own (an explicit TENCENTCLOUD_SECRET_ID wins)."""
    environ = os.environ if environ is None else environ
    stack = running()
    if stack is None:
        return None
    for name, value in stack.settings.items():
        if not environ.get(name):
            environ[name] = value
    if stack.emulator_url and not environ.get("TENCENTCLOUD_SECRET_ID"):
        environ.update(stack.emulator_credentials)
        environ["GME_ENDPOINT"] = stack.settings.get("GME_ENDPOINT", stack.emulator_url)
    return stack
