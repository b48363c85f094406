"""What every inbound parser shares: the refusal (`InvalidEvent`), the acknowledged no-op
(`IgnoredEvent`), JSON's integers, and the field that marks a lifecycle command.

Apart from `handler.domain.inbound` so that the parsers it dispatches to (`callbacks`,
`commands`) can use these without importing the dispatcher back: no import cycle.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from handler.domain.events import InboundFormat

#: The field that marks a queue message as a lifecycle command (`handler.domain.commands`).
COMMAND_FIELD = "lifecycle_command"


#: Below this a float holds every integer exactly.
EXACT_FLOAT_INTS = 2**53


def json_int(value: Any) -> Any:
    """A JSON number that is an integer by value is one: `2.0` is `2`, as JSON Schema's
    `integer` (and so the published contract) says. Only below 2^53, where a float holds every
    integer exactly; above, a fraction or exponent may already have rounded the number, so it is
    left as a float for the model to refuse."""
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT_INTS:
        return int(value)
    return value


#: An integer field of a wire model: `Annotated[int, JsonInt]`.
JsonInt = BeforeValidator(json_int)


class InvalidEvent(ValueError):
    """Raised for any payload we refuse; `code` is machine-readable, `field` names the culprit."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class IgnoredEvent(BaseModel):
    """A well-formed payload that needs no action (for example a TRTC user-entered event)."""

    model_config = ConfigDict(frozen=True)

    format: InboundFormat
    reason: str
