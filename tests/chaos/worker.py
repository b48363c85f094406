"""A worker process for the chaos test: stands in for Lambda's SQS event source mapping.

It long-polls the queue (real SQS API on moto_server), hands each batch, shaped exactly as Lambda
delivers it, to the real ``handler.entrypoints.worker.process_batch``, deletes the messages that
succeeded and leaves the failed ones for SQS to redeliver (after ``CHAOS_RETRY_DELAY`` seconds, set
with ChangeMessageVisibility, so the test need not wait a full visibility timeout per retry). Each
message's result is appended to ``CHAOS_LOG`` as a JSON line: that is the "reason" a message in
the DLQ is matched with. Stops when ``CHAOS_STOP`` exists.

    python -m tests.chaos.worker   (configuration in the environment, as for the Lambda)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from handler.entrypoints import worker
from handler.tools.local import LocalContext


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "eu-west-1",
    }


def main() -> None:
    env = os.environ
    queue_url, queue_arn = env["CHAOS_QUEUE_URL"], env["CHAOS_QUEUE_ARN"]
    log_path, stop = Path(env["CHAOS_LOG"]), Path(env["CHAOS_STOP"])
    timeout_ms = int(env["CHAOS_FUNCTION_TIMEOUT_MS"])
    retry_delay = int(env["CHAOS_RETRY_DELAY"])
    batch_size = int(env["CHAOS_BATCH_SIZE"])
    sqs = boto3.client("sqs", region_name="eu-west-1")
    with log_path.open("a", buffering=1) as log:
        while not stop.exists():
            try:
                poll_once(sqs, log, queue_url, queue_arn, timeout_ms, retry_delay, batch_size)
            except (BotoCoreError, ClientError) as exc:
                # Lambda's poller retries its own SQS calls; a worker that died here would
                # leave its share of the queue to the others and hide what happened.
                log.write(json.dumps({"sqs_error": repr(exc), "at": time.time()}) + "\n")
                time.sleep(0.2)


class WorkerFailed(Exception):
    """The real worker raised; it answers every record itself, so this ends the process."""


def poll_once(
    sqs: Any,
    log: TextIO,
    queue_url: str,
    queue_arn: str,
    timeout_ms: int,
    retry_delay: int,
    batch_size: int,
) -> None:
    """Receive one batch, run it through the real worker, delete the successes and set the
    failures' retry delay."""
    polled = time.monotonic()
    messages = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=0,  # moto rescans the queue while long-polling: poll instead
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not messages:
        time.sleep(0.2)
        return
    by_id = {m["MessageId"]: m for m in messages}
    received = time.monotonic()
    log.write(json.dumps({"batch": list(by_id), "receive_s": received - polled}) + "\n")
    event = {"Records": [lambda_record(m, queue_arn) for m in messages]}
    try:
        response, report = worker.process_batch(event, LocalContext("worker", timeout_ms))
    except Exception as exc:  # never an SQS hiccup to shrug off: a fault of the worker
        raise WorkerFailed from exc
    processed = time.monotonic() - received
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    # Results are logged before anything is deleted: a kill in between leaves a logged
    # success that SQS delivers again, never a deleted message nobody logged.
    for item in report:
        outcome = item.get("outcome", {})
        line = {
            "id": item["message_id"],
            "ok": item["ok"],
            "reason": item.get("reason"),
            "status": outcome.get("status"),
            "task_id": outcome.get("task_id"),
            "duplicate": outcome.get("duplicate", False),
            "room_id": outcome.get("room_id"),
            "at": time.time(),
            "receive": int(by_id[item["message_id"]]["Attributes"]["ApproximateReceiveCount"]),
        }
        log.write(json.dumps(line) + "\n")
    done = [m for mid, m in by_id.items() if mid not in failed]
    undeleted = 0
    if done:
        answer = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ],
        )
        # A receipt handle outlived by its visibility timeout: SQS delivers it again
        # and the idempotency store answers that delivery as a duplicate.
        undeleted = len(answer.get("Failed", []))
    if failed:
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    "Id": str(i),
                    "ReceiptHandle": by_id[mid]["ReceiptHandle"],
                    "VisibilityTimeout": retry_delay,
                }
                for i, mid in enumerate(sorted(failed))
            ],
        )
    done_line = {"done": list(by_id), "process_s": processed, "undeleted": undeleted}
    log.write(json.dumps(done_line) + "\n")


if __name__ == "__main__":
    main()
