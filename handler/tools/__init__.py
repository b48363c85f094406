"""Tools that never run in Lambda: the command line (`cli`, run as `python -m handler`), the
local stack and runner, operator commands, DLQ replay, the policy dry run and cases, the
published contract's generator, preflight checks.

May import anything in the package; nothing outside `tools` imports it (only the
`handler/__main__.py` shim), which is why `make artifact` leaves this whole folder out.
"""
