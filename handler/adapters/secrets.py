"""Resolve secret references (`ssm:/path`, `secretsmanager:name`) at run time, and read them
again so a rotated key goes live without a deploy.

Deployed, the template carries only references, so no key ever sits in a Lambda's environment
or in CloudFormation; Powertools Parameters fetches the values. When to fetch is decided here,
not by Powertools' cache: every `REFRESH_SECONDS`, and early after an authentication failure
(a signature that fails with the keys in use, GME refusing the credentials), but at most once
per interval, so a flood of badly signed requests costs one fetch, not one per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

PREFIXES = ("ssm:", "secretsmanager:")
#: The one refresh interval: a rotated value is in use at most this long after it changed.
REFRESH_SECONDS = 300

T = TypeVar("T")


def is_reference(value: str) -> bool:
    return value.startswith(PREFIXES)


def resolve(reference: str) -> str:
    """The current value behind a reference, fetched now (`Refreshing` decides how often)."""
    from aws_lambda_powertools.utilities import parameters

    kind, _, name = reference.partition(":")
    if kind == "ssm":
        return str(parameters.get_parameter(name, decrypt=True, force_fetch=True))
    return str(parameters.get_secret(name, force_fetch=True))


class Refreshing(Generic[T]):
    """A value built from secret references (the settings), built again once it is
    `interval` seconds old, or early on request (`refresh_early`) at most once per interval.

    A rebuild that fails, or yields an equal value, keeps the value in use (the same object, so
    callers may compare by identity), and counts as the attempt of its interval: a secret store
    that is down is asked once per interval, not on every request. `refreshable=False` (no
    references configured) builds once, as there is nothing to re-read.
    """

    def __init__(
        self,
        build: Callable[[], T],
        *,
        refreshable: bool = True,
        interval: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._build = build
        self._refreshable = refreshable
        self._interval = interval
        self.clock = clock
        self._on_error = on_error
        self._value: T | None = None
        self._built_at = 0.0
        self._early_at: float | None = None
        self._lock = threading.Lock()

    def current(self) -> T:
        value = self._value
        if value is not None and not self._due(self._built_at):
            return value
        with self._lock:
            if self._value is None:  # the first build: its errors are the caller's
                self._value = self._build()
                self._built_at = self.clock()
            elif self._due(self._built_at):
                self._rebuild()
            return self._value

    def refresh_early(self) -> bool:
        """An authentication failed with the values in use: rebuild now, unless an early
        rebuild already ran within the interval. True when the value changed (a retry with
        the new one is worth it)."""
        if not self._refreshable or self._value is None:
            return False
        with self._lock:
            if self._early_at is not None and not self._due(self._early_at):
                return False
            self._early_at = self.clock()
            return self._rebuild()

    def _due(self, since: float) -> bool:
        return self._refreshable and self.clock() - since >= self._interval

    def _rebuild(self) -> bool:
        self._built_at = self.clock()
        try:
            fresh = self._build()
        except Exception as exc:  # keep serving with the last good values
            if self._on_error is not None:
                self._on_error(exc)
            return False
        if fresh == self._value:
            return False
        self._value = fresh
        return True
