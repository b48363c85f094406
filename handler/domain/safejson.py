"""Bounded JSON parsing for untrusted bodies: depth, member count and text checked before parsing.

`json.loads` alone would accept a body nested thousands of levels deep (and fail with a
RecursionError somewhere inside), tens of thousands of keys, `NaN`, numbers such as `1e400`
that overflow to infinity (which a policy would compare and a queue would re-serialise as
`null`, so the same event could be decided two ways), duplicate keys (which two
parsers may resolve differently, the classic way to smuggle a field past a signature check) and
lone UTF-16 surrogates (which later fail to encode). Here each of those is refused up front with
a clear `JsonRefused` code, so nothing downstream ever sees such a document.

The structural pre-scan runs at C speed: string literals are blanked out with one linear regular
expression, then the brackets left over are counted with `bytes.translate` and `accumulate`.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32
MAX_MEMBERS = 2048

# A JSON string literal, unrolled so the match is linear (no backtracking blow-up).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_KEEP_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """`code`: invalid_json, json_too_deep, json_too_many_members or non_finite_number (then
    `field` is the dotted path of such a number, `attributes.players`)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def structure(raw: bytes) -> tuple[int, int]:
    """(maximum nesting depth, number of members and elements, approximately) of a JSON text.

    Exact for valid JSON; for invalid JSON the numbers are only used to refuse early, and the
    parser refuses the rest anyway.
    """
    skeleton = _STRING.sub(b'""', raw)
    brackets = skeleton.translate(None, _KEEP_BRACKETS)
    depth = max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
    members = skeleton.count(b",") + skeleton.count(b":")
    return depth, members


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise JsonRefused("invalid_json", "a JSON object repeats a key")
    return doc


def _no_constants(name: str) -> Any:
    raise JsonRefused("invalid_json", f"{name} is not a JSON number")


class _Floats:
    """`parse_float` hook that notes whether any number overflowed to ±infinity."""

    def __init__(self) -> None:
        self.overflowed = False

    def __call__(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            self.overflowed = True
        return value


def non_finite_field(doc: Any) -> str | None:
    """The dotted path of a non-finite float in a parsed document, if any."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path or "(body)"
        if isinstance(item, dict | list):
            children = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in children)
    return None


def _strings(doc: Any) -> Any:
    """Every string (keys and values) in a parsed document, without recursion."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH, max_members: int = MAX_MEMBERS) -> Any:
    """Parse untrusted UTF-8 JSON within bounds, or raise `JsonRefused`."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    depth, members = structure(data)
    if depth > max_depth:
        raise JsonRefused("json_too_deep", f"JSON nesting deeper than {max_depth} levels")
    if members > max_members:
        raise JsonRefused("json_too_many_members", f"JSON has more than {max_members} members")
    try:
        text = data.decode("utf-8")  # RFC 8259: exchanged JSON is UTF-8, nothing else
        floats = _Floats()
        doc = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=floats,
        )
    except JsonRefused:
        raise
    except (ValueError, RecursionError) as exc:
        raise JsonRefused("invalid_json", f"body is not valid JSON: {type(exc).__name__}") from None
    if b"\\u" in data and any(_LONE_SURROGATE.search(s) for s in _strings(doc)):
        raise JsonRefused("invalid_json", "JSON string holds a lone UTF-16 surrogate")
    if floats.overflowed:
        field = non_finite_field(doc)
        raise JsonRefused("non_finite_number", f"{field}: number out of range (not finite)", field)
    return doc
