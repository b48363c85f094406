"""What a sweep check or a policy follow needs of the steps that run it.

A port of its own, so that `sweep.py` and `follow.py` do not import `steps.py`, which dispatches
to them: the dependency runs one way only, and `LifecycleSteps` satisfies this by its shape.
"""

from __future__ import annotations

from typing import Protocol

from handler.domain.ledger import Ledger, LedgerEntry
from handler.domain.outcome import Outcome
from handler.service_layer.lifecycle.settings import LifecycleSettings
from handler.service_layer.recorder import Recorder
from handler.service_layer.service import RecordingService


class StepContext(Protocol):
    service: RecordingService
    ledger: Ledger
    settings: LifecycleSettings

    @property
    def recorder(self) -> Recorder: ...

    def start_next(self, entry: LedgerEntry, now: float, what: str, detail: str) -> Outcome:
        """Start (or adopt) the entry's task under its current generation's key."""
        ...
