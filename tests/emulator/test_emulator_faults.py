"""The GME emulator's rate limit, injected faults and latency, driven by the real Tencent Cloud SDK.

The recorder's retry and exactly-once tests lean on these: a throttled call, a dropped answer
after the task was made, a timeout, a hidden error must look to the SDK the way the real service
and a real network would produce them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from tests.emulator.helpers import BIZ, OTHER_BIZ, describe_task, make_client, sdk_error, start

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


# --------------------------------------------------------------------------- latency


def test_latency_holds_every_answer_and_counts_the_request_halfway() -> None:
    with GmeEmulator(latency=0.2) as emu:
        client = make_client(emu)
        began = time.time()
        describe_task(client)
        done = time.time()
        [call] = emu.calls("DescribeTaskInfo")
    assert done - began >= 0.2
    assert began + 0.1 <= call.at <= done - 0.1  # arrival is half a round trip in
