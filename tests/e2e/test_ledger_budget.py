"""A ledger entry stays far below DynamoDB's 400 KB item limit whatever GME sends: GME
recording callbacks with 1,024-character CJK file names, 500 of them, through the real webhook
entry point onto a DynamoDB ledger (moto_server), every one answered 200."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.ledger import MAX_ENTRY_BYTES
from handler.entrypoints import webhook
from handler.tools.local import http_event
from tests.conftest import BIZ_ID, GME_KEY, Stack, load_event
from tests.servers import moto_env

DYNAMODB_ITEM_LIMIT = 400 * 1024


def dynamodb_size(value: Any) -> int:
    """An attribute value's size as DynamoDB counts it (strings in UTF-8 bytes, numbers about
    one byte per two digits plus one, containers three bytes plus their elements)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float, Decimal)):
        digits = str(value).lstrip("-").replace(".", "").lstrip("0")
        return (len(digits) + 1) // 2 + 1
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + 1 + dynamodb_size(v) for k, v in value.items())
    if isinstance(value, (list, set, tuple)):
        return 3 + sum(1 + dynamodb_size(v) for v in value)
    raise TypeError(type(value))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + dynamodb_size(v) for name, v in item.items())


def gme_request(body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    sig = base64.b64encode(hmac.new(GME_KEY.encode(), raw, hashlib.sha1).digest()).decode()
    headers = {"content-type": "application/json", "signature": sig}
    return http_event("POST", "/v1/gme/recording-callbacks", headers, raw)


def cjk_name(seq: int) -> str:
    stem = f"{seq:04d}-"
    return stem + "录音文件名称" * ((1024 - len(stem)) // 6) + "录" * ((1024 - len(stem)) % 6)


@pytest.mark.slow
def test_500_callbacks_with_1024_char_cjk_names_keep_the_item_small_and_answer_200(
    stack: Stack, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"ledger-{uuid.uuid4().hex[:8]}"
    moto_env(monkeypatch, moto_url, "dynamodb")
    monkeypatch.setenv("LEDGER_STORE", f"dynamodb://{table}")
    app.reset()
    ledger: Any = app.ledger()
    ledger.create_table()
    doc = load_event("room-created.json")
    result = webhook.handler(stack.room_event_request(doc), stack.context("webhook"))
    task_id = json.loads(result["body"])["task_id"]
    assert len(cjk_name(0)) == 1024
    statuses = []
    for seq in range(500):
        body = {
            "BizID": BIZ_ID,
            "RoomID": doc["room_id"],
            "UserID": "0",
            "TaskID": int(task_id),
            "RecordMode": 1,
            "Timestamp": int(time.time()),
            "EventType": 3,
            "Detail": {"SeqNo": seq, "FileName": cjk_name(seq)},
        }
        got = webhook.handler(gme_request(body), stack.context("webhook"))
        statuses.append(got["statusCode"])
    assert statuses == [200] * 500
    raw = ledger._table.get_item(Key={"pk": f"{BIZ_ID}#{doc['room_id']}", "sk": doc["session"]})
    size = item_size(raw["Item"])
    assert size <= MAX_ENTRY_BYTES + 2048 < DYNAMODB_ITEM_LIMIT / 4, size
    entry = ledger.get(BIZ_ID, doc["room_id"], doc["session"])
    assert entry.files[-1] == cjk_name(499)  # the newest kept
    assert entry.files_dropped == 500 - len(entry.files)
    assert entry.history_dropped > 0
    assert entry.history[-1].what == "callback: uploaded"
    assert entry.callback_keys[-1].endswith(":3:499")
