"""Turn raw inbound payloads (any accepted format) into `RoomEvent`s.

Signature checks happen before this, over the raw bytes; this module only parses. It is shared
by the webhook and the queue worker so both accept exactly the same formats with the same errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from handler.domain import safejson

if TYPE_CHECKING:  # the command models load with the first command (the webhook never does)
    from handler.domain.commands import AnyCommand

from handler.domain.events import (
    BizId,
    EventKind,
    EventSource,
    InboundFormat,
    RoomEvent,
    RoomId,
    Session,
)
from handler.domain.inbound_common import COMMAND_FIELD as COMMAND_FIELD
from handler.domain.inbound_common import IgnoredEvent as IgnoredEvent
from handler.domain.inbound_common import InvalidEvent as InvalidEvent
from handler.domain.inbound_common import JsonInt as JsonInt
from handler.domain.inbound_common import json_int as json_int

MAX_ATTRIBUTES = 64
MAX_ENVELOPE_DEPTH = 3
#: What the published schema promises for `time` (RFC 3339 with a zone); the parser accepts any
#: ISO 8601 date-time that carries a zone.
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: Attribute values are scalars; strings are capped so that a normalised event always fits in
#: one SQS message (256 KiB) whatever MAX_BODY_BYTES allows.
MAX_ATTRIBUTE_CHARS = 1024
BoundedText = Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_CHARS)]


class RoomEventV1(BaseModel):
    """Wire model of the project's own room event, format version 1 (see events/schema)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: Literal[1] = 1
    type: Literal["room.created", "room.closed"]
    id: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]
    time: Annotated[datetime, Field(json_schema_extra={"pattern": RFC3339})]
    biz_id: Annotated[BizId, JsonInt]
    room_id: RoomId
    session: Session
    attributes: dict[
        AttributeKey,
        Annotated[BoundedText | int | float | bool | None, Field(union_mode="left_to_right")],
    ] = Field(default={}, max_length=MAX_ATTRIBUTES)

    def to_room_event(self) -> RoomEvent:
        return RoomEvent(
            kind=EventKind(self.type),
            event_id=self.id,
            biz_id=self.biz_id,
            room_id=self.room_id,
            session=self.session,
            occurred_at=self.time,
            format=InboundFormat.ROOM_EVENT_V1,
            attributes=self.attributes,
        )


#: A TRTC timestamp: a JSON integer in 0 … 2^63-1.
TrtcInt = Annotated[int, Field(ge=0, lt=2**63), JsonInt]
ROOM_PATTERN = r"^[\x21-\x7e]+$"
_ROOM = re.compile(ROOM_PATTERN)


def _trtc_room(value: int | str) -> int | str:
    """One check (and so one field name in the error) for both kinds of room id."""
    if isinstance(value, int):
        if not 0 <= value < 2**63:
            raise ValueError("a numeric RoomId must be in 0 … 2^63-1")
    elif not (len(value) <= 127 and _ROOM.fullmatch(value)):
        raise ValueError("a RoomId must be 1-127 printable ASCII characters, no spaces")
    return value


#: TRTC rooms are numbers (`RoomId`) or text with the rules of every room id (`strRoomId`).
TrtcRoomId = Annotated[
    int | str,
    JsonInt,
    AfterValidator(_trtc_room),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                {"type": "string", "minLength": 1, "maxLength": 127, "pattern": ROOM_PATTERN},
            ]
        }
    ),
]


class TrtcEventInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    RoomId: TrtcRoomId
    EventTs: TrtcInt | None = None
    EventMsTs: TrtcInt | None = None
    UserId: str | Annotated[int, JsonInt] | None = None


class TrtcCallback(BaseModel):
    """TRTC room callback (EventGroupId 1). Only 101 (created) and 102 (dismissed) matter."""

    model_config = ConfigDict(extra="allow")

    EventGroupId: Annotated[int, JsonInt]
    EventType: Annotated[int, JsonInt]
    CallbackTs: TrtcInt
    EventInfo: TrtcEventInfo


