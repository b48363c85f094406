"""The one rule for a request header sent more than once: a signing header must appear once.

HTTP lets a client repeat a header, and each server picks its own way to fold the repeats: the
deployed API Gateway HTTP API joins them with commas into one value before the function runs,
and Python's local server would silently keep the last. Either way a verifier could end up
checking a value the sender did not mean. So the local server joins repeats exactly as API
Gateway does, and this module refuses the join wherever it shows: in a header whose own format
has no comma, any comma; in `webhook-signature` (space-separated `v1,<base64>` entries), an
entry with more than one comma. Pure: names and values in, the offending name out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Headers whose own values never hold a comma, per route format (compared lower-case).
COMMA_FREE = frozenset({"webhook-id", "webhook-timestamp", "sign", "sdkappid", "signature"})
SIGNATURE_LIST = "webhook-signature"


def join_repeated(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, repeats joined with ',' in arrival order (as API Gateway's
    payload 2.0 does)."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def repeated_header(headers: Mapping[str, str], names: Iterable[str]) -> str | None:
    """The first of `names` (lower-case) whose value shows it was sent more than once."""
    for name in names:
        value = headers.get(name, "")
        if name in COMMA_FREE and "," in value:
            return name
        if name == SIGNATURE_LIST and any(entry.count(",") > 1 for entry in value.split(" ")):
            return name
    return None
