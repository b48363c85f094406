"""Command line: `python -m handler COMMAND` (`--help` lists every command, one line each).

While `make run` is up, every command acts on that stack: its stores, its emulator, its URL
(`.local/stack.json`, see `handler.tools.stack`). A mistake on the command line or in a setting is
one line on stderr naming it and the fix, and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from handler.tools.sending import cmd_send, signed_request, trtc_app_id

__all__ = ["main", "signed_request"]

APP_ID_HELP = "SdkAppId of a TRTC body (default: the first of TRTC_SDK_APP_ID, else 1400000000)"


def _load(path: str) -> Any:
    """An event file, parsed as strictly as the webhook parses a body (no non-finite numbers,
    no duplicate keys); bad input is one line on stderr and exit 2."""
    from handler.domain import safejson

    try:
        return safejson.loads(Path(path).read_bytes(), max_depth=64, max_members=1_000_000)
    except OSError as exc:
        print(f"error: {path}: {exc.strerror}", file=sys.stderr)
    except safejson.JsonRefused as exc:
        print(f"error: {path}: {exc.code}: {exc.message}", file=sys.stderr)
    raise SystemExit(2)


def _resign(event: dict[str, Any]) -> dict[str, Any]:
    _, body, headers = signed_request((event.get("body") or "").encode())
    kept = {
        k: v
        for k, v in (event.get("headers") or {}).items()
        if k.lower() not in {"sign", "webhook-id", "webhook-timestamp", "webhook-signature"}
    }
    return {**event, "headers": {**kept, **headers}, "body": body.decode()}


def cmd_invoke(args: argparse.Namespace) -> int:
    from handler.tools.runner import invoke

    event = _load(args.file)
    if args.sign and args.function == "webhook":
        event = _resign(event)
    result = invoke(args.function, event)
    print(json.dumps(result, indent=2, default=str))
    return 0


def _policy(setting: str | None) -> Any:
    """The policy named by a path, `ssm:` or `appconfig:` reference (or the configured one)."""
    from handler.adapters.policy_source import source_from_setting
    from handler.bootstrap.config import DEFAULT_POLICY
    from handler.domain.policy import parse_policy_text

    value = setting or os.environ.get("RECORDING_POLICY") or os.path.normpath(DEFAULT_POLICY)
    source = source_from_setting(value)
    return parse_policy_text(source.fetch(), source.label)


def cmd_check(args: argparse.Namespace) -> int:
    from handler.domain.policy import PolicyError
    from handler.domain.policy.explain import followed, time_limits
    from handler.tools import policy_cases

    try:
        policy = _policy(args.file)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.cases is None:
        rules = len(policy.document.rules)
        print(f"ok: {policy.source}: {rules} rules, version {policy.version}")
        print(time_limits(policy))
        if (running := followed(policy)) is not None:
            print(running)
        return 0
    try:
        text = Path(args.cases).read_text(encoding="utf-8")
        cases = policy_cases.load_cases(text, args.cases)
    except OSError as exc:
        print(f"error: {args.cases}: {exc.strerror}", file=sys.stderr)
        return 2
    except (UnicodeDecodeError, policy_cases.CasesError) as exc:
        why = str(exc) if isinstance(exc, policy_cases.CasesError) else f"{args.cases}: not UTF-8"
        print(f"error: {why}", file=sys.stderr)
        return 2
    report, held = policy_cases.run_cases(policy, cases)
    print(report)
    return 0 if held else 1


def cmd_explain(args: argparse.Namespace) -> int:
    from handler.domain.events import EventSource
    from handler.domain.inbound import InvalidEvent
    from handler.domain.policy import PolicyError
    from handler.tools import dryrun

    try:
        now = dryrun.parse_now(args.now)
        active = dryrun.parse_active(args.active)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        policy = _policy(args.policy)
        doc = dryrun.read_document(args.event_file)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except InvalidEvent as exc:  # the file itself: unreadable, not JSON, a non-finite number
        print(f"error: {args.event_file}: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    source = EventSource(args.source) if args.source else None
    events = dryrun.events_in(doc, source, args.app_id or trtc_app_id())
    text, ok = dryrun.report(events, policy, now, active, args.json)
    print(text)
    return 0 if ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    from handler.tools import preflight
    from handler.tools.runner import serve

    port = preflight.port_setting(args.port or os.environ.get("PORT") or "8080")
    serve(args.host, port)
    return 0


class _Help(argparse.RawDescriptionHelpFormatter):
    """Every command and its help on one line (the longest name is 15 characters)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=110)
        self._action_max_length = 22


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake as one line (the problem and where the help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


#: Commands that act on the running stack when there is one.
_STACK_COMMANDS = {"send", "explain", "check-policy", "recordings", "room", "stop", "tasks"}


def quiet_logs() -> None:
    """A command's stdout is its result alone: logs go to stderr, short unless LOG_FORMAT=json,
    and EMF metrics (for CloudWatch) are off."""
    from handler.tools.locallog import logs_to_stderr, use_log_format

    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logs_to_stderr()
    use_log_format(os.environ.get("LOG_FORMAT"))


def _dispatch(args: argparse.Namespace) -> int:
    from handler.domain.policy import PolicyError
    from handler.tools import stack

    try:
        if args.command in _STACK_COMMANDS:
            stack.attach()
        if args.command != "run":  # `run` prints its own banner and lines
            quiet_logs()
        code: int = args.func(args)
    except (ValueError, PolicyError) as exc:  # ConfigError and the like: the setting, named
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m handler",
        description=__doc__,
        formatter_class=_Help,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="start the local stack (what `make run` runs)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", help="default: PORT, else 8080; 0 picks a free port")
    run.set_defaults(func=cmd_run)
    inv = sub.add_parser(
        "invoke", help="run one Lambda entry point on an event file, on the running stack"
    )
    inv.add_argument("function", choices=["webhook", "worker", "scheduler"])
    inv.add_argument("file")
    inv.add_argument(
        "--sign",
        action="store_true",
        help="re-sign an HTTP event's body with the current time and configured keys",
    )
    inv.set_defaults(func=cmd_invoke)
    send = sub.add_parser("send", help="sign a sample (room event v1 or TRTC) and POST it")
    send.add_argument("file", help="e.g. events/room-created.json, events/trtc-room-created.json")
    send.add_argument("--url", help="default: the running stack's, else http://127.0.0.1:PORT")
    send.add_argument("--app-id", help=APP_ID_HELP)
    send.set_defaults(func=cmd_send)
    check = sub.add_parser(
        "check-policy", help="validate a policy document; --cases runs its test cases"
    )
    check.add_argument("file", nargs="?")
    check.add_argument(
        "--cases", metavar="CASES.yaml", help="expected decisions to check (exit 1 on a miss)"
    )
    check.set_defaults(func=cmd_check)
    exp = sub.add_parser(
        "explain", help="dry run: which rule decides an event and why (no GME, no store)"
    )
    exp.add_argument("event_file", help="event file in any accepted shape, or - for stdin")
    exp.add_argument("--policy", help="policy file or ssm:/appconfig: reference")
    exp.add_argument("--now", help="ISO 8601 instant for time conditions (default: event time)")
    exp.add_argument("--source", choices=["webhook", "queue", "schedule"])
    exp.add_argument(
        "--active",
        action="append",
        default=[],
        metavar="RULE=N",
        help="running recordings of a rule, for max_concurrent (repeatable)",
    )
    exp.add_argument("--app-id", help=APP_ID_HELP)
    exp.add_argument("--json", action="store_true", help="print JSON instead of text")
    exp.set_defaults(func=cmd_explain)
    from handler.tools.operator import add_commands
    from handler.tools.replay import add_command

    add_commands(sub)
    add_command(sub)
    try:
        return _dispatch(parser.parse_args(argv))
    except BrokenPipeError:  # `... | head` stopped reading: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
