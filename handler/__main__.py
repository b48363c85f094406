"""Command line: `python -m handler run | invoke | send | check-policy | explain`.

run                         start the local stack (HTTP server, inline worker, emulator)
invoke FUNCTION FILE        run one Lambda entry point on an event file; print the result
send FILE [--url URL]       sign a room event or TRTC body and POST it to a running stack
check-policy [FILE]         validate a policy document; non-zero exit on error
  [--cases CASES.yaml]      and check its test cases: expected decisions (exit 1 on a miss)
explain EVENT_FILE|-        dry run: which rule decides the event, why earlier ones did not
check-schedules [FILE]      validate a schedules document (RECORDING_SCHEDULES)
recordings [--state S]      list recordings from the ledger
room BIZ ROOM [--live]      one room's sessions, history and files; --live asks GME for its streams
stop BIZ ROOM               close a room's open session and stop its task
replay-dlq                  move dead-lettered messages back to the queue (clears stored failures)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from handler.domain.signatures import (
    TrtcCallbackKey,
    sign_standard_webhook,
    sign_trtc,
    standard_webhook_key,
)


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


def signed_request(body: bytes) -> tuple[str, bytes, dict[str, str]]:
    """Pick the route for a body and sign it, as its sender would now, with the configured (or
    local development) keys. TRTC bodies get a fresh `CallbackTs`, which their freshness check
    reads from the body, and the first key that serves the first app of `TRTC_SDK_APP_ID`."""
    from handler.local import LOCAL_CALLBACK_KEY, LOCAL_WEBHOOK_SECRET

    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    headers = {"content-type": "application/json"}
    if isinstance(doc, dict) and "EventGroupId" in doc:
        body = json.dumps({**doc, "CallbackTs": int(time.time() * 1000)}).encode()
        app_id = (os.environ.get("TRTC_SDK_APP_ID") or "1400000000").split(",")[0].strip()
        entries = (os.environ.get("TRTC_CALLBACK_KEY") or LOCAL_CALLBACK_KEY).split(",")
        keys = [TrtcCallbackKey.parse(entry.strip()) for entry in entries if entry.strip()]
        key = next((k.key for k in keys if k.serves(app_id)), LOCAL_CALLBACK_KEY)
        headers.update(sign=sign_trtc(key, body), sdkappid=app_id)
        return "/v1/trtc/room-callbacks", body, headers
    secret = (os.environ.get("WEBHOOK_SECRETS") or LOCAL_WEBHOOK_SECRET).split(",")[0].strip()
    msg_id = str(doc.get("id", "manual")) if isinstance(doc, dict) else "manual"
    stamp = int(time.time())
    signature = sign_standard_webhook(standard_webhook_key(secret), msg_id, stamp, body)
    headers.update(
        {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}
    )
    return "/v1/room-events", body, headers


def _resign(event: dict[str, Any]) -> dict[str, Any]:
    _, body, headers = signed_request((event.get("body") or "").encode())
    kept = {
        k: v
        for k, v in (event.get("headers") or {}).items()
        if k.lower() not in {"sign", "webhook-id", "webhook-timestamp", "webhook-signature"}
    }
    return {**event, "headers": {**kept, **headers}, "body": body.decode()}


def cmd_invoke(args: argparse.Namespace) -> int:
    from handler.local import invoke

    event = _load(args.file)
    if args.sign and args.function == "webhook":
        event = _resign(event)
    result = invoke(args.function, event)
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    if not args.url.startswith(("http://", "https://")):
        print("error: --url must start with http:// or https://", file=sys.stderr)
        return 2
    route, body, headers = signed_request(Path(args.file).read_bytes())
    req = urllib.request.Request(args.url.rstrip("/") + route, body, headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    except urllib.error.URLError as exc:
        print(f"error: cannot reach {args.url}: {exc.reason}", file=sys.stderr)
        return 2
    print(f"HTTP {status} {route}")
    print(text)
    return 0 if status < 400 else 1


def _policy(setting: str | None) -> Any:
    """The policy named by a path, `ssm:` or `appconfig:` reference (or the configured one)."""
    from handler.adapters.policy_source import source_from_setting
    from handler.config import DEFAULT_POLICY
    from handler.domain.policy import parse_policy_text

    value = setting or os.environ.get("RECORDING_POLICY") or os.path.normpath(DEFAULT_POLICY)
    source = source_from_setting(value)
    return parse_policy_text(source.fetch(), source.label)


def cmd_check(args: argparse.Namespace) -> int:
    from handler import policy_cases
    from handler.domain.policy import PolicyError
    from handler.domain.policy.explain import time_limits

    try:
        policy = _policy(args.file)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.cases is None:
        rules = len(policy.document.rules)
        print(f"ok: {policy.source}: {rules} rules, version {policy.version}")
        print(time_limits(policy))
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
    from handler import dryrun
    from handler.domain.events import EventSource
    from handler.domain.inbound import InvalidEvent
    from handler.domain.policy import PolicyError

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
    text, ok = dryrun.report(dryrun.events_in(doc, source), policy, now, active, args.json)
    print(text)
    return 0 if ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    from handler.config import ConfigError
    from handler.domain.policy import PolicyError
    from handler.local import serve

    try:
        serve(args.host, args.port)
    except (ConfigError, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handler",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    run.set_defaults(func=cmd_run)
    inv = sub.add_parser("invoke", help="run one entry point on an event file")
    inv.add_argument("function", choices=["webhook", "worker", "scheduler"])
    inv.add_argument("file")
    inv.add_argument(
        "--sign",
        action="store_true",
        help="re-sign an HTTP event's body with the current time and configured keys",
    )
    inv.set_defaults(func=cmd_invoke)
    send = sub.add_parser("send", help="sign a body and POST it to a running stack")
    send.add_argument("file")
    send.add_argument("--url", default="http://127.0.0.1:8080")
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
    exp.add_argument("--json", action="store_true", help="print JSON instead of text")
    exp.set_defaults(func=cmd_explain)
    from handler.operator import add_commands
    from handler.replay import add_command

    add_commands(sub)
    add_command(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ValueError as exc:  # ConfigError, bad store URLs: name the setting, exit non-zero
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
