"""`make run` and `invoke`: the local stack around the Lambda entry points. Local only.

`run` checks every setting first (`handler.tools.preflight`), binds its port, starts the GME
emulator when no TENCENTCLOUD_SECRET_ID is set, prints one banner with every URL a user needs, and
publishes itself in `.local/stack.json` so commands from other terminals act on it
(`handler.tools.stack`). A mistake stops it before anything starts, in one line.

With the emulator, every run starts a new emulator with no tasks, so the default local stores
start fresh too (the last run's are kept in `.local/previous/`): a task id in the stores is
always one this emulator knows. `invoke` acts on the running stack when there is one; without
one it runs a throwaway emulator with throwaway stores, for the same reason.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from handler.bootstrap import app
from handler.bootstrap.config import ConfigError
from handler.tools import preflight, stack
from handler.tools.local import LOCAL_DEFAULTS, LocalContext, _Handler, invoke_locally, say
from handler.tools.locallog import answer_line, logs_to_stderr, use_log_format

DEFAULT_STORES = {
    "IDEMPOTENCY_STORE": "sqlite:///.local/idempotency.db",
    "LEDGER_STORE": "sqlite:///.local/ledger.db",
}
ROUTES = (
    ("POST", "/v1/room-events", "room events v1 (Standard Webhooks)"),
    ("POST", "/v1/trtc/room-callbacks", "TRTC room callbacks"),
    ("POST", "/v1/gme/recording-callbacks", "GME recording callbacks"),
    ("GET", "/health", "health"),
)
Out = Callable[[str], None]


def _local_keys(out: Out) -> list[str]:
    filled = []
    for name, value in LOCAL_DEFAULTS.items():
        if not os.environ.get(name):
            os.environ[name] = value
            filled.append(name)
            out(f"  {name}: local development key (set {name} to use your own)")
    return filled


def _fresh_stores(out: Out) -> None:
    """With a new emulator, the default stores start empty (see the module docstring). Stores
    the user named are theirs: never moved, but a line says their task ids may be unknown."""
    paths = [Path(v.removeprefix("sqlite:///")) for v in DEFAULT_STORES.values()]
    named = [name for name in DEFAULT_STORES if os.environ.get(name)]
    if named and any(_holds_data(os.environ[name]) for name in named):
        out(f"  note: {' and '.join(named)} set: task ids kept there by an earlier emulator are")
        out("        unknown to this one (unset them for fresh local stores)")
    if named:
        return
    if not any(p.exists() for p in paths):
        return
    previous = Path(".local") / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for path in paths:
        for part in path.parent.glob(path.name + "*"):  # the database and its -wal/-shm
            part.replace(previous / part.name)
    out("  stores: fresh for this emulator (the last run's are in .local/previous/)")


def _holds_data(url: str) -> bool:
    """A store that may hold earlier task ids: an existing SQLite file, or any other kind."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).exists()
    return True


