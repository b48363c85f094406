"""GME gateway over the official Tencent Cloud SDK.

One `GmeClient` per process (it owns a pooled HTTP session), no SDK-level retry (a retried
StartRecord after a lost response could start a second task), a short timeout so a slow GME
cannot eat the Lambda's whole budget, and every SDK failure turned into a domain `GmeError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.gme.v20180711 import gme_client, models

from handler.bootstrap.observability import subsegment
from handler.domain.decision import RecordMode, RecordPlan
from handler.domain.gme import EMPTY_RESPONSE, GmeError, RecordStream, RunningTask

# Python 3.12 warns about utcfromtimestamp inside the SDK on every call; it is the SDK's to fix.
warnings.filterwarnings("ignore", message=r".*utcfromtimestamp", category=DeprecationWarning)


@dataclass(frozen=True)
class Endpoint:
    host: str  # host[:port], no scheme: the SDK signs exactly this as the Host header
    protocol: str  # "https" or "http"


def parse_endpoint(value: str) -> Endpoint:
    """Accept `gme.tencentcloudapi.com`, `https://host` or `http://127.0.0.1:PORT`."""
    value = value.strip()
    if "://" not in value:
        return Endpoint(host=value.rstrip("/"), protocol="https")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError("GME_ENDPOINT must be a host or an http(s)://host[:port] URL")
    return Endpoint(host=parts.netloc, protocol=parts.scheme)


AUTH_FAILURE = "AuthFailure"
#: (SecretId, SecretKey, session token or None)
Credentials = tuple[str, str, str | None]


def _credential(values: Credentials) -> Credential:
    # Built by hand: the SDK's environment provider never reads a session token.
    return Credential(values[0], values[1], values[2] or None)


def _lists(plan: RecordPlan) -> Any:
    """The plan's allowlist or blocklist as GME's SubscribeRecordUserIds (at most one is set)."""
    subs = models.SubscribeRecordUserIds()
    if plan.allow_user_ids:
        subs.SubscribeUserIds = list(plan.allow_user_ids)
    elif plan.block_user_ids:
        subs.UnSubscribeUserIds = list(plan.block_user_ids)
    return subs


class TencentGme:
    """`GmeGateway` backed by `tencentcloud-sdk-python-gme`."""

    def __init__(
        self,
        endpoint: str,
        secret_id: str,
        secret_key: str,
        session_token: str | None = None,
        timeout_seconds: int = 5,
        *,
        credentials: Callable[[], Credentials] | None = None,
        on_auth_failure: Callable[[], bool] | None = None,
    ) -> None:
        """`credentials` gives the credentials in force (they rotate); they are read before
        each call and, when they changed, put on the one client. `on_auth_failure` is asked
        after an `AuthFailure.*` answer to read them again (True: they may have changed)."""
        ep = parse_endpoint(endpoint)
        http = HttpProfile(protocol=ep.protocol, endpoint=ep.host, reqTimeout=timeout_seconds)
        profile = ClientProfile(httpProfile=http, language="en-US")
        self._in_use: Credentials = (secret_id, secret_key, session_token or None)
        self._client = gme_client.GmeClient(_credential(self._in_use), "", profile)
        self._credentials = credentials
        self._on_auth_failure = on_auth_failure

    def describe_task(self, biz_id: int, room_id: str) -> RunningTask | None:
        req = models.DescribeTaskInfoRequest()
        req.BizId, req.RoomId = biz_id, room_id
        resp = self._call("DescribeTaskInfo", req)
        if resp.TaskId is None:
            return None
        subs = resp.SubscribeRecordUserIds
        return RunningTask(
            task_id=str(resp.TaskId),
            record_mode=RecordMode(resp.RecordMode) if resp.RecordMode in (1, 2, 3) else None,
            allow_user_ids=tuple(str(u) for u in (subs.SubscribeUserIds or ())) if subs else (),
            block_user_ids=tuple(str(u) for u in (subs.UnSubscribeUserIds or ())) if subs else (),
        )

    def start_record(self, biz_id: int, room_id: str, plan: RecordPlan) -> str:
        req = models.StartRecordRequest()
        req.BizId, req.RoomId, req.RecordMode = biz_id, room_id, int(plan.record_mode)
        if plan.allow_user_ids or plan.block_user_ids:
            req.SubscribeRecordUserIds = _lists(plan)
        resp = self._call("StartRecord", req)
        if resp.TaskId is None:
            # The SDK turns an error body with an unexpected Content-Type into an empty model.
            raise GmeError(
                "StartRecord", EMPTY_RESPONSE, "GME answered without a TaskId", resp.RequestId
            )
        return str(resp.TaskId)

    def stop_record(self, biz_id: int, task_id: str) -> None:
        req = models.StopRecordRequest()
        req.BizId, req.TaskId = biz_id, int(task_id)
        self._call("StopRecord", req)

    def modify_record(self, biz_id: int, task_id: str, plan: RecordPlan) -> None:
        req = models.ModifyRecordInfoRequest()
        req.BizId, req.TaskId, req.RecordMode = biz_id, int(task_id), int(plan.record_mode)
        # Always sent, empty ({}) when the plan records everyone: GME documents no meaning for
        # an omitted list on a running task, so the new lists are never left to a guess.
        req.SubscribeRecordUserIds = _lists(plan)
        self._call("ModifyRecordInfo", req)

    def describe_record_info(self, biz_id: int, task_id: str) -> tuple[RecordStream, ...]:
        req = models.DescribeRecordInfoRequest()
        req.BizId, req.TaskId = biz_id, int(task_id)
        resp = self._call("DescribeRecordInfo", req)
        return tuple(
            RecordStream(
                user_id=str(r.UserId),
                file_name=r.FileName,
                begin_time=r.RecordBeginTime,
                status=r.RecordStatus,
            )
            for r in (resp.RecordInfo or ())
        )

    def _use_current_credentials(self) -> bool:
        """Put rotated credentials on the client (the same client: its pooled session stays);
        True when they changed."""
        if self._credentials is None:
            return False
        current = self._credentials()
        current = (current[0], current[1], current[2] or None)
        if current == self._in_use:
            return False
        self._client.credential = _credential(current)
        self._in_use = current
        return True

    def _call(self, action: str, req: Any) -> Any:
        self._use_current_credentials()
        try:
            return self._send(action, req)
        except GmeError as exc:
            if not exc.code.startswith(AUTH_FAILURE) or self._on_auth_failure is None:
                raise
            # Rotated since they were read? Read them again (at most once per refresh interval)
            # and repeat the call once: GME refused it before acting, so a StartRecord repeated
            # after an AuthFailure cannot start a second task.
            if not (self._on_auth_failure() and self._use_current_credentials()):
                raise
        return self._send(action, req)

    def _send(self, action: str, req: Any) -> Any:
        try:
            with subsegment(f"## gme.{action}"):
                return getattr(self._client, action)(req)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "UnknownError"
            message = exc.get_message()
            if isinstance(message, bytes):  # ServerNetworkError carries the raw body
                message = message[:200].decode("utf-8", "replace")
            raise GmeError(action, code, str(message or ""), exc.get_request_id()) from None
