"""The recording ledger: one entry per room session, and the pure rules that move it.

The idempotency store answers "was this delivery handled?"; the ledger answers "what should be
recording right now, and what is?". The service, the scheduler and the operator commands read
and change it through the small `Ledger` port; every change is a pure function from the old
entry to the new one, applied atomically by the adapter (a transaction in SQLite, a conditional
write in DynamoDB), so two triggers racing on one session (a close overtaking a start) always
see each other's write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from handler.domain.decision import RecordMode, RecordPlan
from handler.domain.durations import format_duration
from handler.domain.events import EventSource, InboundFormat, RoomEvent, Scalar

#: GME ends every recording task 24 hours after it started.
GME_TASK_CAP_SECONDS = 24 * 3600
#: DynamoDB refuses an item over 400 KB, and every later write of it would fail. An entry is
#: bounded in bytes whatever GME or a caller sends: each growing part has a UTF-8 budget (as
#: DynamoDB counts a string), keeps its newest elements and counts what it dropped. The parts
#: plus the fixed fields stay under `MAX_ENTRY_BYTES` (a test sends the worst case).
MAX_ENTRY_BYTES = 64 * 1024
HISTORY_BYTES = 24 * 1024
FILES_BYTES = 16 * 1024
CALLBACK_KEYS_BYTES = 8 * 1024
#: The room event's attributes kept for deciding the session again (`DecidedOn`).
ATTRIBUTES_BYTES = 8 * 1024
#: `end_reason` of an entry whose `ends_at` is its policy's `max_duration`, not a window's end.
MAX_DURATION_END = "max_duration"
#: One history line's detail, and the last error kept (GME messages, file lists).
MAX_TEXT_BYTES = 512
#: What `json.dumps(value, ensure_ascii=False)` builds on every call, built once (stateless).
_JSON = json.JSONEncoder(ensure_ascii=False)


class LedgerState(StrEnum):
    STARTING = "starting"  # decided to record; StartRecord not (yet) confirmed
    RECORDING = "recording"  # a GME task runs for this session (as far as we know)
    STOPPING = "stopping"  # closed or ended; StopRecord not yet confirmed
    STOPPED = "stopped"  # nothing runs for this session, and nothing should
    FAILED = "failed"  # GME refused; `retryable` says whether the sweep tries again
    SKIPPED = "skipped"  # the policy said not to record


#: States in which the session should have a running task: the sweep and renewal look at these.
OPEN_STATES = (LedgerState.STARTING, LedgerState.RECORDING, LedgerState.STOPPING)
#: The states a `max_concurrent` cap counts: a recording starting or running.
COUNTED_STATES = (LedgerState.STARTING, LedgerState.RECORDING)


class HistoryItem(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    at: float
    what: str  # event, decision, start, adopt, stop, renew, restart, callback, sweep, error
    detail: str = ""
    task_id: str | None = None


class DecidedOn(BaseModel):
    """What the policy decided a session on, kept so that a changed policy can decide it again
    (`apply_to_running`): the room event's time, trigger, format and attributes. Attributes
    over `ATTRIBUTES_BYTES` are not kept (None): such a session keeps the plan it started with."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    occurred_at: float
    source: EventSource
    format: InboundFormat
    attributes: dict[str, Scalar] | None = None

    @classmethod
    def of(cls, event: RoomEvent) -> DecidedOn:
        attributes: dict[str, Scalar] | None = dict(event.attributes)
        if utf8_bytes(_JSON.encode(attributes)) > ATTRIBUTES_BYTES:
            attributes = None
        return cls(
            occurred_at=event.occurred_at.timestamp(),
            source=event.source,
            format=event.format,
            attributes=attributes,
        )


