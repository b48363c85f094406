"""Settings of the ledger and the scheduler tick, read from the environment with clear errors.

Kept beside the lifecycle code (not in `handler.config`) so branches that extend the main
settings merge without touching these; docs/configuration.md lists both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handler.config import ConfigError
from handler.domain.ledger import GME_TASK_CAP_SECONDS


class LifecycleSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    ledger_store: str | None = None
    ledger_ttl_seconds: Annotated[int, Field(ge=3600)] = 30 * 86400
    recording_schedules: str | None = None
    sweep_batch: Annotated[int, Field(ge=1, le=1000)] = 50
    sweep_calls_per_second: Annotated[float, Field(gt=0, le=20)] = 10.0
    sweep_min_age_seconds: Annotated[int, Field(ge=0)] = 120
    sweep_retry_after_seconds: Annotated[int, Field(ge=0)] = 600
    renew_before_seconds: Annotated[int, Field(ge=60, le=GME_TASK_CAP_SECONDS // 2)] = 900

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LifecycleSettings:
        env = os.environ if env is None else env
        names = {
            "ledger_store": "LEDGER_STORE",
            "ledger_ttl_seconds": "LEDGER_TTL_SECONDS",
            "recording_schedules": "RECORDING_SCHEDULES",
            "sweep_batch": "SWEEP_BATCH",
            "sweep_calls_per_second": "SWEEP_CALLS_PER_SECOND",
            "sweep_min_age_seconds": "SWEEP_MIN_AGE_SECONDS",
            "sweep_retry_after_seconds": "SWEEP_RETRY_AFTER_SECONDS",
            "renew_before_seconds": "RENEW_BEFORE_SECONDS",
        }
        data = {k: env[v] for k, v in names.items() if env.get(v)}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [
                f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
