"""The GME port: the small interface the recorder needs, and how GME errors are classified.

Adapters (the Tencent SDK client, the emulator in tests) implement `GmeGateway`; the domain only
sees `RunningTask` and `GmeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from handler.domain.decision import RecordMode, RecordPlan

#: Codes (or code prefixes) that retrying cannot fix: bad input, missing rights, service off.
_PERMANENT_PREFIXES = (
    "InvalidParameter",  # also InvalidParameterValue.*
    "MissingParameter",
    "UnknownParameter",
    "UnsupportedOperation",  # also .ServiceNotOpened: the recording service is not enabled
    "UnauthorizedOperation",
    "OperationDenied",
    "InvalidAction",
    "NoSuchVersion",
    "LimitExceeded",  # quota, not rate: RequestLimitExceeded is matched first below
    "AuthFailure",
)
#: Auth failures that a fresh signature or refreshed token can cure.
_RETRYABLE_AUTH = ("AuthFailure.SignatureExpire", "AuthFailure.TokenFailure")
ROOM_NOT_FOUND = "ResourceNotFound.RoomNotFound"
TASK_IN_USE = "ResourceInUse.TaskInUse"
TASK_NOT_FOUND = "ResourceNotFound.TaskNotFound"
#: Our own code for a 200 answer without a TaskId (the SDK hides some errors that way).
EMPTY_RESPONSE = "EmptyResponse"
#: Our own code: no rate-limit slot (or backoff) fits before the Lambda deadline. Retryable.
NO_TIME_LEFT = "NoTimeLeft"


def is_throttled(code: str) -> bool:
    """GME's rate limit refused the call (`RequestLimitExceeded` and its sub-codes): nothing
    is wrong with the request, only its moment."""
    return code.startswith("RequestLimitExceeded")


def is_retryable(code: str, *, room_is_new: bool = True) -> bool:
    """Whether a later retry of the same call may succeed.

    Unknown codes count as retryable: the queue bounds the retries and the DLQ keeps the event,
    which is better than dropping a room on a code we have not seen.
    """
    if is_throttled(code) or code in _RETRYABLE_AUTH:
        return True
    if code == ROOM_NOT_FOUND:
        # A room-created event can outrun the first member into the room; later it means "gone".
        return room_is_new
    if code == TASK_NOT_FOUND:
        return False
    return not code.startswith(_PERMANENT_PREFIXES)


class GmeError(Exception):
    """A GME call that did not succeed, with GME's code (or an SDK pseudo-code)."""

    def __init__(self, action: str, code: str, message: str, request_id: str | None = None):
        super().__init__(f"{action} failed: {code}: {message}")
        self.action = action
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class RunningTask:
    task_id: str
    record_mode: RecordMode | None
    allow_user_ids: tuple[str, ...] = ()
    block_user_ids: tuple[str, ...] = ()


#: GME's RecordStatus of one stream (DescribeRecordInfo).
RECORD_STATUS = {
    2: "recording",
    10: "waiting to transcode",
    11: "transcoding",
    12: "uploading",
    13: "upload finished",
    14: "user notified",
}


@dataclass(frozen=True)
class RecordStream:
    """One stream of a task as GME's DescribeRecordInfo reports it; user "0" is the room's
    mixed stream."""

    user_id: str
    file_name: str | None
    begin_time: int | None
    status: int | None

    def status_text(self) -> str:
        if self.status is None:
            return "status unknown"
        return RECORD_STATUS.get(self.status, f"status {self.status}")


class GmeGateway(Protocol):
    """The GME calls the recorder makes, the one operators ask for a task's streams, and the
    one that brings a running task to a new plan. Implementations raise `GmeError`."""

    def describe_task(self, biz_id: int, room_id: str) -> RunningTask | None: ...

    def start_record(self, biz_id: int, room_id: str, plan: RecordPlan) -> str: ...

    def stop_record(self, biz_id: int, task_id: str) -> None: ...

    def modify_record(self, biz_id: int, task_id: str, plan: RecordPlan) -> None:
        """ModifyRecordInfo: the running task records by `plan` from now on, lists included
        (a plan without lists records everyone, whatever the task had)."""
        ...

    def describe_record_info(self, biz_id: int, task_id: str) -> tuple[RecordStream, ...]: ...
