"""The one answer that is neither success nor failure: not known yet, deliver again."""

from __future__ import annotations


class RetryLater(Exception):
    """The outcome is not known yet; the delivery should be retried (queue) or refused (503).

    Its own small module because every entry point handles it, and the webhook must not load the
    recorder (and the GME port behind it) at cold start just to name this exception."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
