"""`python -m handler replay-dlq`: move messages from the dead-letter queue back to the record
queue after a fix, so the worker handles them again.

For a room-created message whose stored outcome is a permanent failure (for example
`UnsupportedOperation.ServiceNotOpened` before recording was enabled), the stored failure is
deleted first, otherwise the idempotency store would replay the old failure without calling GME.
Its ledger entry is moved back to `starting` by the worker as usual. Messages are deleted from
the DLQ only after they were sent to the record queue (at-least-once; the worker is idempotent).

Needs AWS credentials allowed sqs:ReceiveMessage/DeleteMessage on the DLQ, sqs:SendMessage on
the queue and read/delete on the idempotency table; locally it works against moto_server
(`AWS_ENDPOINT_URL_SQS`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from handler.domain.events import EventKind, EventSource, RoomEvent
from handler.domain.inbound import InvalidEvent, parse_json, parse_message


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    attrs = message.get("MessageAttributes") or {}
    return {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in attrs.items()
    }


def replay(sqs: Any, dlq_url: str, queue_url: str, limit: int) -> dict[str, int]:
    from handler.bootstrap import app

    counts = {"moved": 0, "failures_cleared": 0, "unparsable": 0}
    while counts["moved"] + counts["unparsable"] < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, limit - counts["moved"] - counts["unparsable"]),
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            app_id = (message.get("MessageAttributes") or {}).get("SdkAppId", {})
            try:
                event = parse_message(
                    parse_json(message["Body"]), EventSource.QUEUE, app_id.get("StringValue")
                )
            except InvalidEvent:
                counts["unparsable"] += 1  # left in the DLQ: replaying cannot fix bad input
                continue
            if (
                isinstance(event, RoomEvent)
                and event.kind is EventKind.ROOM_CREATED
                and app.recorder().forget_failure(event.biz_id, event.room_id, event.session)
            ):
                counts["failures_cleared"] += 1
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=message["Body"],
                MessageAttributes=_attributes(message),
            )
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            counts["moved"] += 1
    return counts


def cmd_replay(args: argparse.Namespace) -> int:
    import boto3

    dlq = args.dlq_url or os.environ.get("RECORD_DLQ_URL")
    queue = args.queue_url or os.environ.get("RECORD_QUEUE_URL")
    if not dlq or not queue:
        print(
            "error: set RECORD_DLQ_URL and RECORD_QUEUE_URL (or --dlq-url, --queue-url)",
            file=sys.stderr,
        )
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    from handler.bootstrap.config import ConfigError
    from handler.tools.preflight import aws_region

    if not aws_region():
        raise ConfigError(
            "replay-dlq calls SQS: set AWS_DEFAULT_REGION (or AWS_REGION), e.g. eu-west-1"
        )
    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise ConfigError(
            "replay-dlq calls SQS: no AWS credentials found (set AWS_PROFILE, or"
            " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    try:
        counts = replay(session.client("sqs"), dlq, queue, args.max)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"replay-dlq: SQS refused: {exc}") from None
    print(json.dumps(counts))
    return 0


def add_command(sub: Any) -> None:
    cmd = sub.add_parser("replay-dlq", help="move dead-lettered messages back to the queue")
    cmd.add_argument("--dlq-url")
    cmd.add_argument("--queue-url")
    cmd.add_argument("--max", type=int, default=1000)
    cmd.set_defaults(func=cmd_replay)
