"""Resolve secret references (`ssm:/path`, `secretsmanager:name`) at run time.

Deployed, the template carries only references, so no key ever sits in a Lambda's environment
or in CloudFormation; Powertools Parameters fetches and caches the values.
"""

from __future__ import annotations

PREFIXES = ("ssm:", "secretsmanager:")
MAX_AGE_SECONDS = 300


def is_reference(value: str) -> bool:
    return value.startswith(PREFIXES)


def resolve(reference: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    kind, _, name = reference.partition(":")
    if kind == "ssm":
        return str(parameters.get_parameter(name, decrypt=True, max_age=MAX_AGE_SECONDS))
    return str(parameters.get_secret(name, max_age=MAX_AGE_SECONDS))
