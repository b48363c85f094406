"""The GME emulator's five APIs and its inspection, driven by the real Tencent Cloud SDK over HTTP.

These tests are the emulator's contract with the rest of the project: if StartRecord,
DescribeTaskInfo, StopRecord, ModifyRecordInfo and DescribeRecordInfo keep one task per room and
answer as the real service documents, and the tasks and calls it reports are the ones made, then
tests of the recorder that check the emulator's state afterwards mean something.
"""

from __future__ import annotations

import threading
from typing import Any

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.gme.v20180711 import models

from emulator import GmeEmulator
from tests.emulator.helpers import (
    BIZ,
    OTHER_BIZ,
    describe_task,
    make_client,
    make_common,
    raw,
    sdk_error,
    start,
    stop,
)

# --------------------------------------------------------------------------- the five APIs


def test_start_returns_exact_task_id_above_2_pow_53(emu: GmeEmulator, client: Any) -> None:
    resp = start(client, allow=["u1", "u2"])
    assert type(resp.TaskId) is int
    assert resp.TaskId > 2**53
    (task,) = emu.tasks()
    assert task.task_id == resp.TaskId
    assert (task.biz_id, task.room_id, task.record_mode) == (BIZ, "room-1", 2)
    assert task.subscribe_user_ids == ("u1", "u2")
    assert task.unsubscribe_user_ids == ()
    assert task.running
    assert task.stopped_at is None
    assert resp.TaskId != start(client, room="room-2").TaskId


def test_second_start_in_same_room_is_task_in_use(emu: GmeEmulator, client: Any) -> None:
    first = start(client)
    assert sdk_error(lambda: start(client, mode=1)).code == "ResourceInUse.TaskInUse"
    start(client, biz=OTHER_BIZ)  # same RoomId in another app is another room
    assert [t.task_id for t in emu.tasks(biz_id=BIZ)] == [first.TaskId]


def test_describe_task_info_running_and_absent(emu: GmeEmulator, client: Any) -> None:
    none = describe_task(client)
    assert (none.TaskId, none.RecordMode, none.SubscribeRecordUserIds) == (None, None, None)
    task_id = start(client, mode=3, block=["bad-user"]).TaskId
    found = describe_task(client)
    assert (found.TaskId, found.RecordMode) == (task_id, 3)
    assert found.SubscribeRecordUserIds.UnSubscribeUserIds == ["bad-user"]
    assert found.SubscribeRecordUserIds.SubscribeUserIds is None


def test_stop_record_then_task_not_found(emu: GmeEmulator, client: Any) -> None:
    task_id = start(client).TaskId
    assert sdk_error(lambda: stop(client, task_id, biz=OTHER_BIZ)).code == (
        "ResourceNotFound.TaskNotFound"
    )
    stop(client, task_id)
    assert emu.tasks(running_only=True) == []
    assert emu.tasks()[0].stopped_at is not None
    assert sdk_error(lambda: stop(client, task_id)).code == "ResourceNotFound.TaskNotFound"
    assert sdk_error(lambda: stop(client, 2**60)).code == "ResourceNotFound.TaskNotFound"
    assert describe_task(client).TaskId is None
    assert start(client).TaskId != task_id  # the room is free again


def test_modify_record_info(emu: GmeEmulator, client: Any) -> None:
    task_id = start(client, mode=2, allow=["a"]).TaskId
    req = models.ModifyRecordInfoRequest()
    req.BizId, req.TaskId, req.RecordMode = BIZ, task_id, 1
    client.ModifyRecordInfo(req)  # no lists given: the lists stay
    assert emu.tasks()[0].record_mode == 1
    assert emu.tasks()[0].subscribe_user_ids == ("a",)
    lists = models.SubscribeRecordUserIds()
    lists.UnSubscribeUserIds = ["x", "y"]
    req.SubscribeRecordUserIds, req.RecordMode = lists, 3
    client.ModifyRecordInfo(req)
    (task,) = emu.tasks()
    assert (task.record_mode, task.subscribe_user_ids, task.unsubscribe_user_ids) == (
        3,
        (),
        ("x", "y"),
    )
    lists.UnSubscribeUserIds = [f"u{i}" for i in range(21)]
    code = sdk_error(lambda: client.ModifyRecordInfo(req)).code
    assert code == "InvalidParameterValue.InvalidUNSubscribeUserIds"
    stop(client, task_id)
    lists.UnSubscribeUserIds = None
    assert sdk_error(lambda: client.ModifyRecordInfo(req)).code == "ResourceNotFound.TaskNotFound"