TRTC_KINDS = {101: EventKind.ROOM_CREATED, 102: EventKind.ROOM_CLOSED}
#: Our field names mapped back to what a TRTC sender wrote, for error messages.
TRTC_FIELD_NAMES = {"room_id": "RoomId", "session": "EventMsTs", "occurred_at": "EventMsTs"}


def _field_path(error: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in error.get("loc", ())) or "(body)"


def _invalid(
    exc: ValidationError, prefix: str = "", names: Mapping[str, str] | None = None
) -> InvalidEvent:
    first = exc.errors(include_url=False, include_input=False)[0]
    path = _field_path(first)
    field = prefix + (names or {}).get(path, path)
    return InvalidEvent("invalid_field", f"{field}: {first['msg']}", field)


#: Codes of bodies refused before any field is looked at (HTTP 400 rather than 422).
JSON_CODES = frozenset({"invalid_json", "json_too_deep", "json_too_many_members"})


def parse_json(raw: bytes | str) -> Any:
    """Bounded parse (depth, members, strict UTF-8, no duplicate keys, finite numbers only):
    see `safejson`."""
    try:
        return safejson.loads(raw)
    except safejson.JsonRefused as exc:
        raise InvalidEvent(exc.code, exc.message, exc.field) from None


def parse_room_event_v1(doc: Any) -> RoomEvent:
    if not isinstance(doc, dict):
        raise InvalidEvent("invalid_body", "room event must be a JSON object")
    try:
        return RoomEventV1.model_validate(_json_strict(doc)).to_room_event()
    except ValidationError as exc:
        raise _invalid(exc) from None


def _json_strict(doc: dict[str, Any]) -> dict[str, Any]:
    """Strict mode refuses ISO strings for datetimes: parse `time` here, keep the rest strict."""
    value = doc.get("time")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent("invalid_field", "time: not an ISO 8601 date-time", "time") from None
        if parsed.tzinfo is None:
            raise InvalidEvent("invalid_field", "time: must carry a timezone (e.g. Z)", "time")
        return {**doc, "time": parsed}
    return doc


def parse_trtc(doc: Any, sdk_app_id: int | str | None) -> RoomEvent | IgnoredEvent:
    """Normalise a TRTC room callback. The app id comes from the `SdkAppId` header (or queue
    message attribute) because TRTC room callbacks do not carry it in the body."""
    if not isinstance(doc, dict):
        raise InvalidEvent("invalid_body", "TRTC callback must be a JSON object")
    try:
        cb = TrtcCallback.model_validate(doc)
    except ValidationError as exc:
        raise _invalid(exc) from None
    kind = TRTC_KINDS.get(cb.EventType) if cb.EventGroupId == 1 else None
    if kind is None:
        return IgnoredEvent(
            format=InboundFormat.TRTC,
            reason=f"TRTC event {cb.EventGroupId}/{cb.EventType} does not start or stop rooms",
        )
    app_id = _app_id(sdk_app_id)
    info = cb.EventInfo
    # TRTC retries send the same body, so the room's own event time identifies this room's life.
    session_ms = info.EventMsTs or (info.EventTs * 1000 if info.EventTs else None) or cb.CallbackTs
    try:
        return RoomEvent(
            kind=kind,
            event_id=f"trtc:{app_id}:{info.RoomId}:{cb.EventType}:{session_ms}",
            biz_id=app_id,
            room_id=str(info.RoomId),
            session=f"trtc-{session_ms}" if kind is EventKind.ROOM_CREATED else "close",
            occurred_at=datetime.fromtimestamp(session_ms / 1000, tz=UTC),
            format=InboundFormat.TRTC,
            attributes={"trtc_user_id": str(info.UserId)} if info.UserId is not None else {},
        )
    except ValidationError as exc:
        raise _invalid(exc, prefix="EventInfo.", names=TRTC_FIELD_NAMES) from None
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent(
            "invalid_field", "EventInfo.EventMsTs: out of range", "EventInfo"
        ) from None


