"""Which GME error codes are worth retrying (see DESIGN.md, "GME facts")."""

from __future__ import annotations

import pytest

from handler.domain.gme import (
    EMPTY_RESPONSE,
    NO_TIME_LEFT,
    ROOM_NOT_FOUND,
    TASK_IN_USE,
    TASK_NOT_FOUND,
    GmeError,
    RecordStream,
    is_retryable,
)

PERMANENT = [
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterValue.InvalidBizId",
    "InvalidParameterValue.InvalidRecordMode",
    "InvalidParameterValue.InvalidRoomId",
    "InvalidParameterValue.InvalidSubscribeRecordUserIds",
    "InvalidParameterValue.InvalidSubscribeUserIds",
    "InvalidParameterValue.InvalidUNSubscribeUserIds",
    "MissingParameter",
    "UnknownParameter",
    "UnsupportedOperation",
    "UnsupportedOperation.ServiceNotOpened",
    "UnauthorizedOperation",
    "AuthFailure",
    "AuthFailure.SecretIdNotFound",
    "AuthFailure.SignatureFailure",
    "AuthFailure.UnauthorizedOperation",
    "AuthFailure.InvalidSecretId",
    "AuthFailure.MFAFailure",
    "InvalidAction",
    "NoSuchVersion",
    "OperationDenied",
    "OperationDenied.AccountIsolated",
    "LimitExceeded",
    "ResourceNotFound.TaskNotFound",
]

RETRYABLE = [
    "RequestLimitExceeded",
    "RequestLimitExceeded.UinLimitExceeded",
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
    "RequestLimitExceeded.IPLimitExceeded",
    "AuthFailure.SignatureExpire",
    "AuthFailure.TokenFailure",
    "InternalError",
    "InternalError.DbError",
    "ClientNetworkError",
    "ServerNetworkError",
    "EmptyResponse",
    "ResourceUnavailable",
    "FailedOperation",
    "SomethingNobodyHasSeen.Yet",
    "",
]


@pytest.mark.parametrize("code", PERMANENT)
def test_permanent_codes_are_not_retried(code: str) -> None:
    assert is_retryable(code) is False
    assert is_retryable(code, room_is_new=False) is False


@pytest.mark.parametrize("code", RETRYABLE)
def test_transient_and_unknown_codes_are_retried(code: str) -> None:
    assert is_retryable(code) is True
    assert is_retryable(code, room_is_new=False) is True


def test_room_not_found_is_retried_only_while_the_room_is_new() -> None:
    assert ROOM_NOT_FOUND == "ResourceNotFound.RoomNotFound"
    assert is_retryable(ROOM_NOT_FOUND, room_is_new=True) is True
    assert is_retryable(ROOM_NOT_FOUND, room_is_new=False) is False
    assert is_retryable(ROOM_NOT_FOUND) is True  # default: a fresh room


def test_task_in_use_is_not_a_permanent_failure() -> None:
    # The recorder adopts the running task; it must not be classed as a hard refusal.
    assert TASK_IN_USE == "ResourceInUse.TaskInUse"
    assert is_retryable(TASK_IN_USE) is True


def test_named_constants_match_gme_codes() -> None:
    assert TASK_NOT_FOUND == "ResourceNotFound.TaskNotFound"
    assert EMPTY_RESPONSE == "EmptyResponse"
    # Our own code for "no rate-limit slot before the deadline": logs, metrics and docs name it.
    assert NO_TIME_LEFT == "NoTimeLeft"
    assert is_retryable(NO_TIME_LEFT) is True


def test_prefix_matching_does_not_swallow_lookalike_codes() -> None:
    # "RequestLimitExceeded" ends with "LimitExceeded" but is a rate limit, not a quota.
    assert is_retryable("RequestLimitExceeded") is True
    assert is_retryable("LimitExceeded.TaskQuota") is False
    # Only the two curable auth failures are retryable, not anything that merely contains them.
    assert is_retryable("AuthFailure.SignatureExpired.Other") is False


def test_gme_error_keeps_code_message_and_request_id() -> None:
    err = GmeError("StartRecord", "InvalidParameterValue.InvalidRoomId", "bad room", "req-1")
    assert (err.action, err.code, err.message, err.request_id) == (
        "StartRecord",
        "InvalidParameterValue.InvalidRoomId",
        "bad room",
        "req-1",
    )
    assert str(err) == "StartRecord failed: InvalidParameterValue.InvalidRoomId: bad room"


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (2, "recording"),
        (10, "waiting to transcode"),
        (11, "transcoding"),
        (12, "uploading"),
        (13, "upload finished"),
        (14, "user notified"),
        (7, "status 7"),
        (None, "status unknown"),
    ],
)
def test_record_stream_status_in_words(status: int | None, text: str) -> None:
    """GME's RecordStatus values of DescribeRecordInfo (research/gme-api.md, 1.5)."""
    stream = RecordStream(user_id="0", file_name=None, begin_time=None, status=status)
    assert stream.status_text() == text


def test_throttled_answers_are_every_request_limit_code_and_only_those() -> None:
    from handler.domain.gme import is_throttled

    for code in ("RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded"):
        assert is_throttled(code) is True
    for code in ("LimitExceeded", "LimitExceeded.TaskQuota", "InternalError", ""):
        assert is_throttled(code) is False
