"""The emulator's movable task clock and GME's 24-hour cap, through the real SDK and over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.gme.v20180711 import gme_client, models

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator

BIZ = 1400000001


@pytest.fixture
def emu() -> Iterator[GmeEmulator]:
    with GmeEmulator() as emulator:
        yield emulator


def client(emu: GmeEmulator) -> gme_client.GmeClient:
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=emu.endpoint, protocol="http"))
    return gme_client.GmeClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), "", profile)


def start(c: gme_client.GmeClient, room: str) -> int:
    req = models.StartRecordRequest()
    req.BizId, req.RoomId, req.RecordMode = BIZ, room, 2
    return int(c.StartRecord(req).TaskId)


def describe(c: gme_client.GmeClient, room: str) -> int | None:
    req = models.DescribeTaskInfoRequest()
    req.BizId, req.RoomId = BIZ, room
    task_id = c.DescribeTaskInfo(req).TaskId
    return None if task_id is None else int(task_id)


def test_tasks_end_by_themselves_after_24_hours(emu: GmeEmulator) -> None:
    c = client(emu)
    task_id = start(c, "long-room")
    t0 = emu.now()
    emu.advance(24 * 3600 - 1)
    assert describe(c, "long-room") == task_id  # still running one second before the cap
    emu.advance(2)  # signatures still use real time: the SDK call below is accepted
    assert describe(c, "long-room") is None
    [task] = emu.tasks()
    assert task.stopped_at == pytest.approx(t0 + 24 * 3600, abs=2)
    stop = models.StopRecordRequest()
    stop.BizId, stop.TaskId = BIZ, task_id
    with pytest.raises(TencentCloudSDKException) as err:
        c.StopRecord(stop)
    assert err.value.get_code() == "ResourceNotFound.TaskNotFound"
    assert start(c, "long-room") != task_id  # the room is free for a new task


def test_advance_over_http_and_refuses_going_back(emu: GmeEmulator) -> None:
    before = emu.now()
    req = urllib.request.Request(f"{emu.url}/_emulator/advance?seconds=3600", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        now = json.loads(resp.read())["now"]
    assert now == pytest.approx(before + 3600, abs=2)
    with pytest.raises(ValueError, match="forward"):
        emu.advance(-1)
