"""The deployment as AWS would receive it: the resources of the CloudFormation template that
`make package` generates offline with osls (and cfn-lint has already passed over): the three
functions and their triggers, the queues, tables and HTTP API, the alarms and the dashboard.

Skipped, with the reason, only when node/npm are missing; if they are present the template
must exist and be newer than serverless.yml (run `make package`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from handler.adapters.ledger_table import INDEXES
from tests.deploy.helpers import FUNCTIONS, NEEDS_NODE, ROOT, SERVICE, props, resources

pytestmark = NEEDS_NODE


def test_three_arm64_python312_functions(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS.values())
    for name, key in FUNCTIONS.items():
        p = props(template, key)
        assert p["FunctionName"] == f"{SERVICE}-{name}"
        assert p["Handler"] == f"handler.entrypoints.{name}.handler"
        assert p["Runtime"] == "python3.12"
        assert p["Architectures"] == ["arm64"]
        assert p["Code"]["S3Key"].endswith("/gme-autorecord.zip")


def test_webhook_http_routes(template: dict[str, Any]) -> None:
    routes = {
        p["Properties"]["RouteKey"]
        for p in resources(template, "AWS::ApiGatewayV2::Route").values()
    }
    assert routes == {
        "POST /v1/room-events",
        "POST /v1/trtc/room-callbacks",
        "POST /v1/gme/recording-callbacks",
        "GET /health",
    }
    [integration] = resources(template, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"]["Fn::GetAtt"][0] == "WebhookLambdaFunction"


def test_worker_sqs_mapping_sized_for_gme_rate_limit(template: dict[str, Any]) -> None:
    [mapping] = resources(template, "AWS::Lambda::EventSourceMapping").values()
    p = mapping["Properties"]
    assert p["FunctionName"]["Fn::GetAtt"][0] == "WorkerLambdaFunction"
    assert p["EventSourceArn"] == {"Fn::GetAtt": ["RecordQueue", "Arn"]}
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= p["BatchSize"] <= 10  # more would need a batching window
    # serverless.yml explains the arithmetic: while one instance sits out the tail of its batch
    # (L + 0.05 s of store writes + 0.1 s until its next batch), the other C - 1 keep the 19/s
    # pace busy, up to L = 0.3 s with room to spare: (C - 1) x B / 19 >= 2 x 0.45 s.
    concurrency, batch = p["ScalingConfig"]["MaximumConcurrency"], p["BatchSize"]
    assert (concurrency - 1) * batch / 19 >= 2 * (0.3 + 0.05 + 0.1)
    # ... and with the scheduler's sweep checks (15/s on DescribeTaskInfo) on the same queue.
    assert (concurrency - 1) * batch / (19 + 15) >= 0.3 + 0.05 + 0.1
    from handler.entrypoints.worker import MAX_PARALLEL_RECORDS

    assert batch <= MAX_PARALLEL_RECORDS  # a batch's records all run at once
    # The slowest record: a slot behind every other record in flight, then a call that takes
    # the whole GME timeout (5 s by default) and the outcome write, inside the function timeout.
    worker_timeout = props(template, "WorkerLambdaFunction")["Timeout"]
    assert concurrency * batch / 19 + 5 + 0.5 < worker_timeout / 2


def test_scheduler_rule(template: dict[str, Any]) -> None:
    [rule] = resources(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    env = props(template, "SchedulerLambdaFunction")["Environment"]["Variables"]
    assert env["TICK_SECONDS"] == "60"  # the tick's budgets assume the rate it runs at
    assert env["RECORD_QUEUE_URL"] == {"Ref": "RecordQueue"}  # deployed, it only plans
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0] == "SchedulerLambdaFunction"


def test_queue_redrive_visibility_and_dlq_retention(template: dict[str, Any]) -> None:
    queue = props(template, "RecordQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["RecordDeadLetterQueue", "Arn"]
    }
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    worker_timeout = props(template, "WorkerLambdaFunction")["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    assert props(template, "RecordDeadLetterQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_idempotency_table_ttl_on_demand(template: dict[str, Any]) -> None:
    table = props(template, "IdempotencyTable")
    assert table["TableName"] == f"{SERVICE}-idempotency"
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_ledger_table_keys_indexes_ttl(template: dict[str, Any]) -> None:
    table = props(template, "LedgerTableV2")
    assert table["TableName"] == f"{SERVICE}-ledger-v2"
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    declared = {
        i["IndexName"]: (
            i["KeySchema"][0]["AttributeName"],
            i["KeySchema"][1]["AttributeName"] if len(i["KeySchema"]) > 1 else None,
            i["Projection"]["ProjectionType"],
            tuple(i["Projection"].get("NonKeyAttributes", ())),
        )
        for i in table["GlobalSecondaryIndexes"]
    }
    assert declared == INDEXES  # the indexes the DynamoDB ledger adapter queries, as it makes them
    assert all(projection != "ALL" for _, _, projection, _ in declared.values())
    typed = {a["AttributeName"] for a in table["AttributeDefinitions"]}
    assert typed == {"pk", "sk"} | {k for key in INDEXES.values() for k in key[:2] if k}
    env = props(template, FUNCTIONS["worker"])["Environment"]["Variables"]
    assert env["LEDGER_STORE"] == f"dynamodb://{SERVICE}-ledger-v2?fallback={SERVICE}-ledger"


def test_the_previous_ledger_table_is_kept_as_it_was(template: dict[str, Any]) -> None:
    """CloudFormation creates or deletes one index per update: the old table stays unchanged
    (and is retained if removed) while the fallback reads it."""
    resource = resources(template, "AWS::DynamoDB::Table")["LedgerTable"]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    table = resource["Properties"]
    assert table["TableName"] == f"{SERVICE}-ledger"
    assert {
        i["IndexName"]: i["Projection"]["ProjectionType"] for i in table["GlobalSecondaryIndexes"]
    } == {
        "state-checked": "ALL",
        "state-started": "ALL",
        "state-ends": "ALL",
        "open-rule": "KEYS_ONLY",
    }


def test_tables_and_queues_survive_remove_and_replacement(template: dict[str, Any]) -> None:
    kept = resources(template, "AWS::DynamoDB::Table") | resources(template, "AWS::SQS::Queue")
    assert set(kept) == {
        "IdempotencyTable",
        "LedgerTable",
        "LedgerTableV2",
        "RecordQueue",
        "RecordDeadLetterQueue",
    }
    for name, resource in kept.items():
        assert resource.get("DeletionPolicy") == "Retain", name
        assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_ledger_has_point_in_time_recovery(template: dict[str, Any]) -> None:
    for ledger in ("LedgerTable", "LedgerTableV2"):
        pitr = props(template, ledger)["PointInTimeRecoverySpecification"]
        assert pitr == {"PointInTimeRecoveryEnabled": True}
    # Not the idempotency table: its records expire long before a restored copy is usable.
    assert "PointInTimeRecoverySpecification" not in props(template, "IdempotencyTable")


def test_queues_are_encrypted_with_sqs_managed_keys(template: dict[str, Any]) -> None:
    for name in resources(template, "AWS::SQS::Queue"):
        assert props(template, name).get("SqsManagedSseEnabled") is True, name


def test_http_api_throttles_and_webhook_concurrency_is_reserved(template: dict[str, Any]) -> None:
    [stage] = resources(template, "AWS::ApiGatewayV2::Stage").values()
    limits = stage["Properties"]["DefaultRouteSettings"]
    rate, burst = limits["ThrottlingRateLimit"], limits["ThrottlingBurstLimit"]
    # Carries GME's full pace (20 starts/s x ~5 webhook requests a recording), and no more than
    # a few times that: a flood is refused by API Gateway before it costs an invocation.
    assert 5 * 20 <= rate <= 500
    assert rate <= burst <= 2 * rate
    reserved = props(template, "WebhookLambdaFunction")["ReservedConcurrentExecutions"]
    # Enough instances for the steady rate at ~60 ms a warm answer, far below the account's
    # default 1000 (of which 100 always stay unreserved).
    assert rate * 0.06 <= reserved <= 100
    assert "ReservedConcurrentExecutions" not in props(template, "WorkerLambdaFunction")


def test_http_api_access_log_has_the_request_and_no_secret(template: dict[str, Any]) -> None:
    [stage] = resources(template, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    [group_id] = [k for k in resources(template, "AWS::Logs::LogGroup") if "HttpApi" in k]
    assert settings["DestinationArn"] == {"Fn::GetAtt": [group_id, "Arn"]}
    group = props(template, group_id)
    assert group["LogGroupName"] == f"/aws/http-api/{SERVICE}"
    assert group["RetentionInDays"] == 30
    line = json.loads(settings["Format"])  # one JSON document per request
    values = set(line.values())
    for needed in ("requestId", "status", "routeKey", "responseLatency"):
        assert f"$context.{needed}" in values, needed
    # Only request metadata: no header, body, query string, authorizer or identity beyond the IP.
    for value in values:
        assert value.startswith("$context."), value
        field = value.removeprefix("$context.")
        assert not re.search(r"header|body|querystring|authorizer|path|caller|user", field, re.I)
        assert field.split(".")[0] != "identity" or field == "identity.sourceIp", field


def test_alarms(template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    # One metric an alarm, or several combined by metric math (each MetricStat counts).
    metrics = [a for a in alarms if "MetricName" in a] + [
        m["MetricStat"]["Metric"] for a in alarms for m in a.get("Metrics", []) if "MetricStat" in m
    ]
    watched = {
        (m["Namespace"], m["MetricName"], json.dumps(m["Dimensions"][0]["Value"])) for m in metrics
    }
    assert (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        '{"Fn::GetAtt": ["RecordDeadLetterQueue", "QueueName"]}',
    ) in watched
    assert ("AWS/Lambda", "Errors", f'"{SERVICE}-worker"') in watched
    assert ("AWS/Lambda", "Throttles", f'"{SERVICE}-worker"') in watched
    assert ("GmeAutorecord", "Throttled", '"gme-autorecord"') in watched
    # The webhook's alarm sees crashes Lambda counts and the 5xx the resolver answers itself.
    assert ("AWS/Lambda", "Errors", f'"{SERVICE}-webhook"') in watched
    assert ("GmeAutorecord", "WebhookFailed", '"gme-autorecord"') in watched
    [failed] = [m for m in metrics if m["MetricName"] == "WebhookFailed"]
    assert failed["Dimensions"][1] == {"Name": "function_name", "Value": f"{SERVICE}-webhook"}
    for a in alarms:
        assert a["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"
        assert a["TreatMissingData"] == "notBreaching"


_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"")


def dashboard_metrics(template: dict[str, Any]) -> list[tuple[str, str, frozenset[str], Any]]:
    """(namespace, metric, dimension names, first dimension value) of every graphed metric,
    from plain metric rows and from SEARCH expressions alike."""
    body = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    refs = set(re.findall(r"\$\{([^}]*)\}", body))
    assert refs <= {"AWS::Region", "RecordQueue.QueueName", "RecordDeadLetterQueue.QueueName"}
    doc = json.loads(re.sub(r"\$\{([^}]*)\}", r"<\1>", body))
    found = []
    for widget in doc["widgets"]:
        assert widget["properties"]["region"] == "<AWS::Region>"
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                match = _SEARCH.search(row[0]["expression"])
                assert match, row
                namespace, *dims = [p.strip() for p in match.group(1).split(",")]
                found.append((namespace, match.group(2), frozenset(dims), None))
                continue
            plain = [x for x in row if not isinstance(x, dict)]
            namespace, name, *pairs = plain
            found.append((namespace, name, frozenset(pairs[0::2]), pairs[1] if pairs else None))
    return found


def test_dashboard_graphs_every_metric_the_code_emits(template: dict[str, Any]) -> None:
    from handler.bootstrap import observability

    graphed = dashboard_metrics(template)
    ours = {(name, dims) for namespace, name, dims, _ in graphed if namespace == "GmeAutorecord"}
    for name, dims in ours:  # only names the code emits, with the dimensions it gives them
        assert name in observability.METRIC_NAMES, name
        assert dims == {"service", *observability.DIMENSIONS.get(name, ())}, name
    assert {name for name, _ in ours} == observability.METRIC_NAMES
    aws = {(ns, name, value) for ns, name, _, value in graphed if ns != "GmeAutorecord"}
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", "<RecordQueue.QueueName>") in aws
    dlq = "<RecordDeadLetterQueue.QueueName>"
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq) in aws
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, f"{SERVICE}-{function}") in aws


def test_time_to_record_p99_alarm_threshold_is_the_param(template: dict[str, Any]) -> None:
    doc = yaml.safe_load(
        re.sub(r"!\w+", "", (ROOT / "serverless.yml").read_text().split("\ncustom:")[0])
    )
    threshold = doc["params"]["default"]["timeToRecordP99Ms"]
    alarm = props(template, "TimeToRecordAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("GmeAutorecord", "TimeToRecord")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "gme-autorecord"}]
    assert alarm["ExtendedStatistic"] == "p99"
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"
