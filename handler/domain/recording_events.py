"""What changed in a session's recording, read off one ledger change (pure).

Every trigger (room events, callbacks, the scheduler's windows, renewals and sweep, operator
commands) changes a session only through the ledger port, and every ledger change notes what
it did in the entry's history. So the facts a customer's backend cares about (a recording
started, failed, stopped, was renewed, has a new file) are derived here from the entry before
and after one change, in one place, whichever path made it. A change that changes nothing (a
duplicate delivery replaying its answer) yields nothing, so a fact is seen once.

Each fact gets an id derived from the fact itself (BizId, RoomId, session, type, task id,
generation, and the file name or error code where one tells two facts apart): however often a
room event is delivered or a notification is sent, the same fact keeps the same id, and a
receiver can deduplicate on it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from handler.domain.ledger import MAX_DURATION_END, HistoryItem, LedgerEntry, LedgerState


class ChangeKind(StrEnum):
    """What one ledger change did; the metric `RecordingOutcome` counts these by rule."""

    STARTED = "started"  # we called StartRecord and GME answered a TaskId
    ADOPTED = "adopted"  # GME already ran a task for the room; it is this session's now
    SKIPPED = "skipped"  # the policy said not to record
    FAILED = "failed"  # GME refused for good
    STOPPED = "stopped"  # the session's task was stopped
    RENEWED = "renewed"  # the session got its next task (renewal, restart, adoption)
    MODIFIED = "modified"  # a changed policy gave the running task a new plan (apply_to_running)
    FILE = "file"  # a GME callback named a new file


class StopReason(StrEnum):
    CLOSE = "close"  # the room closed (room event v1, TRTC dismissal)
    WINDOW_END = "window_end"  # its scheduled window ended
    MAX_DURATION = "max_duration"  # its rule's max_duration passed (a lost close ends here)
    OPERATOR = "operator"  # `python -m handler stop`
    ROOM_GONE = "room_gone"  # the sweep found the room gone (RoomNotFound)
    POLICY = "policy"  # a changed policy now skips the session (apply_to_running)
    OTHER = "other"


#: How each close note begins (its detail is written by the path that closed the session).
_CLOSE_NOTES = (
    ("room closed", StopReason.CLOSE),
    ("TRTC room dismissed", StopReason.CLOSE),
    ("scheduled window ended", StopReason.WINDOW_END),
    (f"{MAX_DURATION_END}:", StopReason.MAX_DURATION),
    ("stopped by an operator", StopReason.OPERATOR),
    ("sweep: room is gone", StopReason.ROOM_GONE),
    ("policy now skips", StopReason.POLICY),  # handler.domain.follow.POLICY_STOP
)
_NEW_TASK_NOTES = {"renew": "renewal", "restart": "restart", "adopt": "adopt"}

EventType = Literal[
    "recording.started",
    "recording.failed",
    "recording.stopped",
    "recording.renewed",
    "recording.modified",
    "recording.file",
]
_EVENT_TYPES: dict[ChangeKind, EventType] = {
    ChangeKind.STARTED: "recording.started",
    ChangeKind.ADOPTED: "recording.started",
    ChangeKind.FAILED: "recording.failed",
    ChangeKind.STOPPED: "recording.stopped",
    ChangeKind.RENEWED: "recording.renewed",
    ChangeKind.MODIFIED: "recording.modified",
    ChangeKind.FILE: "recording.file",
}


class RecordingEvent(BaseModel):
    """Recording event v1: one change of one room session's recording, as published."""

    model_config = ConfigDict(frozen=True, title="RecordingEventV1", defer_build=True)

    version: Literal[1] = 1
    id: str = Field(description="the same for the same fact however often it is sent")
    type: EventType
    time: str = Field(description="when the change happened, RFC 3339 UTC")
    biz_id: int
    room_id: str
    session: str
    task_id: str | None = Field(description="GME TaskId as a decimal string (exceeds 2**53)")
    generation: int = Field(description="0 for the session's first task, +1 per new task")
    rule: str | None
    policy_version: str | None
    reason: str = Field(
        description="started: new | adopted; failed: the GME error code; stopped: close | "
        "window_end | max_duration | operator | room_gone | policy | other; renewed: renewal | "
        "restart | adopt; modified: policy; file: uploaded"
    )
    detail: str = ""
    adopted: bool | None = Field(default=None, description="recording.started only")
    error_code: str | None = Field(default=None, description="recording.failed only")
    previous_task_id: str | None = Field(default=None, description="recording.renewed only")
    file_name: str | None = Field(default=None, description="recording.file only")

    def document(self) -> dict[str, Any]:
        """The event as sent, parsed: every common field (task_id, rule, policy_version may be
        null), the type's own fields only when they apply. JSON types only, so it is what
        `json.loads(body())` gives."""
        doc = self.model_dump(mode="json")
        for name in _TYPE_FIELDS:
            if doc[name] is None:
                del doc[name]
        return doc

    def body(self) -> str:
        """The JSON as sent (`document()`), compact, so every attempt is the same bytes."""
        return encode(self.document())