class LedgerEntry(BaseModel):
    """Everything known about one room session's recording. TaskIds are strings (> 2**53)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    biz_id: int
    room_id: str
    session: str
    state: LedgerState
    task_id: str | None = None
    #: Renewals and restarts so far; the next task's idempotency key uses generation + 1.
    generation: int = 0
    record_mode: RecordMode | None = None
    allow_user_ids: tuple[str, ...] = ()
    block_user_ids: tuple[str, ...] = ()
    rule: str | None = None
    policy_version: str | None = None
    #: The event the policy decided on (None: a schedule's claim, or an entry from before).
    decided_on: DecidedOn | None = None
    created_at: float
    updated_at: float
    task_started_at: float | None = None
    #: When the scheduler ends the session: its scheduled window's end, or the policy's
    #: `max_duration` after the session began if that comes first (None: when the room closes).
    ends_at: float | None = None
    #: Why `ends_at` is set: None for a scheduled window, `max_duration` for the policy's limit.
    end_reason: str | None = None
    #: Set once the room session closed (or its window ended): nothing may record it after.
    closed_at: float | None = None
    stopped_at: float | None = None
    checked_at: float = 0.0
    last_error: str | None = None
    retryable: bool = False
    #: When the last retryable start failure happened: the sweep waits before retrying it.
    failed_at: float | None = None
    files: tuple[str, ...] = ()
    callback_keys: tuple[str, ...] = ()
    history: tuple[HistoryItem, ...] = ()
    #: How many of each were dropped to keep the entry within its byte budget (oldest first).
    files_dropped: int = 0
    callback_keys_dropped: int = 0
    history_dropped: int = 0

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.biz_id, self.room_id, self.session)

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def in_window(self) -> bool:
        """A scheduled window's session, whose room may still fill up before `ends_at`."""
        return self.ends_at is not None and self.end_reason is None

    def end_detail(self) -> str:
        """Why the scheduler ends this session at `ends_at`, for its history and logs."""
        if self.end_reason == MAX_DURATION_END and self.ends_at is not None:
            limit = format_duration(round(self.ends_at - self.created_at))
            return f"{MAX_DURATION_END}: {limit} since the session began (rule {self.rule!r})"
        return "scheduled window ended"

    @property
    def plan(self) -> RecordPlan:
        return RecordPlan(
            record_mode=self.record_mode or RecordMode.MIXED,
            allow_user_ids=self.allow_user_ids,
            block_user_ids=self.block_user_ids,
        )

    def task_session(self, generation: int | None = None) -> str:
        """The idempotency session of this entry's task of `generation` (default: the current
        one): generation 0 is the session itself (so it shares the key with the room event),
        later ones are `session#gN`."""
        n = self.generation if generation is None else generation
        return self.session if n == 0 else f"{self.session}#g{n}"

    def noted(
        self, at: float, what: str, detail: str = "", task_id: str | None = None
    ) -> LedgerEntry:
        item = HistoryItem(at=at, what=what, detail=clip(detail), task_id=task_id)
        history, dropped = newest_within((*self.history, item), HISTORY_BYTES, _history_bytes)
        return self.model_copy(
            update={
                "history": history,
                "history_dropped": self.history_dropped + dropped,
                "updated_at": at,
            }
        )

    def changed(self, at: float, **fields: object) -> LedgerEntry:
        return self.model_copy(update={**fields, "updated_at": at})


Change = Callable[[LedgerEntry | None], LedgerEntry | None]


T = TypeVar("T")


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def clip(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes on a character boundary, marked when cut."""
    if utf8_bytes(text) <= limit:
        return text
    cut = text.encode("utf-8", "surrogatepass")[: limit - 3].decode("utf-8", "ignore")
    return cut + "\u2026"


def newest_within(
    items: tuple[T, ...], budget: int, size: Callable[[T], int]
) -> tuple[tuple[T, ...], int]:
    """The newest (last) items whose sizes add up to at most `budget`, and how many were
    dropped. An item alone over the budget is dropped too: a budget is never exceeded."""
    kept: list[T] = []
    used = 0
    for item in reversed(items):
        used += size(item)
        if used > budget:
            break
        kept.append(item)
    return tuple(reversed(kept)), len(items) - len(kept)


def json_string_bytes(text: str) -> int:
    """What one string adds to the entry's JSON document: its encoded bytes (quotes and
    escapes included) and a comma."""
    return utf8_bytes(_JSON.encode(text)) + 1


def _history_bytes(item: HistoryItem) -> int:
    # Field names, the float and the task id: under 80 bytes besides `what` and `detail`.
    return 80 + json_string_bytes(item.what) + json_string_bytes(item.detail)


class SessionRef(BaseModel):
    """Where a session's entry is, as an index answers: enough to choose one, then `get` or
    `update` it (the index may lag the entry by a moment; the entry itself is the truth)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    biz_id: int
    room_id: str
    session: str
    created_at: float = 0.0
    closed: bool = False

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.biz_id, self.room_id, self.session)


