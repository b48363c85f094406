"""Carry out one lifecycle command: start or end a window, renew a task, check a session.

A worker runs these for the commands it takes off the record queue; the scheduler runs the same
functions in-process when there is no queue (local inline mode). Every GME call goes through
the app's GME gateway, so the fleet-wide pace applies whoever runs the step, and every start goes
through the recorder's idempotent function under the session's own key (generation 0 is the
window's or room's session, later generations `session#gN`), the key space room events use.

Each step first reads the entry and returns a `*_stale` result, without any GME call, when the
command no longer applies: a unit delivered twice, or overtaken by a room event or by another
copy of itself, changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from handler.domain.commands import AnyCommand, CommandKind, EndWindow, Follow, Renew, StartWindow
from handler.domain.decision import Decision
from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from handler.domain.gme import GmeError
from handler.domain.ledger import Ledger, LedgerEntry, LedgerState
from handler.domain.ledger_rules import (
    after_outcome,
    closing,
    new_task,
    start_retry_later,
    task_lost,
)
from handler.domain.outcome import Outcome, OutcomeStatus, StartCommand
from handler.domain.retry import RetryLater
from handler.service_layer.lifecycle.settings import LifecycleSettings
from handler.service_layer.recorder import Recorder
from handler.service_layer.service import RecordingService

if TYPE_CHECKING:
    from handler.domain.policy import Policy


class StepResult(BaseModel):
    """What one command did; `result` is the counter the scheduler's tick report adds up."""

    model_config = ConfigDict(frozen=True)

    command: CommandKind
    biz_id: int
    room_id: str
    session: str
    result: str
    task_id: str | None = None


