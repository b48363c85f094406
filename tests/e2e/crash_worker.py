"""A worker process for the crash tests: one SQS batch through
``handler.entrypoints.worker.process_batch``.

Run as ``python -m tests.e2e.crash_worker REMAINING_MS`` with the SQS event JSON on stdin and the
configuration in the environment (as a Lambda gets it). Prints the per-message report as JSON.
The fake context's remaining time is what Powertools uses for the in-progress expiry.
"""

from __future__ import annotations

import json
import sys

from handler.entrypoints import worker
from handler.tools.local import LocalContext


def main() -> None:
    remaining_ms = int(sys.argv[1])
    event = json.load(sys.stdin)
    _, report = worker.process_batch(event, LocalContext("worker", timeout_ms=remaining_ms))
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
