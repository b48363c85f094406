"""The GME emulator, driven by the real Tencent Cloud SDK over HTTP.

These tests are the emulator's contract with the rest of the project: if the SDK can talk to it,
gets the errors the real service documents, and sees the injected faults the way a network would
produce them, then tests of the recorder against the emulator mean something.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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
REPO_ROOT = Path(__file__).resolve().parents[2]


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


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[GmeEmulator]:
    with GmeEmulator() as emu:
        yield emu


@pytest.fixture
def emu(shared_emulator: GmeEmulator) -> GmeEmulator:
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture(scope="module")
def shared_client(shared_emulator: GmeEmulator) -> gme_client.GmeClient:
    return make_client(shared_emulator)


@pytest.fixture
def client(emu: GmeEmulator, shared_client: gme_client.GmeClient) -> gme_client.GmeClient:
    return shared_client


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


# --------------------------------------------------------------------------- validation

GOOD_START = {"BizId": BIZ, "RoomId": "room-1", "RecordMode": 2}
TOO_MANY = [f"u{i}" for i in range(21)]


@pytest.mark.parametrize(
    ("action", "params", "code"),
    [
        ("StartRecord", {"RoomId": "r", "RecordMode": 1}, "MissingParameter"),
        ("StartRecord", {"BizId": BIZ, "RecordMode": 1}, "MissingParameter"),
        ("StartRecord", {"BizId": BIZ, "RoomId": "r"}, "MissingParameter"),
        ("StartRecord", GOOD_START | {"BizId": str(BIZ)}, "InvalidParameter"),
        ("StartRecord", GOOD_START | {"BizId": True}, "InvalidParameter"),
        ("StartRecord", GOOD_START | {"BizId": 1.5}, "InvalidParameter"),
        ("StartRecord", GOOD_START | {"BizId": 0}, "InvalidParameterValue.InvalidBizId"),
        ("StartRecord", GOOD_START | {"BizId": -3}, "InvalidParameterValue.InvalidBizId"),
        ("StartRecord", GOOD_START | {"RoomId": 42}, "InvalidParameter"),
        ("StartRecord", GOOD_START | {"RoomId": ""}, "InvalidParameterValue.InvalidRoomId"),
        ("StartRecord", GOOD_START | {"RoomId": "r" * 128}, "InvalidParameterValue.InvalidRoomId"),
        ("StartRecord", GOOD_START | {"RecordMode": "2"}, "InvalidParameter"),
        ("StartRecord", GOOD_START | {"RecordMode": 0}, "InvalidParameterValue.InvalidRecordMode"),
        ("StartRecord", GOOD_START | {"RecordMode": 4}, "InvalidParameterValue.InvalidRecordMode"),
        ("StartRecord", GOOD_START | {"RoomID": "typo"}, "UnknownParameter"),
        (
            "StartRecord",
            GOOD_START
            | {"SubscribeRecordUserIds": {"SubscribeUserIds": ["a"], "UnSubscribeUserIds": ["b"]}},
            "InvalidParameterValue.InvalidSubscribeRecordUserIds",
        ),
        (
            "StartRecord",
            GOOD_START | {"SubscribeRecordUserIds": {"SubscribeUserIds": [1, 2]}},
            "InvalidParameterValue.InvalidSubscribeRecordUserIds",
        ),
        (
            "StartRecord",
            GOOD_START | {"SubscribeRecordUserIds": {"Users": ["a"]}},
            "InvalidParameterValue.InvalidSubscribeRecordUserIds",
        ),
        (
            "StartRecord",
            GOOD_START | {"SubscribeRecordUserIds": ["a"]},
            "InvalidParameterValue.InvalidSubscribeRecordUserIds",
        ),
        (
            "StartRecord",
            GOOD_START | {"SubscribeRecordUserIds": {"SubscribeUserIds": TOO_MANY}},
            "InvalidParameterValue.InvalidSubscribeUserIds",
        ),
        (
            "StartRecord",
            GOOD_START | {"SubscribeRecordUserIds": {"UnSubscribeUserIds": TOO_MANY}},
            "InvalidParameterValue.InvalidUNSubscribeUserIds",
        ),
        ("StopRecord", {"BizId": BIZ}, "MissingParameter"),
        ("StopRecord", {"BizId": BIZ, "TaskId": 0}, "InvalidParameterValue.InvalidTaskId"),
        ("StopRecord", {"BizId": BIZ, "TaskId": "12"}, "InvalidParameter"),
        ("StopRecord", {"BizId": BIZ, "TaskId": 4.469467052840000e17}, "InvalidParameter"),
        ("DescribeTaskInfo", {"BizId": BIZ}, "MissingParameter"),
        ("DescribeTaskInfo", {"BizId": BIZ, "RoomId": None}, "MissingParameter"),
        ("DescribeRecordInfo", {"TaskId": 2**54}, "MissingParameter"),
        ("ModifyRecordInfo", {"BizId": BIZ, "TaskId": 2**54}, "MissingParameter"),
        (
            "ModifyRecordInfo",
            {"BizId": BIZ, "TaskId": 2**54, "RecordMode": 9},
            "InvalidParameterValue.InvalidRecordMode",
        ),
        (
            "ModifyRecordInfo",
            {
                "BizId": BIZ,
                "TaskId": 2**54,
                "RecordMode": 1,
                "SubscribeRecordUserIds": {"SubscribeUserIds": TOO_MANY},
            },
            "InvalidParameterValue.InvalidSubscribeUserIds",
        ),
    ],
)
def test_parameter_validation(
    emu: GmeEmulator, action: str, params: dict[str, Any], code: str
) -> None:
    assert sdk_error(lambda: make_common(emu).call_json(action, params)).code == code
    assert emu.tasks() == []
    assert emu.calls()[-1].error_code == code


def test_empty_lists_object_means_record_everyone(emu: GmeEmulator, client: Any) -> None:
    # The SDK sends {} for a SubscribeRecordUserIds() with nothing set.
    start(client, allow=None, block=[])
    assert emu.tasks()[0].subscribe_user_ids == () == emu.tasks()[0].unsubscribe_user_ids
    assert describe_task(client).SubscribeRecordUserIds is None


def test_unknown_action_and_version(emu: GmeEmulator) -> None:
    assert sdk_error(lambda: make_common(emu).call_json("NoSuchThing", {})).code == "InvalidAction"
    old = make_common(emu, version="2019-01-01")
    assert sdk_error(lambda: old.call_json("StartRecord", GOOD_START)).code == "NoSuchVersion"
    assert emu.tasks() == []


@pytest.mark.parametrize("body", [b"[1, 2]", b"not json", b"", b'"text"'])
def test_body_must_be_a_json_object(emu: GmeEmulator, body: bytes) -> None:
    resp, payload = raw(emu, body=body, headers=signed(emu, body))
    assert resp.status == 200
    assert error_code(payload) == "InvalidParameter"


# --------------------------------------------------------------------------- authentication


def test_wrong_secret_key_is_signature_failure(emu: GmeEmulator) -> None:
    bad = make_client(emu, secret_key="not-the-key")
    err = sdk_error(lambda: start(bad))
    assert err.code == "AuthFailure.SignatureFailure"
    assert DEFAULT_SECRET_KEY not in str(err.message)
    assert "not-the-key" not in str(err.message)
    assert emu.tasks() == []


def test_unknown_secret_id(emu: GmeEmulator) -> None:
    stranger = make_client(emu, secret_id="AKIDstranger")
    assert sdk_error(lambda: start(stranger)).code == "AuthFailure.SecretIdNotFound"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer abc",
        "TC3-HMAC-SHA256 Credential=AKIDgmeautorecordemulator/gme/tc3_request, "
        "SignedHeaders=content-type;host, Signature=" + "0" * 64,
        "TC3-HMAC-SHA256 Credential=AKIDgmeautorecordemulator/2024-01-01/gme/tc3_request, "
        "SignedHeaders=host, Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization(emu: GmeEmulator, authorization: str | None) -> None:
    headers = signed(emu, b"{}")
    del headers["Authorization"]
    if authorization is not None:
        headers["Authorization"] = authorization
    resp, payload = raw(emu, headers=headers)
    assert error_code(payload) == "AuthFailure.InvalidAuthorization"
    assert resp.getheader("Content-Type") == "application/json"


def test_signature_covers_body_and_host(emu: GmeEmulator) -> None:
    body = json.dumps({"BizId": BIZ, "RoomId": "r"}).encode()
    headers = signed(emu, body)
    _, payload = raw(emu, body=body.replace(b'"r"', b'"s"'), headers=headers)
    assert error_code(payload) == "AuthFailure.SignatureFailure"
    # Signed for the production host but sent here: the received Host is what counts.
    headers = signed(emu, body, host="gme.tencentcloudapi.com")
    headers["Host"] = emu.endpoint
    _, payload = raw(emu, body=body, headers=headers)
    assert error_code(payload) == "AuthFailure.SignatureFailure"
    _, payload = raw(emu, body=body, headers=signed(emu, body))
    assert payload["Response"]["TaskId"] is None


def test_unsigned_payload_is_accepted(emu: GmeEmulator) -> None:
    client = make_client(emu)
    client.profile.unsignedPayload = True
    assert start(client).TaskId == emu.tasks()[0].task_id


@pytest.mark.parametrize(("skew", "expired"), [(301, True), (-301, True), (250, False)])
def test_timestamp_skew(skew: float, expired: bool) -> None:
    with GmeEmulator(clock=lambda: time.time() + skew) as emu:
        client = make_client(emu)
        if expired:
            assert sdk_error(lambda: start(client)).code == "AuthFailure.SignatureExpire"
            assert emu.tasks() == []
        else:
            assert start(client).TaskId > 2**53


# --------------------------------------------------------------------------- wire details


def test_every_answer_is_200_with_exact_json_content_type(emu: GmeEmulator) -> None:
    body = json.dumps(GOOD_START).encode()
    for headers in (signed(emu, body, action="StartRecord"), {}):
        resp, payload = raw(emu, body=body, headers=headers)
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "application/json"
        assert set(payload) == {"Response"}
        assert payload["Response"]["RequestId"]
    assert resp.getheader("Connection") != "close"  # keep-alive, as the SDK's pool expects


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("PUT", "/"), ("POST", "/other")])
def test_other_routes_are_404_json(emu: GmeEmulator, method: str, path: str) -> None:
    resp, payload = raw(emu, method=method, path=path)
    assert resp.status == 404
    assert resp.getheader("Content-Type") == "application/json"
    assert "error" in payload
    assert emu.calls() == []


def test_fifty_sequential_calls_are_fast() -> None:
    with GmeEmulator(rate_limit_per_second=0) as emu:
        client = make_client(emu)
        describe_task(client)  # connect and warm up
        began = time.perf_counter()
        for _ in range(50):
            describe_task(client)
        elapsed = time.perf_counter() - began
    # About 2 ms each here; with Nagle's algorithm on, each call waits ~40 ms for a delayed ACK.
    assert elapsed < 1.0, f"50 calls took {elapsed:.3f} s"


def test_stop_closes_keep_alive_connections() -> None:
    emu = GmeEmulator().start()
    client = make_client(emu, timeout=2)
    describe_task(client)
    emu.stop()
    assert sdk_error(lambda: describe_task(client)).code == "ClientNetworkError"


# --------------------------------------------------------------------------- rate limit


def test_rate_limit_with_real_clock(emu: GmeEmulator, client: Any) -> None:
    codes = []
    for _ in range(21):
        try:
            describe_task(client)
            codes.append("ok")
        except TencentCloudSDKException as exc:
            codes.append(str(exc.code))
    assert "RequestLimitExceeded" in codes


OTHER_SECRET_ID = "AKIDemulatorOtherCredential000000000"
OTHER_SECRET_KEY = "other-emulator-secret-key"


def test_rate_limit_is_per_action_and_credential_over_a_rolling_second() -> None:
    """GME's dimension: Action + region + the credentials used. Two BizIds under one SecretId
    share one 20/s; another SecretId has its own; another action has its own."""
    now = [time.time()]
    credentials = {DEFAULT_SECRET_ID: DEFAULT_SECRET_KEY, OTHER_SECRET_ID: OTHER_SECRET_KEY}
    with GmeEmulator(clock=lambda: now[0], credentials=credentials) as emu:
        client = make_client(emu)
        other = make_client(emu, OTHER_SECRET_ID, OTHER_SECRET_KEY)
        for i in range(20):
            describe_task(client, biz=(BIZ, OTHER_BIZ)[i % 2])
        assert sdk_error(lambda: describe_task(client)).code == "RequestLimitExceeded"
        assert sdk_error(lambda: describe_task(client, biz=OTHER_BIZ)).code == (
            "RequestLimitExceeded"
        )
        for _ in range(20):  # the other credentials are not held back by the first ones
            describe_task(other, biz=OTHER_BIZ)
        assert sdk_error(lambda: describe_task(other)).code == "RequestLimitExceeded"
        start(client)  # StartRecord counts on its own
        now[0] += 0.5
        assert sdk_error(lambda: describe_task(client, biz=OTHER_BIZ)).code == (
            "RequestLimitExceeded"
        )
        now[0] += 0.51
        describe_task(client, biz=OTHER_BIZ)
        limited = [c for c in emu.calls() if c.error_code == "RequestLimitExceeded"]
        assert len(limited) == 4


def test_rate_limit_zero_disables_it() -> None:
    with GmeEmulator(rate_limit_per_second=0, clock=lambda: 1.0 * int(time.time())) as emu:
        client = make_client(emu)
        for _ in range(30):
            describe_task(client)


# --------------------------------------------------------------------------- faults


def test_fail_next(emu: GmeEmulator, client: Any) -> None:
    emu.fail_next("StartRecord", "UnsupportedOperation.ServiceNotOpened", "off", count=2)
    for _ in range(2):
        err = sdk_error(lambda: start(client))
        assert (err.code, err.message) == ("UnsupportedOperation.ServiceNotOpened", "off")
    assert emu.tasks() == []
    describe_task(client)  # other actions are not affected
    assert start(client).TaskId > 2**53
    assert [c.fault for c in emu.calls("StartRecord")] == ["fail", "fail", None]


def test_faults_queue_in_order_and_star_matches_any_action(emu: GmeEmulator, client: Any) -> None:
    emu.fail_next("*", "InternalError")
    emu.fail_next("DescribeTaskInfo", "UnauthorizedOperation")
    assert sdk_error(lambda: describe_task(client)).code == "InternalError"
    assert sdk_error(lambda: describe_task(client)).code == "UnauthorizedOperation"
    assert describe_task(client).TaskId is None
    with pytest.raises(ValueError, match="unknown action"):
        emu.fail_next("StartRecordd", "InternalError")


def test_drop_after_execute_loses_the_response_not_the_task(emu: GmeEmulator, client: Any) -> None:
    emu.drop_next("StartRecord")
    assert sdk_error(lambda: start(client)).code == "ClientNetworkError"
    (task,) = emu.tasks(running_only=True)
    assert len(emu.calls("StartRecord")) == 1  # nothing below the SDK retried the POST
    assert sdk_error(lambda: start(client)).code == "ResourceInUse.TaskInUse"
    assert describe_task(client).TaskId == task.task_id


def test_drop_before_execute_loses_the_request(emu: GmeEmulator, client: Any) -> None:
    emu.drop_next("StartRecord", after_execute=False)
    assert sdk_error(lambda: start(client)).code == "ClientNetworkError"
    assert emu.tasks() == []
    assert start(client).TaskId > 2**53


def test_delay_next(emu: GmeEmulator, client: Any) -> None:
    emu.delay_next("DescribeTaskInfo", 0.3)
    began = time.perf_counter()
    describe_task(client)
    assert time.perf_counter() - began >= 0.3
    began = time.perf_counter()
    describe_task(client)
    assert time.perf_counter() - began < 0.2


def test_delay_longer_than_client_timeout_still_creates_the_task(emu: GmeEmulator) -> None:
    emu.delay_next("StartRecord", 0.6)
    impatient = make_client(emu, timeout=0.2)
    assert sdk_error(lambda: start(impatient)).code == "ClientNetworkError"
    time.sleep(0.5)  # let the delayed answer hit the closed socket quietly
    assert len(emu.tasks(running_only=True)) == 1


def test_bad_content_type_hides_errors_from_the_sdk(emu: GmeEmulator, client: Any) -> None:
    task_id = start(client).TaskId
    emu.bad_content_type_next("StartRecord")
    silent = start(client)  # really ResourceInUse.TaskInUse, but the SDK cannot tell
    assert silent.TaskId is None
    assert emu.calls("StartRecord")[-1].error_code == "ResourceInUse.TaskInUse"
    emu.bad_content_type_next("StartRecord")
    emu.fail_next("StartRecord", "InternalError")
    assert start(client).TaskId is None
    # On success the SDK ignores Content-Type, so the answer still parses.
    emu.bad_content_type_next("DescribeTaskInfo")
    assert describe_task(client).TaskId == task_id


def test_fault_arguments_are_checked(emu: GmeEmulator) -> None:
    with pytest.raises(ValueError, match="code"):
        emu.fail_next("StartRecord", "")
    with pytest.raises(ValueError, match="count"):
        emu.drop_next("StartRecord", count=0)
    with pytest.raises(ValueError, match="seconds"):
        emu.delay_next("StartRecord", -1)


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


# --------------------------------------------------------------------------- CLI


def test_cli_serves_until_sigterm_and_hides_the_key() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--secret-id", "AKIDcli", "--secret-key", "cli-key"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "AKIDcli" in line
        assert "cli-key" not in line
        url = next(word for word in line.split() if word.startswith("http://"))
        endpoint = url.removeprefix("http://")
        http_profile = HttpProfile(endpoint=endpoint, protocol="http", reqTimeout=5)
        cli_client = gme_client.GmeClient(
            Credential("AKIDcli", "cli-key"), "", ClientProfile(httpProfile=http_profile)
        )
        assert start(cli_client).TaskId > 2**53
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert "cli-key" not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- signing


def test_verifier_accepts_sdk_style_and_documented_lowercase_header_values() -> None:
    from emulator import signing

    headers = {"content-type": "application/json", "host": "GME.Example.com:8080"}
    common: dict[str, Any] = {
        "method": "POST",
        "path": "/",
        "query": "",
        "headers": headers,
        "signed_headers": ("content-type", "host"),
        "body": b"{}",
        "timestamp": 1_700_000_000,
    }
    date = signing.utc_date(1_700_000_000)
    for lowercase in (False, True):
        sig = signing.compute_signature("key", lowercase_values=lowercase, **common)
        auth = signing.parse_authorization(
            f"TC3-HMAC-SHA256 Credential=AKID/{date}/gme/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={sig}"
        )
        verify = {k: v for k, v in common.items() if k != "signed_headers"}
        assert signing.verify_signature(auth, "key", **verify)
        assert not signing.verify_signature(auth, "other-key", **verify)
        assert not signing.verify_signature(auth, "key", **(verify | {"timestamp": 1_700_086_400}))


def test_latency_holds_every_answer_and_counts_the_request_halfway() -> None:
    with GmeEmulator(latency=0.2) as emu:
        client = make_client(emu)
        began = time.time()
        describe_task(client)
        done = time.time()
        [call] = emu.calls("DescribeTaskInfo")
    assert done - began >= 0.2
    assert began + 0.1 <= call.at <= done - 0.1  # arrival is half a round trip in
