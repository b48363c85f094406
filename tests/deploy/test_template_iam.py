"""The generated template's IAM and secrets: each role holds only what its function needs, no
wildcard but X-Ray's, SSM grants exactly the parameters referenced, secrets only as references.

A grant too wide passes every other test, and a secret value in the template would ship in it;
only the template shows either. Skipped, with the reason, only when node/npm are missing; if
they are present the template must exist and be newer than serverless.yml (run `make package`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from handler.adapters.secrets import is_reference
from handler.bootstrap.config import SECRET_VARIABLES
from tests.deploy.helpers import (
    FUNCTIONS,
    NEEDS_NODE,
    ROOT,
    SERVICE,
    TEMPLATE,
    actions_of,
    as_list,
    props,
    resources,
    role_of,
    statements,
)

#: The only actions that may use Resource "*": X-Ray has no resource-level permissions.
STAR_RESOURCE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

pytestmark = NEEDS_NODE


def test_no_wildcards_in_iam_except_xray(template: dict[str, Any]) -> None:
    roles = resources(template, "AWS::IAM::Role")
    assert set(roles) == {"WebhookRole", "WorkerRole", "SchedulerRole"}  # no shared default role
    for name, role in roles.items():
        assert role["Properties"].get("ManagedPolicyArns") is None, name
        for s in statements(role):
            assert s["Effect"] == "Allow"
            acts = as_list(s["Action"])
            assert not any("*" in a for a in acts), (name, acts)
            for resource in as_list(s["Resource"]):
                if resource == "*":
                    assert set(acts) <= STAR_RESOURCE_ACTIONS, (name, acts)
                    continue
                text = json.dumps(resource)
                if "*" in text:  # only "every stream of this function's log group"
                    assert ":log-group:/aws/lambda/" in text, (name, text)
                    assert text.count("*") == 1, (name, text)
                    assert text.endswith(':*"}'), (name, text)
    for policy in resources(template, "AWS::IAM::Policy").values():
        pytest.fail(f"unexpected standalone IAM policy: {policy}")


def test_each_role_has_only_what_its_function_needs(template: dict[str, Any]) -> None:
    logs = {"logs:CreateLogStream", "logs:PutLogEvents"}
    optional = {"kms:Decrypt", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    idempotency = {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    ledger = {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",  # what moved out of the previous ledger table
    }
    notify = {"events:PutEvents"}  # every function can change a recording, so publishes
    assert actions_of(template, "webhook") - optional == logs | idempotency | ledger | notify | {
        "sqs:SendMessage",
        "ssm:GetParameter",
    }
    assert actions_of(template, "worker") - optional == logs | idempotency | ledger | notify | {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "ssm:GetParameter",
    }
    # The scheduler plans onto the queue: no idempotency table, no GME credentials.
    # (It also sends again the recording events receivers missed: PutEvents, the webhook key.)
    assert actions_of(template, "scheduler") - optional == logs | ledger | notify | {
        "sqs:SendMessage",
        "ssm:GetParameter",
    }
    [send] = [
        s
        for s in statements(role_of(template, "scheduler"))
        if "sqs:SendMessage" in as_list(s["Action"])
    ]
    assert send["Resource"] == {"Fn::GetAtt": ["RecordQueue", "Arn"]}  # its own queue only
    for function in FUNCTIONS:
        for s in statements(role_of(template, function)):
            if s["Action"] == [*logs] or set(as_list(s["Action"])) == logs:
                assert f"/aws/lambda/{SERVICE}-{function}:" in s["Resource"]["Fn::Sub"]
            if "kms:Decrypt" in as_list(s["Action"]):
                assert "kms:ViaService" in s["Condition"]["StringEquals"]


def test_recording_events_go_to_the_stacks_bus_only(template: dict[str, Any]) -> None:
    bus = props(template, "RecordingEventBus")
    assert bus["Name"] == f"{SERVICE}-recordings"
    for function, key in FUNCTIONS.items():
        env = props(template, key)["Environment"]["Variables"]
        assert env["NOTIFY_EVENT_BUS"] == bus["Name"], function
        assert env["NOTIFY_WEBHOOK_URL"] == ""  # no endpoint unless the param names one
        grants = [s for s in statements(role_of(template, function)) if "events" in json.dumps(s)]
        [grant] = [s for s in grants if "events:PutEvents" in as_list(s["Action"])]
        assert as_list(grant["Action"]) == ["events:PutEvents"], function
        assert grant["Resource"] == {"Fn::GetAtt": ["RecordingEventBus", "Arn"]}, function
        others = {a for s in statements(role_of(template, function)) for a in as_list(s["Action"])}
        assert {a for a in others if a.startswith("events:")} == {"events:PutEvents"}


def test_only_the_scheduler_deletes_from_the_ledger_and_only_outbox_items(
    template: dict[str, Any],
) -> None:
    for function in FUNCTIONS:
        deletes = [
            s
            for s in statements(role_of(template, function))
            if "dynamodb:DeleteItem" in as_list(s["Action"])
            and "LedgerTableV2" in json.dumps(s["Resource"])
        ]
        if function != "scheduler":
            assert deletes == [], function
            continue
        [grant] = deletes
        assert grant["Resource"] == {"Fn::GetAtt": ["LedgerTableV2", "Arn"]}  # no index
        from handler.adapters.outbox_dynamodb import PARTITION

        keys = grant["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
        assert keys == [PARTITION]


def test_ssm_grants_match_exactly_the_referenced_parameters(template: dict[str, Any]) -> None:
    for function, key in FUNCTIONS.items():
        env = props(template, key)["Environment"]["Variables"]
        referenced = {
            v.removeprefix("ssm:")
            for v in env.values()
            if isinstance(v, str) and v.startswith("ssm:")
        }
        granted = set()
        for s in statements(role_of(template, function)):
            if "ssm:GetParameter" in as_list(s["Action"]):
                for r in as_list(s["Resource"]):
                    granted.add(re.sub(r"^.*:parameter", "", r["Fn::Sub"]))
        assert granted == referenced, function


def test_secrets_are_references_never_values(template: dict[str, Any]) -> None:
    for key in FUNCTIONS.values():
        env = props(template, key)["Environment"]["Variables"]
        for name, value in env.items():
            if name in SECRET_VARIABLES:
                assert isinstance(value, str), name
                assert is_reference(value), name
            elif isinstance(value, str):
                assert not re.search(r"(?i)secret|password|whsec_", value), name
    assert "whsec_" not in TEMPLATE.read_text()


def test_provider_environment_is_plain_strings() -> None:
    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        return {"!" + suffix: None}

    Loader.add_multi_constructor("!", tagged)
    doc = yaml.load((ROOT / "serverless.yml").read_text(), Loader=Loader)  # noqa: S506
    env = doc["provider"]["environment"]
    assert all(isinstance(v, str) for v in env.values()), env
    assert not set(env) & set(SECRET_VARIABLES)  # secrets live on the function that needs them
