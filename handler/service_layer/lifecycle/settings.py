"""Settings of the ledger and the scheduler tick, read from the environment with clear errors.

Kept beside the lifecycle code (not in `handler.bootstrap.config`) so branches that extend the main
settings merge without touching these; docs/configuration.md lists both.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from handler.bootstrap.config import ConfigError
from handler.domain.ledger import GME_TASK_CAP_SECONDS


class LifecycleSettings(BaseModel):
    """How much the scheduler plans per tick. Checks and renewals are planned at a share of GME's
    pace (`*_calls_per_second` x `tick_seconds` per tick), so the queue never holds far more of
    them than the workers can run before the next tick; windows and window ends are planned
    whole. Planning stops at `tick_deadline_seconds`; the next tick goes on from there."""

    model_config = ConfigDict(frozen=True)

    ledger_store: str | None = None
    ledger_ttl_seconds: Annotated[int, Field(ge=3600)] = 30 * 86400
    recording_schedules: str | None = None
    #: The schedule's period (serverless.yml `params.schedule`): what "per tick" is worth.
    tick_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    tick_deadline_seconds: Annotated[float, Field(gt=0, le=840)] = 40.0
    sweep_batch: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    sweep_calls_per_second: Annotated[float, Field(gt=0, le=20)] = 15.0
    sweep_min_age_seconds: Annotated[int, Field(ge=0)] = 120
    sweep_retry_after_seconds: Annotated[int, Field(ge=0)] = 600
    renew_before_seconds: Annotated[int, Field(ge=60, le=GME_TASK_CAP_SECONDS // 2)] = 3600
    renew_calls_per_second: Annotated[float, Field(gt=0, le=20)] = 10.0
    follow_calls_per_second: Annotated[float, Field(gt=0, le=20)] = 5.0

    @model_validator(mode="after")
    def _renew_window_spans_ticks(self) -> LifecycleSettings:
        if self.renew_before_seconds < 2 * self.tick_seconds:
            raise ValueError(
                "RENEW_BEFORE_SECONDS must be at least 2 x TICK_SECONDS, or a renewal can fall "
                "between two ticks and GME's 24-hour cap cuts the recording"
            )
        return self

    @property
    def checks_per_tick(self) -> int:
        """Sweep checks one tick plans: 900 with the defaults, 54,000 an hour."""
        return min(self.sweep_batch, math.ceil(self.sweep_calls_per_second * self.tick_seconds))

    @property
    def renewals_per_tick(self) -> int:
        """Renewals one tick plans (600 with the defaults): a burst of starts up to
        `renew_calls_per_second` x (`renew_before_seconds` - `tick_seconds`) is renewed before
        the cap (35,400 with the defaults)."""
        return math.ceil(self.renew_calls_per_second * self.tick_seconds)

    @property
    def follows_per_tick(self) -> int:
        """Running sessions one tick brings to a changed policy (`apply_to_running`): 300 with
        the defaults, each one ModifyRecordInfo or StopRecord at most."""
        return math.ceil(self.follow_calls_per_second * self.tick_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LifecycleSettings:
        env = os.environ if env is None else env
        names = {
            "ledger_store": "LEDGER_STORE",
            "ledger_ttl_seconds": "LEDGER_TTL_SECONDS",
            "recording_schedules": "RECORDING_SCHEDULES",
            "tick_seconds": "TICK_SECONDS",
            "tick_deadline_seconds": "TICK_DEADLINE_SECONDS",
            "sweep_batch": "SWEEP_BATCH",
            "sweep_calls_per_second": "SWEEP_CALLS_PER_SECOND",
            "sweep_min_age_seconds": "SWEEP_MIN_AGE_SECONDS",
            "sweep_retry_after_seconds": "SWEEP_RETRY_AFTER_SECONDS",
            "renew_before_seconds": "RENEW_BEFORE_SECONDS",
            "renew_calls_per_second": "RENEW_CALLS_PER_SECOND",
            "follow_calls_per_second": "FOLLOW_CALLS_PER_SECOND",
        }
        data = {k: env[v] for k, v in names.items() if env.get(v)}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [
                f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
                if e["loc"]
                else str(e["msg"]).removeprefix("Value error, ")
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
