"""Every setting checked before `make run` starts or an operator command acts, so a mistake is
one line naming the variable and the fix, and never a failure on the first request.

Lambda reads the same settings on its first event and answers a ConfigError as 503
`misconfigured` (the webhook) or a failed item (the worker); here they are all read up front:
the main settings, the ledger and scheduler settings, the ledger URL, the schedules document,
the policy, the AWS region the AWS-backed forms need, and the local runner's own settings.
Local only; nothing here runs in Lambda.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from handler.bootstrap.config import SECRET_VARIABLES, ConfigError

#: Values that reach AWS, by the variables that may hold them.
_AWS_FORMS = ("dynamodb://", "ssm:", "appconfig:", "secretsmanager:")
_AWS_VARIABLES = ("IDEMPOTENCY_STORE", "LEDGER_STORE", "RECORDING_POLICY", *SECRET_VARIABLES)


def aws_region() -> str | None:
    """The region boto3 will use (environment, profile or config file). boto3 reads
    AWS_DEFAULT_REGION, not the AWS_REGION Lambda also sets: a lone AWS_REGION is copied over,
    so a shell that sets only it works as Lambda does."""
    import botocore.session

    if os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]
    region = botocore.session.get_session().get_config_variable("region")
    return str(region) if region else None


def check_region(env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    for name in _AWS_VARIABLES:
        value = env.get(name, "")
        form = next((f for f in _AWS_FORMS if value.startswith(f)), None)
        if form and not aws_region():
            raise ConfigError(
                f"{name} uses {form}... (AWS), but no AWS region is set: set"
                " AWS_DEFAULT_REGION (or AWS_REGION), e.g. AWS_DEFAULT_REGION=eu-west-1"
            )
    queue = env.get("RECORD_QUEUE_URL")
    if queue and not aws_region():
        raise ConfigError(
            "RECORD_QUEUE_URL is an SQS queue, but no AWS region is set: set AWS_REGION"
        )


def seconds_setting(
    name: str, given: str | None, default: float, *, low: float, high: float
) -> float:
    """A number of seconds (the variable `name` holds `given`), within [low, high]."""
    text = given or f"{default:g}"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name}={text!r} is not a number of seconds in [{low:g}, {high:g}]")
    return value


def port_setting(text: str) -> int:
    """PORT (or --port): 0 picks a free port."""
    if not (text.isascii() and text.isdigit() and int(text) <= 65535):
        raise ConfigError(f"PORT={text!r} is not a port number: use 1-65535 (0 picks a free one)")
    return int(text)


def check_stack_settings() -> None:
    """What the functions would read on their first event, all of it, now."""
    from handler.bootstrap import app
    from handler.domain.policy import PolicyError
    from handler.domain.schedule import ScheduleError

    check_region()
    app.settings()
    app.lifecycle_settings()
    app.ledger()  # LEDGER_STORE (or the one derived from IDEMPOTENCY_STORE)
    try:
        app.schedules()
    except ScheduleError as exc:
        raise ConfigError(f"RECORDING_SCHEDULES: {exc}") from None
    try:
        app.policy()
    except PolicyError as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith("RECORDING_POLICY") else f"RECORDING_POLICY: {message}"
        ) from None
