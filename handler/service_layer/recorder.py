"""Use case: make sure the room session the policy wants recorded has exactly one GME task.

The whole check-then-start runs inside a Powertools idempotent function keyed on
(biz_id, room_id, session), shared by every trigger, so duplicate deliveries by webhook, queue
or schedule replay the stored outcome instead of calling GME again. Inside, a new room costs
one GME call: StartRecord. GME itself refuses a second task for a room that already has one
(``ResourceInUse.TaskInUse``), so a task started by a crashed earlier attempt, a lost answer or
another party is then read back with DescribeTaskInfo and adopted, never doubled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

from handler.domain.decision import RecordPlan
from handler.domain.gme import (
    TASK_IN_USE,
    TASK_NOT_FOUND,
    GmeError,
    GmeGateway,
    RunningTask,
    is_retryable,
)
from handler.domain.outcome import Outcome, OutcomeStatus, StartCommand
from handler.domain.retry import RetryLater

#: Stable, so renaming or moving code never resets the key space (Powertools' default would).
KEY_PREFIX = "gme-autorecord.ensure-recording"
KEY_FIELDS = "[biz_id, room_id, session]"


class Recorder:
    def __init__(
        self,
        gme: GmeGateway,
        store: BasePersistenceLayer,
        expiry_seconds: int,
        room_not_found_grace_seconds: int = 120,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._gme = gme
        self._store = store
        self._grace = room_not_found_grace_seconds
        self._clock = clock
        self.config = IdempotencyConfig(
            event_key_jmespath=KEY_FIELDS,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expiry_seconds,
            response_hook=_mark_duplicate,
        )
        # The payload Powertools hashes (and deep-copies first) is the key's three fields alone:
        # the command itself, decision and all, rides along as a plain argument. The key is
        # the same as hashing the whole command through KEY_FIELDS.
        self._ensure = idempotent_function(
            data_keyword_argument="key",
            persistence_store=store,
            config=self.config,
            key_prefix=KEY_PREFIX,
            output_serializer=PydanticSerializer(Outcome),
        )(self._ensure_recording)
        # Now, while one thread builds it: Powertools configures a layer on first use and marks
        # it configured before compiling the key, so the first calls of a batch, side by side,
        # would find it half done (no key expression, the record failed).
        store.configure(self.config, key_prefix=KEY_PREFIX)

    def register_context(self, context: Any) -> None:
        """Ties the in-progress lock to the Lambda's remaining time, so a crash frees it."""
        self.config.register_lambda_context(context)

    def ensure(self, command: StartCommand) -> Outcome:
        outcome: Outcome = self._ensure(key=_key(command), command=command)
        return outcome

    def forget_failure(self, biz_id: int, room_id: str, session: str) -> bool:
        """Delete a stored permanent failure for this key, so a replayed event (after the fix
        an operator made) calls GME again. Any other stored outcome is kept. Returns whether
        one was deleted."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyItemNotFoundError,
        )

        data = {"biz_id": biz_id, "room_id": room_id, "session": session}
        try:
            record = self._store.get_record(data)
        except IdempotencyItemNotFoundError:
            return False
        stored = record.response_json_as_dict() if record is not None else None
        if not isinstance(stored, dict) or stored.get("status") != OutcomeStatus.FAILED.value:
            return False
        self._store.delete_record(data, RuntimeError("operator replay"))
        return True

    def stop_task(self, biz_id: int, task_id: str) -> bool:
        """Stop one known task. Returns False when GME no longer had it (already stopped)."""
        return _task_found(lambda: self._gme.stop_record(biz_id, task_id))

    def modify_task(self, biz_id: int, task_id: str, plan: RecordPlan) -> bool:
        """Bring a running task to `plan` (ModifyRecordInfo). Returns False when GME no longer
        had it. Safe to repeat: the same plan twice is the same task state."""
        return _task_found(lambda: self._gme.modify_record(biz_id, task_id, plan))

    def running_task(self, biz_id: int, room_id: str) -> RunningTask | None:
        """What GME runs in the room now (DescribeTaskInfo); for the close path and the sweep."""
        return self._gme.describe_task(biz_id, room_id)

    def _ensure_recording(self, key: dict[str, Any], command: StartCommand) -> Outcome:
        decision = command.decision
        base = _base(command)
        if not decision.record or decision.plan is None:
            return Outcome(status=OutcomeStatus.SKIPPED, reason=decision.reason, **base)
        try:
            return self._start_once(command, base)
        except GmeError as exc:
            if self._retryable(command, exc.code):
                # Escaping the idempotent function deletes the record, so a retry runs again.
                raise RetryLater(exc.code, exc.message) from None
            # Stored like a success: redeliveries replay this answer and never call GME again.
            return Outcome(
                status=OutcomeStatus.FAILED,
                reason=f"GME refused {exc.action}: {exc.message}",
                error_code=exc.code,
                request_id=exc.request_id,
                **base,
            )

    def _start_once(self, command: StartCommand, base: dict[str, Any]) -> Outcome:
        plan = command.decision.plan
        assert plan is not None
        try:
            task_id = self._gme.start_record(command.biz_id, command.room_id, plan)
        except GmeError as exc:
            if exc.code != TASK_IN_USE:
                raise
            running = self._gme.describe_task(command.biz_id, command.room_id)
            if running is None:
                raise RetryLater(TASK_IN_USE, "task in use but not visible yet") from None
            return _adopted(base, running, "StartRecord answered TaskInUse")
        return Outcome(
            status=OutcomeStatus.STARTED,
            task_id=task_id,
            record_mode=plan.record_mode,
            allow_user_ids=plan.allow_user_ids,
            block_user_ids=plan.block_user_ids,
            reason=command.decision.reason,
            **base,
        )

    def _retryable(self, command: StartCommand, code: str) -> bool:
        age = self._clock() - command.occurred_at.timestamp()
        return is_retryable(code, room_is_new=age <= self._grace)


def _key(command: StartCommand) -> dict[str, Any]:
    """What KEY_FIELDS selects, as `model_dump(mode="json")` of the command gives it."""
    return {"biz_id": command.biz_id, "room_id": command.room_id, "session": command.session}


def _base(command: StartCommand) -> dict[str, Any]:
    return {
        "biz_id": command.biz_id,
        "room_id": command.room_id,
        "session": command.session,
        "rule": command.decision.rule,
        "policy_version": command.decision.policy_version,
    }


def _adopted(base: dict[str, Any], task: RunningTask, why: str) -> Outcome:
    return Outcome(
        status=OutcomeStatus.ADOPTED,
        task_id=task.task_id,
        record_mode=task.record_mode,
        allow_user_ids=task.allow_user_ids,
        block_user_ids=task.block_user_ids,
        reason=why,
        **base,
    )


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    if isinstance(response, Outcome):
        return response.model_copy(update={"duplicate": True})
    return response


def _task_found(call: Callable[[], object]) -> bool:
    """Run a call on a known task: False when GME answers TaskNotFound (the task is gone),
    which for a stop or a modify is an answer, not an error."""
    try:
        call()
    except GmeError as exc:
        if exc.code != TASK_NOT_FOUND:
            raise
        return False
    return True
