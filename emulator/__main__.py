"""Run the GME emulator from a shell: ``python -m emulator [--port 8080]``.

Prints one line (URL and SecretId, never the key) so scripts can wait for it and read the port,
then serves until Ctrl-C or SIGTERM and exits 0, which keeps process supervisors and CI quiet.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from emulator.server import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator

SECRET_KEY_ENV = "GME_EMULATOR_SECRET_KEY"  # noqa: S105 - a variable name, not a key


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="Local GME recording API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--secret-id", help="SecretId to accept (default: the built-in one)")
    parser.add_argument(
        "--secret-key",
        help=f"SecretKey for --secret-id; or set {SECRET_KEY_ENV} to keep it out of `ps`",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=20,
        help="requests per second per (action, SecretId), as GME counts; 0 disables (default 20)",
    )
    args = parser.parse_args(argv)
    if args.secret_key is None:
        args.secret_key = os.environ.get(SECRET_KEY_ENV)
    if (args.secret_id is None) != (args.secret_key is None):
        parser.error(f"--secret-id and --secret-key (or {SECRET_KEY_ENV}) go together")
    if args.rate_limit < 0:
        parser.error("--rate-limit must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    secret_id = args.secret_id or DEFAULT_SECRET_ID
    secret_key = args.secret_key or DEFAULT_SECRET_KEY
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    emulator = GmeEmulator(
        host=args.host,
        port=args.port,
        credentials={secret_id: secret_key},
        rate_limit_per_second=args.rate_limit,
    )
    with emulator:
        key_note = "built-in default key" if args.secret_key is None else "key as configured"
        print(
            f"GME emulator listening on {emulator.url} secret_id={secret_id} ({key_note}); "
            "Ctrl-C to stop",
            flush=True,
        )
        while not stop.wait(0.5):  # a timed wait keeps signal handling prompt everywhere
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