#: What `json.dumps(doc, separators=(",", ":"), ensure_ascii=False)` builds per call, once.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(document: dict[str, Any]) -> str:
    """A recording event's `document()` as the bytes sent."""
    return _COMPACT.encode(document)


_TYPE_FIELDS = ("adopted", "error_code", "previous_task_id", "file_name")


class RecordingChange(BaseModel):
    """One fact derived from a ledger change, with whether the sweep made it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: ChangeKind
    rule: str
    swept: bool = False
    event: RecordingEvent | None = None


def event_id(*parts: object) -> str:
    """`msg_` + 32 hex digits of SHA-256 over the fact's parts (Standard Webhooks ids are
    opaque strings; the prefix follows its examples)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _added(old: LedgerEntry | None, new: LedgerEntry) -> tuple[HistoryItem, ...]:
    """The notes this change wrote (history keeps its newest within a byte budget and counts
    what it dropped, so the running total tells how many are new)."""
    before = 0 if old is None else old.history_dropped + len(old.history)
    added = new.history_dropped + len(new.history) - before
    return new.history[-added:] if added > 0 else ()


def stop_reason(entry: LedgerEntry) -> StopReason:
    close = next((h.detail for h in reversed(entry.history) if h.what == "close"), "")
    return next((r for prefix, r in _CLOSE_NOTES if close.startswith(prefix)), StopReason.OTHER)


def _had_task(entry: LedgerEntry | None) -> bool:
    return entry is not None and (
        entry.task_id is not None or any(h.task_id for h in entry.history)
    )


def _previous_task(entry: LedgerEntry | None) -> str | None:
    if entry is None:
        return None
    if entry.task_id is not None:
        return entry.task_id
    return next((h.task_id for h in reversed(entry.history) if h.task_id), None)


def changes(old: LedgerEntry | None, new: LedgerEntry) -> list[RecordingChange]:
    """The facts one ledger change made true, in the order they happened."""
    out: list[RecordingChange] = []
    rule = new.rule or "none"
    for item in _added(old, new):
        swept = item.detail.startswith("sweep")
        kind, extra = _classify(old, new, item)
        if kind is None:
            continue
        event = None if kind is ChangeKind.SKIPPED else _event(new, item, kind, extra)
        out.append(RecordingChange(kind=kind, rule=rule, swept=swept, event=event))
    old_files = set(old.files) if old is not None else set()
    note = new.history[-1] if new.history else None
    for name in (f for f in new.files if f not in old_files):
        event = _event(new, note, ChangeKind.FILE, {"file_name": name, "reason": "uploaded"})
        out.append(RecordingChange(kind=ChangeKind.FILE, rule=rule, event=event))
    return out


def _classify(
    old: LedgerEntry | None, new: LedgerEntry, item: HistoryItem
) -> tuple[ChangeKind | None, dict[str, object]]:
    what = item.what
    if what in ("decision: skip", "skipped") and new.state is LedgerState.SKIPPED:
        return ChangeKind.SKIPPED, {}
    if what in ("started", "adopted") and item.task_id:
        return _first_task(adopted=what == "adopted")
    if what == "failed":
        code = item.detail.split(":", 1)[0]
        return ChangeKind.FAILED, {"error_code": code, "reason": code}
    if what == "modify" and item.task_id:
        return ChangeKind.MODIFIED, {"reason": "policy"}
    if what == "stop" and item.task_id:
        return ChangeKind.STOPPED, {"reason": stop_reason(new).value}
    if what in _NEW_TASK_NOTES and item.task_id:
        if not _had_task(old):  # the session's first task, started late by the sweep
            return _first_task(adopted=what == "adopt")
        return ChangeKind.RENEWED, {
            "reason": _NEW_TASK_NOTES[what],
            "previous_task_id": _previous_task(old),
        }
    return None, {}


def _first_task(adopted: bool) -> tuple[ChangeKind, dict[str, object]]:
    if adopted:
        return ChangeKind.ADOPTED, {"adopted": True, "reason": "adopted"}
    return ChangeKind.STARTED, {"adopted": False, "reason": "new"}


def _event(
    entry: LedgerEntry, item: HistoryItem | None, kind: ChangeKind, extra: dict[str, object]
) -> RecordingEvent:
    etype = _EVENT_TYPES[kind]
    task_id = (item.task_id if item is not None else None) or entry.task_id
    at = item.at if item is not None else entry.updated_at
    tell_apart = extra.get("file_name") or extra.get("error_code") or ""
    if kind is ChangeKind.MODIFIED:  # one task may be modified by each policy version
        tell_apart = entry.policy_version or ""
    fields: dict[str, object] = {
        "id": event_id(
            entry.biz_id, entry.room_id, entry.session, etype, task_id, entry.generation, tell_apart
        ),
        "type": etype,
        "time": datetime.fromtimestamp(at, tz=UTC).isoformat().replace("+00:00", "Z"),
        "biz_id": entry.biz_id,
        "room_id": entry.room_id,
        "session": entry.session,
        "task_id": task_id,
        "generation": entry.generation,
        "rule": entry.rule,
        "policy_version": entry.policy_version,
        "detail": item.detail if item is not None else "",
        **extra,
    }
    return RecordingEvent.model_validate(fields)
