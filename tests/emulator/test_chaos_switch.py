"""The emulator's random-fault switch, in process and over its HTTP control route."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.gme.v20180711 import gme_client, models

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator

BIZ = 1400000001


def client(emu: GmeEmulator, timeout: float = 1) -> gme_client.GmeClient:
    http = HttpProfile(endpoint=emu.endpoint, protocol="http", reqTimeout=timeout)
    cred = Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY)
    return gme_client.GmeClient(cred, "", ClientProfile(httpProfile=http))


def start(c: gme_client.GmeClient, room: str) -> str:
    req = models.StartRecordRequest()
    req.BizId, req.RoomId, req.RecordMode = BIZ, room, 2
    try:
        c.StartRecord(req)
    except TencentCloudSDKException as exc:
        return str(exc.get_code())
    return "ok"


def control(emu: GmeEmulator, method: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{emu.url}/_emulator/chaos", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def run(seed: int) -> list[str]:
    with GmeEmulator(rate_limit_per_second=0) as emu:
        emu.chaos({"InternalError": 0.3, "RequestLimitExceeded": 0.2}, seed=seed)
        c = client(emu)
        outcomes = [start(c, f"room-{i}") for i in range(40)]
        counts = emu.chaos_counts()
        # A refused call does nothing: tasks exist exactly for the calls answered ok.
        assert len(emu.tasks()) == outcomes.count("ok")
    assert counts == {
        f"StartRecord:{k}": outcomes.count(k)
        for k in ("InternalError", "RequestLimitExceeded")
        if outcomes.count(k)
    }
    return outcomes


def test_chaos_is_seeded_and_replayable() -> None:
    first = run(seed=7)
    assert first == run(seed=7)
    assert {"ok", "InternalError", "RequestLimitExceeded"} == set(first)


def test_drop_and_slow_execute_the_call_but_lose_the_answer() -> None:
    with GmeEmulator(rate_limit_per_second=0) as emu:
        emu.chaos({"drop": 1.0})
        assert start(client(emu), "room-drop") == "ClientNetworkError"
        emu.chaos({"slow": 1.0}, slow_seconds=1.5, actions=["StartRecord"])
        assert start(client(emu, timeout=1), "room-slow") == "ClientNetworkError"
        assert sorted(t.room_id for t in emu.tasks()) == ["room-drop", "room-slow"]
        emu.chaos({})
        assert start(client(emu), "room-calm") == "ok"


def test_http_control_route_sets_reads_and_clears() -> None:
    with GmeEmulator(rate_limit_per_second=0) as emu:
        status, doc = control(emu, "POST", {"rates": {"InternalError": 1}, "seed": 3})
        assert status == 200
        assert doc["chaos"]["rates"] == {"InternalError": 1.0}
        assert start(client(emu), "room-1") == "InternalError"
        status, doc = control(emu, "GET")
        assert doc["chaos"]["counts"] == {"StartRecord:InternalError": 1}
        assert control(emu, "DELETE") == (200, {"chaos": None})
        assert start(client(emu), "room-1") == "ok"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rates": {"Meteor": 0.1}}, "unknown chaos kind"),
        ({"rates": {"drop": 0.8, "slow": 0.8}}, "at most 1"),
        ({"rates": {"drop": "lots"}}, "rates"),
        ({"rates": {"drop": 0.1}, "seed": "x"}, "seed"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_chaos_body_is_refused_and_changes_nothing(body: Any, field: str) -> None:
    with GmeEmulator(rate_limit_per_second=0) as emu:
        status, doc = control(emu, "POST", body)
        assert status == 400
        assert doc["code"] == "invalid_chaos"
        assert field in doc["error"]
        assert control(emu, "GET") == (200, {"chaos": None})