@contextmanager
def local_environment(
    out: Out = say, *, running: stack.Stack | None = None, throwaway: bool = False
) -> Iterator[str | None]:
    """Local defaults, and GME: the running stack's emulator, real credentials, or a new
    emulator (`throwaway`: with stores in a temporary folder). Yields the emulator's URL."""
    logs_to_stderr()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF is for CloudWatch
    _local_keys(out)
    if running is not None and running.emulator_url:
        out(f"  GME: the running stack's EMULATOR at {running.emulator_url}")
        app.reset()
        yield running.emulator_url
        return
    if running is not None and not os.environ.get("TENCENTCLOUD_SECRET_ID"):
        raise ConfigError(
            f"the stack at {running.url} calls real GME: set TENCENTCLOUD_SECRET_ID and"
            " TENCENTCLOUD_SECRET_KEY here too (they are never written to .local/stack.json)"
        )
    if os.environ.get("TENCENTCLOUD_SECRET_ID"):
        out(
            f"  GME: {os.environ.get('GME_ENDPOINT', 'gme.tencentcloudapi.com')} (real credentials)"
        )
        app.reset()
        yield None
        return
    from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator

    with GmeEmulator() as emu, tempfile.TemporaryDirectory(prefix="gme-autorecord-") as scratch:
        os.environ.update(
            GME_ENDPOINT=emu.url,
            TENCENTCLOUD_SECRET_ID=DEFAULT_SECRET_ID,
            TENCENTCLOUD_SECRET_KEY=DEFAULT_SECRET_KEY,
        )
        out(
            f"  GME: EMULATOR at {emu.url} (no TENCENTCLOUD_SECRET_ID set; nothing reaches Tencent)"
        )
        if throwaway:  # whatever stores are set: ids of this emulator must not outlive it
            for name, value in DEFAULT_STORES.items():
                os.environ[name] = value.replace(".local", scratch, 1)
            out("  stores: throwaway, like this emulator (no `make run` is up)")
        app.reset()
        try:
            yield emu.url
        finally:
            for name in ("GME_ENDPOINT", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"):
                os.environ.pop(name, None)
            app.reset()


def _bind(host: str, port: int) -> ThreadingHTTPServer:
    class Handler(_Handler):
        timeout = preflight.seconds_setting(
            "LOCAL_READ_TIMEOUT_SECONDS",
            os.environ.get("LOCAL_READ_TIMEOUT_SECONDS"),
            _Handler.timeout,
            low=0.001,
            high=3600,
        )

        def answered(self, method: str, path: str, result: dict[str, Any]) -> None:
            line = answer_line(method, path, result)
            if line:
                say(line)

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"PORT {port} is in use on {host} (another `make run`?): stop it, or set PORT"
                f" to a free port, e.g. PORT={port + 1 if port else 8081} make run"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(host: str, port: int) -> None:
    """Check, bind, start, then print the banner in one piece: a mistake prints one line."""
    other = stack.running()
    if other is not None:
        raise ConfigError(
            f"a `make run` is already up here at {other.url} (pid {other.pid}): stop it first,"
            " or start this one from another folder"
        )
    log_format = use_log_format(os.environ.get("LOG_FORMAT"))
    given = os.environ.get("LOCAL_TICK_SECONDS")
    tick = preflight.seconds_setting("LOCAL_TICK_SECONDS", given, 60, low=0, high=86_400)
    server = _bind(host, port)
    url = f"http://{host}:{server.server_address[1]}"
    banner = ["gme-autorecord local stack"]
    try:
        with local_environment(banner.append) as emulator_url:
            if emulator_url:
                _fresh_stores(banner.append)
            preflight.check_stack_settings()
            running = stack.describe(url, emulator_url, _filled_keys(), _stores())
            banner += _describe(running, tick, log_format)
            stack.publish(running)  # before the banner: who reads it may act at once
            for line in banner:
                say(line)
            signal.signal(signal.SIGTERM, _interrupt)  # stopped by kill too: withdraw the file
            stop_ticking = _start_ticker(tick)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                stop_ticking.set()
                stack.withdraw()
    finally:
        server.server_close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stores() -> dict[str, str]:
    return {"IDEMPOTENCY_STORE": app.settings().idempotency_store, "LEDGER_STORE": app.ledger_url()}


def _filled_keys() -> list[str]:
    return [name for name, value in LOCAL_DEFAULTS.items() if os.environ.get(name) == value]


def _describe(running: stack.Stack, tick: float, log_format: str) -> list[str]:
    settings = app.settings()
    policy = app.policy()
    lines = [
        f"  idempotency store: {settings.idempotency_store}",
        f"  ledger: {_stores()['LEDGER_STORE']}",
        f"  policy: {policy.source} ({policy.version})",
        "  worker: inline (no RECORD_QUEUE_URL)"
        if not settings.record_queue_url
        else f"  worker: queue {settings.record_queue_url}",
        f"  scheduler: every {tick:g} s (LOCAL_TICK_SECONDS); schedules: "
        f"{app.lifecycle_settings().recording_schedules or 'none'}"
        if tick
        else "  scheduler: not ticking (LOCAL_TICK_SECONDS=0)",
        "  logs: one line per event (LOG_FORMAT=json for the deployed JSON lines)"
        if log_format == "short"
        else "  logs: JSON lines, as deployed (LOG_FORMAT=json)",
        f"  listening on {running.url}:",
    ]
    lines += [f"    {method:<4} {running.url}{path:<28} {what}" for method, path, what in ROUTES]
    if running.tasks_url:
        lines.append(f"  emulator tasks: {running.tasks_url} (or: python -m handler tasks)")
    lines.append("  other terminals: python -m handler send|stop|room|recordings|tasks|invoke ...")
    lines.append("    act on this stack (.local/stack.json); try:")
    lines.append("    .venv/bin/python -m handler send events/room-created.json")
    return lines


def _start_ticker(seconds: float) -> threading.Event:
    """Run the scheduler every LOCAL_TICK_SECONDS (default 60; 0 = never), as EventBridge does
    when deployed, so schedule windows, renewals and the sweep happen in `make run` too."""
    stop = threading.Event()
    if seconds <= 0:
        return stop

    def run() -> None:
        from handler.entrypoints import scheduler

        while not stop.wait(seconds):
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            try:
                result = invoke_locally(
                    scheduler.handler, {"time": now, "id": "local-tick"}, "scheduler"
                )
            except Exception as exc:  # keep ticking; the line says what failed
                say(f"  scheduler tick failed: {type(exc).__name__}: {exc}")
            else:
                line = answer_line("TICK", "scheduler", result)
                if line:
                    say(line)

    threading.Thread(target=run, name="local-scheduler", daemon=True).start()
    return stop


def invoke(function: str, event: dict[str, Any]) -> Any:
    """Run one entry point on one event, like `sls invoke local`, on the running stack's
    stores and emulator when `make run` is up."""
    running = stack.attach()
    with local_environment(running=running, throwaway=running is None):
        preflight.check_stack_settings()
        if function == "webhook":
            from handler.entrypoints import webhook

            result: Any = webhook.handler(event, LocalContext(function))
            if isinstance(result.get("body"), str):
                with suppress(ValueError):
                    result = {**result, "body": json.loads(result["body"])}
            return result
        if function == "worker":
            from handler.entrypoints import worker

            response, report = worker.process_batch(event, LocalContext(function))
            return {"response": response, "messages": report}
        from handler.entrypoints import scheduler

        return scheduler.handler(event, LocalContext(function))
