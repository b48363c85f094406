"""Operator commands over the recording ledger (`python -m handler recordings | room | stop`).

They use the same configuration as the functions (`LEDGER_STORE`, `IDEMPOTENCY_STORE`, GME
credentials), so run them with the deployed environment to act on the deployed ledger.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from handler.bootstrap.config import ConfigError
from handler.domain.ledger import OPEN_STATES, LedgerEntry, LedgerState


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(e: LedgerEntry) -> dict[str, Any]:
    return {
        "biz_id": e.biz_id,
        "room_id": e.room_id,
        "session": e.session,
        "state": e.state.value,
        "task_id": e.task_id,
        "generation": e.generation,
        "rule": e.rule,
        "task_started_at": _when(e.task_started_at),
        "closed_at": _when(e.closed_at),
        "last_error": e.last_error,
    }


def cmd_recordings(args: argparse.Namespace) -> int:
    from handler.bootstrap import app

    state = LedgerState(args.state) if args.state else None
    entries = app.ledger().by_state(state, limit=args.limit)
    if args.json:
        print(json.dumps([_summary(e) for e in entries], indent=2))
        return 0
    print(f"{'state':<10} {'biz_id':<12} {'room_id':<24} {'session':<32} task_id")
    for e in entries:
        print(
            f"{e.state.value:<10} {e.biz_id:<12} {e.room_id:<24} {e.session:<32} {e.task_id or '-'}"
        )
    print(f"{len(entries)} recording(s)")
    return 0


def _live(gme: Any, e: LedgerEntry) -> dict[str, Any]:
    """GME's own view of a session's task (DescribeRecordInfo): its streams and their status."""
    from handler.domain.gme import GmeError

    assert e.task_id is not None
    try:
        streams = gme.describe_record_info(e.biz_id, e.task_id)
    except GmeError as exc:
        return {"task_id": e.task_id, "error": {"code": exc.code, "message": exc.message}}
    return {
        "task_id": e.task_id,
        "streams": [
            {
                "user_id": s.user_id,
                "file_name": s.file_name,
                "begin_time": _when(s.begin_time),
                "status": s.status,
                "status_text": s.status_text(),
            }
            for s in streams
        ],
    }


def _print_live(live: dict[str, Any]) -> None:
    if "error" in live:
        error = live["error"]
        print(f"  live (GME DescribeRecordInfo): {error['code']}: {error['message']}")
        return
    print(f"  live (GME DescribeRecordInfo): {len(live['streams'])} stream(s)")
    for s in live["streams"]:
        who = "0 (the room's mix)" if s["user_id"] == "0" else s["user_id"]
        print(f"    user {who}: {s['status_text']} since {s['begin_time']}, file {s['file_name']}")


def cmd_room(args: argparse.Namespace) -> int:
    """One room's sessions from the ledger (history, files from GME's callbacks) and, with
    `--live`, what GME itself reports for each open session's task right now."""
    from handler.bootstrap import app

    entries = app.ledger().by_room(args.biz_id, args.room_id)
    if not entries:
        print(f"error: no ledger entries for room {args.biz_id}/{args.room_id}", file=sys.stderr)
        return 1
    # Open sessions with a task: the ones whose task may still run for GME to describe.
    asked = [e for e in entries if e.task_id and e.state in OPEN_STATES] if args.live else []
    gme = app.gme() if asked else None  # before any output: missing credentials change nothing
    live = {e.session: _live(gme, e) for e in asked}
    failed = any("error" in v for v in live.values())
    if args.json:
        docs = [
            e.model_dump(mode="json") | ({"live": live[e.session]} if e.session in live else {})
            for e in entries
        ]
        print(json.dumps(docs, indent=2))
        return 1 if failed else 0
    for e in entries:
        s = _summary(e)
        print(
            f"session {e.session}: {e.state.value}, task {e.task_id or '-'}, rule {e.rule},"
            f" policy {e.policy_version}, generation {e.generation}"
        )
        if e.ends_at is not None and not e.closed:
            print(f"  ends {_when(e.ends_at)}: {e.end_reason or 'scheduled window'}")
        if e.files:
            dropped = f" (and {e.files_dropped} older)" if e.files_dropped else ""
            print(f"  files (from GME callbacks): {', '.join(e.files)}{dropped}")
        if e.last_error:
            print(f"  last error: {s['last_error']}")
        for h in e.history:
            task = f" [task {h.task_id}]" if h.task_id else ""
            print(f"  {_when(h.at)}  {h.what}: {h.detail}{task}")
        if e.session in live:
            _print_live(live[e.session])
    if args.live and not asked:
        print("live: no open session with a task in this room; nothing asked of GME")
    return 1 if failed else 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Close the session in the ledger and stop its task, but only once GME is known to answer:
    without credentials or an answering GME nothing is written (a `stopping` entry with a task
    still running would wait for the sweep)."""
    from handler.bootstrap import app
    from handler.domain.gme import GmeError
    from handler.domain.ledger_rules import closing

    ledger = app.ledger()
    if args.session:
        entry = ledger.get(args.biz_id, args.room_id, args.session)
    else:
        newest = ledger.open_sessions(args.biz_id, args.room_id, limit=1)
        entry = ledger.get(*newest[0].key) if newest else None
    if entry is None or entry.state is LedgerState.STOPPED:
        print(f"error: room {args.biz_id}/{args.room_id} has no open recording", file=sys.stderr)
        return 1
    try:
        gme = app.gme()
    except ConfigError as exc:
        raise ConfigError(
            f"stop calls GME, and no `make run` is up here to lend its emulator: {exc}"
            " (start `make run`, or set them); nothing was changed"
        ) from None
    try:
        gme.describe_task(entry.biz_id, entry.room_id)
    except GmeError as exc:
        endpoint = app.settings().gme_endpoint
        print(
            f"error: GME at {endpoint} did not answer ({exc.code}: {exc.message});"
            " nothing was changed",
            file=sys.stderr,
        )
        return 1
    detail = "stopped by an operator"
    closed = ledger.update(*entry.key, closing(*entry.key, datetime.now(UTC).timestamp(), detail))
    assert closed is not None
    outcome = app.service().stop_entry(closed, detail)
    print(json.dumps(outcome.model_dump(mode="json", exclude_defaults=True)))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """The running stack's emulator tasks, as the emulator lists them."""
    import urllib.request

    from handler.tools import stack

    running = stack.running()
    if running is None:
        raise ConfigError(f"no `make run` is up ({stack.STATE_FILE} is absent): start `make run`")
    if running.tasks_url is None:
        raise ConfigError(
            f"the stack at {running.url} calls real GME, not the emulator: see its tasks with"
            " `python -m handler room BIZ ROOM --live`"
        )
    url = running.tasks_url + ("?running_only=true" if args.running else "")
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - the stack's own URL
        tasks = json.loads(resp.read())["tasks"]
    if args.json:
        print(json.dumps(tasks, indent=2))
        return 0
    print(f"{'task_id':<20} {'biz_id':<12} {'room_id':<24} {'started':<20} stopped")
    for t in tasks:
        print(
            f"{t['task_id_str']:<20} {t['biz_id']:<12} {t['room_id']:<24}"
            f" {_when(t['started_at']):<20} {_when(t['stopped_at']) if t['stopped_at'] else '-'}"
        )
    print(f"{len(tasks)} task(s) on the emulator at {running.emulator_url}")
    return 0


