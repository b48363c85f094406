"""The recording lifecycle: scheduled windows, window and `max_duration` ends, 24-hour
renewals, the reconciliation sweep and running sessions that follow a changed policy. The
scheduler's tick plans them (`plan.py`, `follow.py`) and hands each unit on (`tick.py`); a
worker, or the tick itself without a queue, runs it (`steps.py`, `sweep.py`, `follow.py`).
See docs/lifecycle.md.
Part of the service layer, under its import rules (`handler/service_layer/__init__.py`).
"""
