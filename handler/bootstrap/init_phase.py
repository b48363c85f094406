"""The Lambda init phase without the cyclic garbage collector: imported first by every entry.

Importing an entry module allocates some 50,000 long-lived objects (modules, classes, pydantic
validators) and almost no garbage: 823 objects in cycles for the webhook. The collector still
runs young collections all through it, and once enough objects have piled up it runs a full
collection over the whole heap, which costs 15-30 ms; without the pause that lands inside the
webhook's init. Importing this module pauses the collector; `end()`, the last statement of each
entry module, freezes everything the import built (moved out of the collector's reach, so later
full collections during invocations do not rescan it either) and turns the collector back on.

This is the pattern the `gc` documentation gives for a process that loads once and then serves:
disable early, `freeze()` when loading is done. The handful of cyclic objects the import left
behind stay allocated for the life of the process; that is the whole cost. An entry whose import
fails never reaches `end()` and leaves the collector off, but such a process serves nothing:
Lambda discards the environment and runs the init phase again in a new one.
"""

from __future__ import annotations

import gc

_paused_here = gc.isenabled()
gc.disable()


def end() -> None:
    """Close the init phase: freeze what it built, then collect normally again. Idempotent,
    and it never enables a collector that was already off before the first entry was imported."""
    global _paused_here
    gc.freeze()
    if _paused_here:
        _paused_here = False
        gc.enable()