def cmd_check_schedules(args: argparse.Namespace) -> int:
    from handler.domain.schedule import ScheduleError, load_schedules

    path = args.file or os.environ.get("RECORDING_SCHEDULES")
    if not path:
        print("error: give a FILE or set RECORDING_SCHEDULES", file=sys.stderr)
        return 2
    try:
        schedules = load_schedules(path)
    except ScheduleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    print(f"ok: {path}: {len(schedules.document.schedules)} schedules, version {schedules.version}")
    for window in schedules.active(now):
        print(f"  open now: {window.schedule.name} {window.session} until {window.end.isoformat()}")
    return 0


def add_commands(sub: Any) -> None:
    check = sub.add_parser("check-schedules", help="validate a schedules document")
    check.add_argument("file", nargs="?")
    check.set_defaults(func=cmd_check_schedules)
    rec = sub.add_parser("recordings", help="list ledger entries, newest first")
    rec.add_argument("--state", choices=[s.value for s in LedgerState])
    rec.add_argument("--limit", type=int, default=100)
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=cmd_recordings)
    room = sub.add_parser("room", help="one room's sessions with their history")
    room.add_argument("biz_id", type=int)
    room.add_argument("room_id")
    room.add_argument("--json", action="store_true")
    room.add_argument(
        "--live", action="store_true", help="also ask GME for each open task's streams"
    )
    room.set_defaults(func=cmd_room)
    stop = sub.add_parser("stop", help="close a room's open session and stop its task")
    stop.add_argument("biz_id", type=int)
    stop.add_argument("room_id")
    stop.add_argument("--session", help="default: the room's latest open session")
    stop.set_defaults(func=cmd_stop)
    tasks = sub.add_parser("tasks", help="the running stack's emulator tasks (make run)")
    tasks.add_argument("--running", action="store_true", help="only the tasks still running")
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(func=cmd_tasks)
