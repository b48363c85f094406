"""Reading policy documents (YAML or JSON text, or already-parsed data) into a `Policy`.

Every problem becomes one `PolicyError` whose message names the source, the rule (index and
name) and the field path, e.g. `rules[2] ('night-shift') field when.timezone: ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from handler.domain.policy.document import PolicyDocument
from handler.domain.policy.engine import Policy


class PolicyError(ValueError):
    """A policy document we refuse; the message names the rule and the field."""


def parse_policy(data: Any, source: str = "<memory>") -> Policy:
    """Validate already-parsed data (a dict from YAML or JSON)."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise PolicyError(f"{source}: invalid policy: the document is {kind}, not a mapping")
    try:
        return Policy(PolicyDocument.model_validate(data), source)
    except ValidationError as exc:
        raise PolicyError(_describe(exc, data, source)) from None


def parse_policy_text(text: str | bytes, source: str = "<memory>") -> Policy:
    """Validate YAML or JSON text (JSON is YAML), as fetched from a file, SSM or AppConfig."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML/JSON: {exc}") from None
    return parse_policy(data, source)


def load_policy(path: str | Path) -> Policy:
    """Load a YAML or JSON policy file; every problem becomes a `PolicyError` naming the spot."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise PolicyError(f"{path}: cannot read policy ({why})") from None
    return parse_policy_text(text, str(path))


def _describe(exc: ValidationError, data: Any, source: str) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            name = _rule_name(data, loc[1])
            field = ".".join(str(p) for p in loc[2:]) or "(rule)"
            where = f"rules[{loc[1]}]" + (f" ({name!r})" if name else "") + f" field {field}"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return f"{source}: invalid policy: " + "; ".join(lines)


def _rule_name(data: Any, index: int) -> str | None:
    try:
        name = data["rules"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) else None
