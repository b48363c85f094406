"""The recording lifecycle run by the scheduler on each tick: scheduled windows, window ends,
24-hour renewals and the reconciliation sweep. See docs/lifecycle.md."""
