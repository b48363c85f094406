"""What the idempotency store suites share: the event and key, a fake Lambda context and a
function decorated with the real Powertools ``idempotent_function`` on a given layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext

KEY_PATH = "[biz_id, room_id, session]"
EVENT = {"biz_id": 1400000001, "room_id": "room-1", "session": "s-1", "user_ids": ["u1", "u2"]}


class FakeLambdaContext:
    """The parts of a Lambda context Powertools reads."""

    function_name = "gme-autorecord-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:gme-autorecord-test"
    memory_limit_in_mb = 128
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/gme-autorecord-test"
    log_stream_name = "stream"

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Crash(BaseException):
    """Escapes Powertools' ``except Exception``: the INPROGRESS record stays, as after SIGKILL
    (a dead worker)."""


def make_start(
    layer: BasePersistenceLayer,
    body: Callable[[dict[str, Any]], Any],
    *,
    remaining_ms: int = 30_000,
    expires: int = 300,
    validation: str = "",
    key_prefix: str = "t",
) -> Callable[..., Any]:
    """A decorated ``start(event=...)`` on ``layer`` with a fresh config (a layer keeps the
    first IdempotencyConfig it sees)."""
    config = IdempotencyConfig(
        event_key_jmespath=KEY_PATH,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=expires,
        payload_validation_jmespath=validation,
    )
    config.register_lambda_context(cast("LambdaContext", FakeLambdaContext(remaining_ms)))

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="event",
        persistence_store=layer,
        config=config,
        key_prefix=key_prefix,
    )
    def start(event: dict[str, Any]) -> Any:
        return body(event)

    return start
