"""API 3.0 request handling, independent of the HTTP transport.

One request passes these steps in order, each answering its own error: authentication (TC3),
action and version, rate limit (counted only for authenticated requests, per action and
SecretId, GME's own dimension: never per BizId),
injected faults, then parameter validation and execution. Every API answer is HTTP 200 with
``Content-Type: application/json`` exactly, because that is the only way the SDK notices an
``Error`` in the body; the ``bad_content_type`` fault exists to break exactly that.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from emulator import signing
from emulator.faults import FaultPlan
from emulator.state import ACTIONS, Call, RecordingService
from emulator.validation import ApiError

MAX_SIGNATURE_SKEW_SECONDS = 300
JSON_CONTENT_TYPE = "application/json"
# What a well-meaning proxy or framework sends; the SDK then ignores an Error body entirely.
BAD_CONTENT_TYPE = "application/json; charset=utf-8"

# (HTTP status, JSON payload, Content-Type, drop the connection instead of answering)
Answer = tuple[int, dict[str, Any], str, bool]

logger = logging.getLogger("emulator")


def _peek(params: object) -> tuple[int | None, str | None, int | None]:
    """BizId, RoomId and TaskId if present and well-typed, for the call log."""
    if not isinstance(params, dict):
        return None, None, None

    def as_int(name: str) -> int | None:
        value = params.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    room = params.get("RoomId")
    return as_int("BizId"), room if isinstance(room, str) else None, as_int("TaskId")


class ApiProtocol:
    """Turns one received API request (headers, body) into the answer the server should send."""

    def __init__(
        self,
        service: RecordingService,
        credentials: Mapping[str, str],
        clock: Callable[[], float],
    ) -> None:
        self._service = service
        self._credentials = dict(credentials)
        self._clock = clock

    def set_credentials(self, credentials: Mapping[str, str]) -> None:
        """Accept these SecretId → SecretKey pairs from now on (one swap, no partial state)."""
        self._credentials = dict(credentials)

    def answer(self, headers: dict[str, str], body: bytes, query: str = "") -> Answer:
        """Answer one API 3.0 request: (status, payload, content type, drop the connection)."""
        request_id = str(uuid.uuid4())
        action = headers.get("x-tc-action", "")
        try:
            params: object = json.loads(body) if body else None
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            params = None
        biz_id, room_id, task_id = _peek(params)

        def log(code: str | None, plan: FaultPlan | None = None, task: int | None = None) -> None:
            self._service.record_call(
                Call(
                    action=action,
                    biz_id=biz_id,
                    room_id=room_id,
                    error_code=code,
                    at=self._clock(),
                    task_id=task if task is not None else task_id,
                    fault=plan.names() if plan else None,
                    request_id=request_id,
                )
            )

        def error(code: str, message: str, content_type: str = JSON_CONTENT_TYPE) -> Answer:
            envelope = {"Error": {"Code": code, "Message": message}, "RequestId": request_id}
            return 200, {"Response": envelope}, content_type, False

        try:
            secret_id = self._authenticate(headers, body, query)
            self._check_action(action, headers)
        except ApiError as exc:
            log(exc.code)
            return error(exc.code, exc.message)
        if not self._service.allow_rate(action, secret_id):
            log("RequestLimitExceeded")
            return error(
                "RequestLimitExceeded",
                f"Too many {action} requests with these credentials (all their BizIds count); "
                f"the limit is {self._service.rate_limit} per second.",
            )

        plan = self._service.take_faults(action)
        if plan.delay and not plan.delay_after_execute:
            time.sleep(plan.delay)
        if plan.drop and not plan.drop_after_execute:
            log(None, plan)
            return 200, {}, JSON_CONTENT_TYPE, True

        result: dict[str, Any] | None = None
        code: tuple[str, str] | None = plan.fail
        if code is None:
            try:
                if not isinstance(params, dict):
                    raise ApiError("InvalidParameter", "The request body must be a JSON object.")
                result = self._service.execute(action, params)
            except ApiError as exc:
                code = (exc.code, exc.message)
            except Exception:  # an emulator bug must surface as an answer, not a hang-up
                logger.exception("emulator failed on %s", action)
                code = ("InternalError", "The emulator failed; see its log.")
        log(code[0] if code else None, plan, result.get("TaskId") if result else None)

        if plan.delay and plan.delay_after_execute:
            time.sleep(plan.delay)
        if plan.drop:
            return 200, {}, JSON_CONTENT_TYPE, True
        content_type = BAD_CONTENT_TYPE if plan.bad_content_type else JSON_CONTENT_TYPE
        if code is not None:
            return error(code[0], code[1], content_type)
        assert result is not None
        return 200, {"Response": {**result, "RequestId": request_id}}, content_type, False

    def _authenticate(self, headers: dict[str, str], body: bytes, query: str) -> str:
        """The SecretId of a correctly signed request; raises ApiError for any other."""
        try:
            auth = signing.parse_authorization(headers.get("authorization"))
        except signing.AuthorizationFormatError as exc:
            raise ApiError("AuthFailure.InvalidAuthorization", str(exc)) from None
        secret_key = self._credentials.get(auth.secret_id)
        if secret_key is None:
            raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        try:
            timestamp = int(headers.get("x-tc-timestamp", ""))
        except ValueError:
            raise ApiError(
                "AuthFailure.InvalidAuthorization", "X-TC-Timestamp must be integer Unix seconds."
            ) from None
        skew = self._clock() - timestamp
        if abs(skew) > MAX_SIGNATURE_SKEW_SECONDS:
            raise ApiError(
                "AuthFailure.SignatureExpire",
                f"The request timestamp is {int(abs(skew))} s away from server time; at most "
                f"{MAX_SIGNATURE_SKEW_SECONDS} s is allowed. Check the client clock.",
            )
        valid = signing.verify_signature(
            auth,
            secret_key,
            method="POST",
            path="/",
            query=query,
            headers=headers,
            body=body,
            timestamp=timestamp,
        )
        if not valid:
            raise ApiError(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated; check the SecretKey and that "
                "Host and Content-Type are sent exactly as signed.",
            )
        return auth.secret_id

    @staticmethod
    def _check_action(action: str, headers: dict[str, str]) -> None:
        if not action:
            raise ApiError("MissingParameter", "The request is missing the X-TC-Action header.")
        if action not in ACTIONS:
            raise ApiError("InvalidAction", f"The action `{action}` does not exist for gme.")
        version = headers.get("x-tc-version", "")
        if version != signing.API_VERSION:
            raise ApiError(
                "NoSuchVersion",
                f"The API version `{version}` does not exist; use {signing.API_VERSION}.",
            )
