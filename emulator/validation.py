"""Parameter checks for the GME recording APIs, with the error codes the real service returns.

The emulator is strict on purpose: the code under test must learn here, not in production, that a
``TaskId`` turned into a float, a ``BizId`` went out as a string or a user id list holds numbers.
The split follows API 3.0 habits: a value of the wrong JSON type is ``InvalidParameter``; a value
of the right type outside its range gets the API's specific ``InvalidParameterValue.*`` code.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_UINT64 = 2**64 - 1
MAX_ROOM_ID_LENGTH = 127
MAX_LIST_LENGTH = 20
RECORD_MODES = (1, 2, 3)

INVALID_LISTS = "InvalidParameterValue.InvalidSubscribeRecordUserIds"
TOO_MANY_ALLOWED = "InvalidParameterValue.InvalidSubscribeUserIds"
# Capital "UN" is how the service spells it; clients match on the exact string.
TOO_MANY_BLOCKED = "InvalidParameterValue.InvalidUNSubscribeUserIds"

_LIST_KEYS = frozenset({"SubscribeUserIds", "UnSubscribeUserIds"})


class ApiError(Exception):
    """An API 3.0 error answer: ``Response.Error.Code`` and ``Message``.

    Messages must never contain secrets; they are sent to whoever asked.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _is_int(value: object) -> bool:
    # JSON true/false arrive as bool, which is an int subclass; the service rejects them.
    return isinstance(value, int) and not isinstance(value, bool)


def reject_unknown(params: Mapping[str, object], allowed: frozenset[str]) -> None:
    """API 3.0 answers UnknownParameter for undeclared fields; typos like ``RoomID`` show up."""
    for name in params:
        if name not in allowed:
            raise ApiError("UnknownParameter", f"The parameter `{name}` is not recognized.")


def required(params: Mapping[str, object], name: str) -> object:
    """The value of a required field; JSON null counts as missing, as the SDK omits None."""
    value = params.get(name)
    if value is None:
        raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
    return value


def _wrong_type(name: str, expected: str, value: object) -> ApiError:
    return ApiError(
        "InvalidParameter",
        f"The value type of parameter `{name}` is wrong: expected {expected}, "
        f"got {type(value).__name__}.",
    )


def _required_int(params: Mapping[str, object], name: str) -> int:
    value = required(params, name)
    if not _is_int(value):
        raise _wrong_type(name, "an integer", value)
    assert isinstance(value, int)
    return value


def positive_int(params: Mapping[str, object], name: str, invalid_code: str) -> int:
    """A required unsigned 64-bit id (BizId, TaskId) greater than zero."""
    value = _required_int(params, name)
    if not 0 < value <= MAX_UINT64:
        raise ApiError(invalid_code, f"`{name}` must be a positive 64-bit integer, got {value}.")
    return value


def room_id(params: Mapping[str, object]) -> str:
    """A required, non-empty string room id of at most 127 characters."""
    value = required(params, "RoomId")
    if not isinstance(value, str):
        raise _wrong_type("RoomId", "a string", value)
    if not value or len(value) > MAX_ROOM_ID_LENGTH:
        raise ApiError(
            "InvalidParameterValue.InvalidRoomId",
            f"`RoomId` must be 1 to {MAX_ROOM_ID_LENGTH} characters long, got {len(value)}.",
        )
    return value


def record_mode(params: Mapping[str, object]) -> int:
    """A required RecordMode: 1 single stream, 2 mixed stream, 3 both."""
    value = _required_int(params, "RecordMode")
    if value not in RECORD_MODES:
        raise ApiError(
            "InvalidParameterValue.InvalidRecordMode",
            f"`RecordMode` must be 1 (single), 2 (mixed) or 3 (both), got {value}.",
        )
    return value


def _user_ids(lists: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = lists.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ApiError(INVALID_LISTS, f"`SubscribeRecordUserIds.{key}` must be a list of strings.")
    return tuple(value)


def subscribe_lists(params: Mapping[str, object]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The optional allow/block lists, or None when the field is absent (record everyone).

    An empty object, which the SDK sends for a ``SubscribeRecordUserIds()`` with nothing set,
    means the same as absent. Only one of the two lists may be non-empty, each at most 20 ids.
    """
    raw = params.get("SubscribeRecordUserIds")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ApiError(INVALID_LISTS, "`SubscribeRecordUserIds` must be an object.")
    unknown = sorted(set(raw) - _LIST_KEYS)
    if unknown:
        raise ApiError(
            INVALID_LISTS,
            f"`SubscribeRecordUserIds` has unknown field(s) {', '.join(unknown)}; "
            "expected SubscribeUserIds or UnSubscribeUserIds.",
        )
    allowed = _user_ids(raw, "SubscribeUserIds")
    blocked = _user_ids(raw, "UnSubscribeUserIds")
    if allowed and blocked:
        raise ApiError(
            INVALID_LISTS, "Set only one of SubscribeUserIds and UnSubscribeUserIds, not both."
        )
    if len(allowed) > MAX_LIST_LENGTH:
        raise ApiError(
            TOO_MANY_ALLOWED,
            f"SubscribeUserIds holds {len(allowed)} ids; at most {MAX_LIST_LENGTH} are allowed.",
        )
    if len(blocked) > MAX_LIST_LENGTH:
        raise ApiError(
            TOO_MANY_BLOCKED,
            f"UnSubscribeUserIds holds {len(blocked)} ids; at most {MAX_LIST_LENGTH} are allowed.",
        )
    return allowed, blocked
