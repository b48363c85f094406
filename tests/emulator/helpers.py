"""Helpers for the emulator's tests: the real SDK's clients and calls pointed at an emulator, and
raw or hand-signed HTTP for what the SDK would never send.

Shared by the emulator's test modules so each of them drives the emulator the same way.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.gme.v20180711 import gme_client, models

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator, sign_request

BIZ = 1400000001
OTHER_BIZ = 1400000002


# --------------------------------------------------------------------------- helpers


def profile(emu: GmeEmulator, timeout: float = 5) -> ClientProfile:
    http_profile = HttpProfile(endpoint=emu.endpoint, protocol="http", reqTimeout=timeout)
    return ClientProfile(httpProfile=http_profile, language="en-US")


def make_client(
    emu: GmeEmulator,
    secret_id: str = DEFAULT_SECRET_ID,
    secret_key: str = DEFAULT_SECRET_KEY,
    timeout: float = 5,
) -> gme_client.GmeClient:
    return gme_client.GmeClient(Credential(secret_id, secret_key), "", profile(emu, timeout))


def make_common(emu: GmeEmulator, version: str = "2018-07-11") -> CommonClient:
    """A client that sends any dict, for parameters the typed models would not produce."""
    cred = Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY)
    return CommonClient("gme", version, cred, "", profile=profile(emu))


def start(
    client: gme_client.GmeClient,
    room: str = "room-1",
    mode: int = 2,
    biz: int = BIZ,
    allow: list[str] | None = None,
    block: list[str] | None = None,
) -> models.StartRecordResponse:
    req = models.StartRecordRequest()
    req.BizId, req.RoomId, req.RecordMode = biz, room, mode
    if allow is not None or block is not None:
        lists = models.SubscribeRecordUserIds()
        lists.SubscribeUserIds, lists.UnSubscribeUserIds = allow, block
        req.SubscribeRecordUserIds = lists
    return client.StartRecord(req)


def describe_task(
    client: gme_client.GmeClient, room: str = "room-1", biz: int = BIZ
) -> models.DescribeTaskInfoResponse:
    req = models.DescribeTaskInfoRequest()
    req.BizId, req.RoomId = biz, room
    return client.DescribeTaskInfo(req)


def stop(client: gme_client.GmeClient, task_id: int, biz: int = BIZ) -> None:
    req = models.StopRecordRequest()
    req.BizId, req.TaskId = biz, task_id
    client.StopRecord(req)


def sdk_error(call: Callable[[], object]) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value


def raw(
    emu: GmeEmulator,
    method: str = "POST",
    path: str = "/",
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, dict[str, Any]]:
    """One request without the SDK; returns the response and its decoded JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        conn.request(method, path, body=body if method != "GET" else None, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp, json.loads(data) if data else {}
    finally:
        conn.close()


def signed(
    emu: GmeEmulator,
    body: bytes,
    action: str = "DescribeTaskInfo",
    version: str = "2018-07-11",
    timestamp: int | None = None,
    host: str | None = None,
) -> dict[str, str]:
    return sign_request(
        DEFAULT_SECRET_ID,
        DEFAULT_SECRET_KEY,
        host=host or emu.endpoint,
        action=action,
        body=body,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        version=version,
    )


def error_code(payload: dict[str, Any]) -> str:
    return str(payload["Response"]["Error"]["Code"])