def test_modify_record_info_refusals_change_nothing(emu: GmeEmulator, client: Any) -> None:
    task_id = start(client, mode=2, allow=["a"]).TaskId
    before = emu.tasks()
    common = make_common(emu)
    refused = [
        ({"BizId": OTHER_BIZ, "TaskId": task_id, "RecordMode": 1}, "ResourceNotFound.TaskNotFound"),
        ({"BizId": BIZ, "TaskId": task_id + 1, "RecordMode": 1}, "ResourceNotFound.TaskNotFound"),
        ({"BizId": BIZ, "TaskId": 0, "RecordMode": 1}, "InvalidParameterValue.InvalidTaskId"),
        ({"BizId": BIZ, "TaskId": str(task_id), "RecordMode": 1}, "InvalidParameter"),
        ({"BizId": BIZ, "TaskId": task_id, "RecordMode": 1, "RoomId": "r"}, "UnknownParameter"),
        (
            {
                "BizId": BIZ,
                "TaskId": task_id,
                "RecordMode": 1,
                "SubscribeRecordUserIds": {"SubscribeUserIds": ["a"], "UnSubscribeUserIds": ["b"]},
            },
            "InvalidParameterValue.InvalidSubscribeRecordUserIds",
        ),
    ]
    for params, code in refused:
        assert sdk_error(lambda p=params: common.call_json("ModifyRecordInfo", p)).code == code
    assert emu.tasks() == before
    # An empty lists object (what the SDK sends for an empty model) records everyone again.
    common.call_json(
        "ModifyRecordInfo",
        {"BizId": BIZ, "TaskId": task_id, "RecordMode": 3, "SubscribeRecordUserIds": {}},
    )
    (task,) = emu.tasks()
    assert (task.record_mode, task.subscribe_user_ids, task.unsubscribe_user_ids) == (3, (), ())
    assert describe_task(client).RecordMode == 3


def test_describe_record_info(emu: GmeEmulator, client: Any) -> None:
    task_id = start(client, room="r-9", mode=3, allow=["u7"]).TaskId
    req = models.DescribeRecordInfoRequest()
    req.BizId, req.TaskId = BIZ, task_id
    resp = client.DescribeRecordInfo(req)
    assert (resp.RoomId, resp.RecordMode) == ("r-9", 3)
    assert [r.UserId for r in resp.RecordInfo] == ["0", "u7"]
    assert all(r.RecordStatus == 2 and r.FileName and r.RecordBeginTime for r in resp.RecordInfo)
    stop(client, task_id)
    assert {r.RecordStatus for r in client.DescribeRecordInfo(req).RecordInfo} == {13}
    req.TaskId = task_id + 1
    assert sdk_error(lambda: client.DescribeRecordInfo(req)).code == (
        "ResourceNotFound.TaskNotFound"
    )


def test_missing_room_is_room_not_found(emu: GmeEmulator, client: Any) -> None:
    emu.missing_rooms.add((BIZ, "empty-room"))
    assert sdk_error(lambda: start(client, room="empty-room")).code == (
        "ResourceNotFound.RoomNotFound"
    )
    assert sdk_error(lambda: describe_task(client, room="empty-room")).code == (
        "ResourceNotFound.RoomNotFound"
    )
    assert emu.tasks() == []
    start(client, room="empty-room", biz=OTHER_BIZ)


def test_concurrent_starts_create_one_task(emu: GmeEmulator) -> None:
    results: list[str] = []

    def worker() -> None:
        try:
            start(make_client(emu), room="race")
            results.append("ok")
        except TencentCloudSDKException as exc:
            results.append(str(exc.code))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ResourceInUse.TaskInUse"] * 7 + ["ok"]
    assert len(emu.tasks()) == 1


# --------------------------------------------------------------------------- inspection


def test_python_inspection(emu: GmeEmulator, client: Any) -> None:
    a = start(client, room="a").TaskId
    b = start(client, room="b").TaskId
    start(client, room="a", biz=OTHER_BIZ)
    stop(client, b)
    assert [t.task_id for t in emu.tasks(biz_id=BIZ)] == [a, b]
    assert [t.task_id for t in emu.tasks(biz_id=BIZ, running_only=True)] == [a]
    assert len(emu.tasks(room_id="a")) == 2
    starts = emu.calls("StartRecord")
    assert [(c.biz_id, c.room_id, c.error_code) for c in starts] == [
        (BIZ, "a", None),
        (BIZ, "b", None),
        (OTHER_BIZ, "a", None),
    ]
    assert starts[0].task_id == a
    assert starts[0].request_id
    assert emu.calls("StopRecord")[0].task_id == b
    emu.reset()
    assert emu.tasks() == []
    assert emu.calls() == []


def test_http_inspection(emu: GmeEmulator, client: Any) -> None:
    task_id = start(client).TaskId
    sdk_error(lambda: start(client))
    _, tasks = raw(emu, "GET", "/_emulator/tasks?running_only=1&biz_id=" + str(BIZ))
    (task,) = tasks["tasks"]
    assert task["task_id"] == task_id
    assert task["task_id_str"] == str(task_id)
    assert task["running"] is True
    assert task["room_id"] == "room-1"
    _, empty = raw(emu, "GET", "/_emulator/tasks?room_id=other")
    assert empty == {"tasks": []}
    _, calls = raw(emu, "GET", "/_emulator/calls?action=StartRecord")
    assert [c["error_code"] for c in calls["calls"]] == [None, "ResourceInUse.TaskInUse"]
    assert calls["calls"][0]["task_id_str"] == str(task_id)
    resp, _ = raw(emu, "GET", "/_emulator/tasks?biz_id=x")
    assert resp.status == 400
    resp, payload = raw(emu, "POST", "/_emulator/reset")
    assert resp.status == 200
    assert payload == {"reset": True}
    assert emu.tasks() == []
    assert raw(emu, "GET", "/_emulator/health")[1] == {"ok": True}
