"""Durations as the policy and schedule documents write them: `90m`, `3h`, `1h30m`, `2d`, or
seconds as a number. One parser, so both documents accept exactly the same spellings."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def seconds(value: int | str) -> int:
    """Seconds for a duration: a number is seconds already. Raises ValueError."""
    if isinstance(value, int):
        return value
    if value.strip().isdigit():
        return int(value)
    match = _DURATION.match(value)
    if not match or not any(match.groups()):
        raise ValueError("use seconds or a form like 90m, 3h, 1h30m, 2d")
    d, h, m, s = (int(g or 0) for g in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s


def duration_seconds(value: object) -> object:
    """A pydantic before-validator: seconds for a duration string, anything else unchanged (the
    model checks its type and range)."""
    return seconds(value) if isinstance(value, str) else value


def format_duration(seconds: int) -> str:
    """The shortest spelling the parser reads back: 21600 -> `6h`, 5400 -> `1h30m`."""
    parts: list[str] = []
    for unit, size in _UNITS:
        if seconds >= size or (unit == "s" and not parts):
            count, seconds = divmod(seconds, size)
            if count:
                parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