def _app_id(value: int | str | None) -> int:
    if value is None or value == "":
        raise InvalidEvent("missing_app_id", "TRTC callback needs the SdkAppId header", "SdkAppId")
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise InvalidEvent("invalid_field", "SdkAppId: must be a positive integer", "SdkAppId")
    return int(text)


def parse_normalised(doc: dict[str, Any]) -> RoomEvent:
    """Events the webhook already verified and normalised before enqueueing."""
    try:
        return RoomEvent.model_validate(doc)
    except ValidationError as exc:
        raise _invalid(exc) from None


def unwrap(doc: Any) -> tuple[Any, dict[str, str]]:
    """Peel SNS and EventBridge envelopes; returns the inner document and hints found on the way."""
    hints: dict[str, str] = {}
    for _ in range(MAX_ENVELOPE_DEPTH):
        if isinstance(doc, dict) and doc.get("Type") == "Notification" and "Message" in doc:
            attrs = doc.get("MessageAttributes") or {}
            if isinstance(attrs, dict):
                for name, attr in attrs.items():
                    if isinstance(attr, dict) and isinstance(attr.get("Value"), str):
                        hints[name] = attr["Value"]
            message = doc["Message"]
            doc = parse_json(message) if isinstance(message, str) else message
        elif isinstance(doc, dict) and "detail-type" in doc and "detail" in doc:
            doc = doc["detail"]
        else:
            break
    return doc, hints


def parse_message(
    doc: Any, source: EventSource, sdk_app_id: int | str | None = None
) -> RoomEvent | IgnoredEvent:
    """Parse a queue message (or any inbound document) whatever its format. Lifecycle commands
    are refused here, at every depth of envelope: only `parse_queue_message` accepts them."""
    doc, hints = unwrap(doc)
    if not isinstance(doc, dict):
        raise InvalidEvent("invalid_body", "message body must be a JSON object")
    if is_command(doc):
        raise InvalidEvent(
            "command_not_accepted",
            "lifecycle commands come only from the scheduler over the internal queue",
            COMMAND_FIELD,
        )
    event: RoomEvent | IgnoredEvent
    if "EventGroupId" in doc:
        event = parse_trtc(doc, sdk_app_id or hints.get("SdkAppId"))
    elif "type" in doc and "biz_id" in doc:
        event = parse_room_event_v1(doc)
    elif "kind" in doc and "event_id" in doc and "format" in doc:
        event = parse_normalised(doc)
    elif "TaskID" in doc and "EventType" in doc:
        from handler.domain.callbacks import parse_gme_callback  # only GME callbacks need it

        event = parse_gme_callback(doc)
    else:
        raise InvalidEvent(
            "unknown_format", "body is not a room event v1, TRTC room callback or GME callback"
        )
    return event.with_source(source) if isinstance(event, RoomEvent) else event


def is_command(doc: Any) -> bool:
    return isinstance(doc, dict) and COMMAND_FIELD in doc


def parse_queue_message(
    doc: Any, source: EventSource, sdk_app_id: int | str | None = None
) -> RoomEvent | IgnoredEvent | AnyCommand:
    """The worker's parse: whatever `parse_message` accepts, plus the lifecycle commands the
    scheduler puts on the internal queue (bare, never inside an SNS or EventBridge envelope).
    Only the queue worker calls this; the webhook never does."""
    if not is_command(doc):
        return parse_message(doc, source, sdk_app_id)
    from handler.domain.commands import CommandKind, validate_command

    if doc[COMMAND_FIELD] not in tuple(CommandKind):  # a tuple: the value may be unhashable
        known = ", ".join(CommandKind)
        raise InvalidEvent("unknown_command", f"{COMMAND_FIELD}: not one of {known}", COMMAND_FIELD)
    try:
        return validate_command(doc)
    except ValidationError as exc:
        raise _invalid(exc) from None
