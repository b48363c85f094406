"""GME recording callbacks (EventType 1 started, 2 finished, 3 uploaded) as a domain model.

They are best effort (GME may lose, repeat or reorder them), so they never start, stop or
decide anything: they only add file names and segment numbers to the ledger. The model
subclasses `IgnoredEvent` so every caller that does not care (the webhook, the worker) keeps
treating it as "valid, no room action", and only the service reads the extra fields.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handler.domain.events import InboundFormat
from handler.domain.inbound_common import IgnoredEvent, InvalidEvent, JsonInt
from handler.domain.ledger import CallbackNote

EVENT_NAMES = {1: "recording started", 2: "recording finished", 3: "file uploaded"}


class GmeCallbackDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    SeqNo: Annotated[int, Field(ge=0, lt=2**63), JsonInt] = 0
    FileName: str | None = Field(default=None, max_length=1024)


class GmeCallbackBody(BaseModel):
    """The wire model (also the published request schema of the callback route)."""

    model_config = ConfigDict(extra="ignore", defer_build=True, title="GmeRecordingCallback")

    BizID: Annotated[int, Field(gt=0, lt=2**63), JsonInt]
    RoomID: str = Field(min_length=1, max_length=127)
    UserID: str | Annotated[int, JsonInt] | None = None
    TaskID: Annotated[int, Field(gt=0, lt=2**64), JsonInt]
    EventType: Annotated[int, Field(ge=1, le=3), JsonInt]
    #: Required by the webhook (its freshness check, ±300 s); optional on the queue.
    Timestamp: Annotated[int, JsonInt] | None = None
    Detail: GmeCallbackDetail = Field(default_factory=GmeCallbackDetail)


class RecordingCallback(IgnoredEvent):
    """A parsed GME recording callback; TaskID kept as a string (it exceeds 2**53)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    biz_id: int
    room_id: str
    task_id: str
    event_type: int
    seq: int
    file_name: str | None = None

    def note(self) -> CallbackNote:
        files = (self.file_name,) if self.file_name else ()
        return CallbackNote(
            task_id=self.task_id, event_type=self.event_type, seq=self.seq, files=files
        )


def parse_gme_callback(doc: dict[str, Any]) -> RecordingCallback:
    try:
        wire = GmeCallbackBody.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidEvent("invalid_field", f"{where}: {first['msg']}", where) from None
    return RecordingCallback(
        format=InboundFormat.GME_RECORDING,
        reason=f"GME {EVENT_NAMES[wire.EventType]} callback: noted in the ledger only",
        biz_id=wire.BizID,
        room_id=wire.RoomID,
        task_id=str(wire.TaskID),
        event_type=wire.EventType,
        seq=wire.Detail.SeqNo,
        file_name=wire.Detail.FileName,
    )