class Ledger(Protocol):
    """The port. `update` applies `change` atomically to the current entry (None when absent);
    returning None leaves the entry as it was. It returns the entry as stored afterwards.

    Every query is bounded: what an event needs (a room's open sessions, a task's owner, the
    newest tombstone) costs the same however many sessions the room id had."""

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None: ...

    def update(
        self, biz_id: int, room_id: str, session: str, change: Change
    ) -> LedgerEntry | None: ...

    def by_room(self, biz_id: int, room_id: str, limit: int = 100) -> list[LedgerEntry]:
        """Up to `limit` of the room's entries, oldest first (the operator's view)."""
        ...

    def newest_session(self, biz_id: int, room_id: str, prefix: str) -> LedgerEntry | None:
        """The room's entry with the greatest session name starting with `prefix` (read
        consistently): the newest of a kind whose names sort by time, like TRTC tombstones."""
        ...

    def open_sessions(self, biz_id: int, room_id: str, limit: int = 20) -> list[SessionRef]:
        """The room's sessions neither closed nor skipped, newest first."""
        ...

    def task_sessions(self, biz_id: int, task_id: str, limit: int = 10) -> list[SessionRef]:
        """The sessions whose current task is `task_id`, newest first."""
        ...

    def by_state(
        self, state: LedgerState | None = None, limit: int = 1000
    ) -> list[LedgerEntry]: ...

    def count_open(self, rule: str) -> int:
        """How many of the rule's sessions are starting or recording (`max_concurrent` caps).
        Reads only that rule's open entries, so its cost follows the cap, not the fleet."""
        ...

    def rule_page(
        self, rule: str, limit: int, after: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        """Up to `limit` of the rule's starting or recording entries (the index `count_open`
        reads), in a stable order from the opaque cursor `after`, and the cursor of the next
        page (None: that was the last). Plans that follow the policy page through these."""
        ...

    def nearing_cap(self, started_before: float, limit: int) -> list[LedgerEntry]:
        """Recording entries whose current task started before `started_before`."""
        ...

    def ending(self, now: float, limit: int) -> list[LedgerEntry]:
        """Open entries whose scheduled window ended at or before `now`."""
        ...

    def due_for_check(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        """Open or retryably failed entries, least recently checked first (the sweep's queue).
        Permanent failures are not in it at all, so they never hold up the retryable ones."""
        ...

    def purge_expired(self, now: float) -> int:
        """Delete entries past their TTL (DynamoDB does this itself and returns 0)."""
        ...


def new_entry(
    biz_id: int, room_id: str, session: str, state: LedgerState, at: float, **fields: object
) -> LedgerEntry:
    return LedgerEntry.model_validate(
        {
            "biz_id": biz_id,
            "room_id": room_id,
            "session": session,
            "state": state,
            "created_at": at,
            "updated_at": at,
            **fields,
        }
    )


def is_open(entry: LedgerEntry) -> bool:
    """Whether a room close may still end this session (what `open_sessions` lists)."""
    return not entry.closed and entry.state is not LedgerState.SKIPPED


def sweepable(entry: LedgerEntry) -> bool:
    """Whether the sweep should look at this entry (mirrors the adapters' `due_for_check`)."""
    return entry.state in OPEN_STATES or (entry.state is LedgerState.FAILED and entry.retryable)


class CallbackNote(BaseModel):
    """What a GME recording callback adds to an entry (never required for correctness)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    task_id: str
    event_type: int
    seq: int = 0
    files: tuple[str, ...] = ()

    @property
    def dedup_key(self) -> str:
        return f"{self.task_id}:{self.event_type}:{self.seq}"
