"""The GME emulator's protocol, driven by the real Tencent Cloud SDK and by raw HTTP.

A recorder test means something only if the emulator refuses what the real service refuses:
bad or unknown parameters, a wrong or stale TC3 signature, other routes; answers on the wire the
way the SDK expects (200, JSON, keep-alive); and runs alone from the command line (`python -m
emulator`, as the README shows) without printing its secret key.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.gme.v20180711 import gme_client

from emulator import DEFAULT_SECRET_KEY, GmeEmulator
from tests.emulator.helpers import (
    BIZ,
    describe_task,
    error_code,
    make_client,
    make_common,
    raw,
    sdk_error,
    signed,
    start,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


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
