"""The recording lifecycle: scheduled windows, window ends, 24-hour renewals and the
reconciliation sweep. The scheduler's tick plans them (`plan.py`) and hands each unit on
(`tick.py`); a worker, or the tick itself without a queue, runs it (`steps.py`, `sweep.py`).
See docs/lifecycle.md."""