class LifecycleSteps:
    def __init__(
        self,
        service: RecordingService,
        recorder: Callable[[], Recorder],
        ledger: Ledger,
        settings: LifecycleSettings,
        policy: Callable[[], Policy],
    ) -> None:
        self.service = service
        self._recorder = recorder  # a factory: built on the first step that calls GME
        self.ledger = ledger
        self.settings = settings
        self._policy = policy  # the policy in force, for `session.follow` units

    @property
    def recorder(self) -> Recorder:
        return self._recorder()

    def run(self, command: AnyCommand) -> StepResult:
        """Carry out one command. A GME refusal escapes as `RetryLater`: the queue delivers the
        command again (and, once its tries are spent, the sweep still heals the session)."""
        try:
            if isinstance(command, StartWindow):
                result, task_id = self.start_window(command)
            elif isinstance(command, EndWindow):
                result, task_id = self.end_window(command)
            elif isinstance(command, Renew):
                result, task_id = self.renew(command)
            elif isinstance(command, Follow):
                result, task_id = self.follow(command)
            else:
                from handler.service_layer.lifecycle.sweep import check

                result, task_id = check(self, command)
        except GmeError as exc:
            raise RetryLater(exc.code, f"{exc.action}: {exc.message}") from None
        return StepResult(
            command=command.lifecycle_command,
            biz_id=command.biz_id,
            room_id=command.room_id,
            session=command.session,
            result=result,
            task_id=task_id,
        )

    # ---------------------------------------------------------------- windows

    def start_window(self, cmd: StartWindow) -> tuple[str, str | None]:
        known = self.ledger.get(*cmd.key)
        if known is not None and not _startable(known):
            return "window_stale", known.task_id  # started, or closed, already
        event = RoomEvent(
            kind=EventKind.ROOM_CREATED,
            event_id=f"schedule:{cmd.schedule}:{cmd.session}",
            biz_id=cmd.biz_id,
            room_id=cmd.room_id,
            session=cmd.session,
            occurred_at=datetime.fromtimestamp(cmd.at, tz=UTC),
            format=InboundFormat.SCHEDULE,
            source=EventSource.SCHEDULE,
            attributes={"schedule": cmd.schedule},
        )
        outcome = self.service.start(event, cmd.decision, cmd.ends_at, cmd.at)
        return f"window_{outcome.status.value}", outcome.task_id

    def end_window(self, cmd: EndWindow) -> tuple[str, str | None]:
        """A window's end, or a session's `max_duration` (both are the entry's `ends_at`)."""
        entry = self.ledger.get(*cmd.key)
        if entry is not None and not entry.closed:  # the planner usually closed it already
            why = entry.end_detail()
            entry = self.ledger.update(*cmd.key, closing(*cmd.key, cmd.at, why)) or entry
        if entry is None or entry.state is not LedgerState.STOPPING:
            return "window_end_stale", None
        outcome = self.service.stop_entry(entry, entry.end_detail(), cmd.at)
        return "windows_ended" if entry.in_window else "max_duration_ended", outcome.task_id

    # ------------------------------------------------------------ following

    def follow(self, cmd: Follow) -> tuple[str, str | None]:
        """Bring a running session to a changed policy
        (`handler.service_layer.lifecycle.follow`)."""
        from handler.service_layer.lifecycle.follow import follow

        return follow(self, cmd, self._policy())

    # ---------------------------------------------------------------- renewal

    def renew(self, cmd: Renew) -> tuple[str, str | None]:
        """Stop-then-start: GME allows one task per room, so the new task cannot overlap the old;
        the gap is two API calls. A renewal interrupted after its stop is finished by the
        command's next delivery (the entry is then one generation on, with no task)."""
        entry = self.ledger.get(*cmd.key)
        if entry is None or entry.closed:
            return "renew_stale", None
        if entry.generation == cmd.generation and entry.task_id == cmd.task_id:
            if entry.state is not LedgerState.RECORDING:
                return "renew_stale", entry.task_id
            self.recorder.stop_task(entry.biz_id, cmd.task_id)
            detail = "renewal: old task stopped before the cap"
            lost = self.ledger.update(*cmd.key, task_lost(cmd.generation + 1, cmd.at, detail))
            if lost is None or lost.state is not LedgerState.STARTING:
                return "renew_stale", None
            entry = lost
        elif not (entry.generation == cmd.generation + 1 and _startable(entry)):
            return "renew_stale", entry.task_id  # renewed (or restarted) already
        outcome = self.start_next(entry, cmd.at, "renew", "renewed before GME's 24-hour cap")
        if outcome.status in (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED):
            return "renewed", outcome.task_id
        return f"renew_{outcome.status.value}", None  # the old task is stopped; no new one

    # ------------------------------------------------------------ new tasks

    def start_next(self, entry: LedgerEntry, now: float, what: str, detail: str) -> Outcome:
        """Start (or adopt) the entry's task under the key of its current generation. A stored
        answer for that key whose task is gone is stale: move to the next generation once."""
        outcome = self._ensure(entry, entry.generation, now)
        generation = entry.generation
        if outcome.duplicate and outcome.status in (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED):
            generation += 1
            outcome = self._ensure(entry, generation, now)
        if outcome.status in (OutcomeStatus.STARTED, OutcomeStatus.ADOPTED) and outcome.task_id:
            updated = self.ledger.update(
                *entry.key, new_task(outcome, generation, now, what, detail)
            )
            if updated is not None and updated.state is LedgerState.STOPPING:
                self.service.stop_entry(updated, "room closed while its task was renewed", now)
        else:
            self.ledger.update(*entry.key, after_outcome(outcome, now))
        return outcome

    def _ensure(self, entry: LedgerEntry, generation: int, now: float) -> Outcome:
        session = entry.task_session(generation)
        command = StartCommand(
            biz_id=entry.biz_id,
            room_id=entry.room_id,
            session=session,
            event_id=f"lifecycle:{session}",
            occurred_at=datetime.fromtimestamp(now, tz=UTC),
            decision=Decision(
                record=True,
                rule=entry.rule or "ledger",
                reason="continue the session's recording",
                policy_version=entry.policy_version or "ledger",
                plan=entry.plan,
            ),
        )
        try:
            return self.recorder.ensure(command)
        except RetryLater as exc:
            self.ledger.update(*entry.key, start_retry_later(exc.code, exc.message, now))
            raise


def _startable(entry: LedgerEntry) -> bool:
    """No task yet and none wanted elsewhere: starting, or a start that failed retryably."""
    if entry.closed:
        return False
    return entry.state is LedgerState.STARTING or (
        entry.state is LedgerState.FAILED and entry.retryable
    )
