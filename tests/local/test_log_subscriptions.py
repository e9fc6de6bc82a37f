"""The local gateway delivers a function's log lines to the function the template subscribes to
them, as CloudWatch Logs does: only the lines the filter pattern selects, after the response,
as `{"awslogs": {"data": base64(gzip(json))}}`."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.gateway import Gateway, LambdaContext, build_gateway
from local.log_subscriptions import FilterPattern
from local.resources import TEMPLATE
from tests.support import EXPECTED_SECURITY_HEADERS

pytestmark = pytest.mark.blackbox

DELIVERED: list[list[str]] = []


def authorizer(event: dict[str, Any], _: LambdaContext) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
    return {
        "principalId": "x",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": {"tenant_id": "tenant-a"},  # predict's invocation tenant (tenant isolation mode)
    }


def predict(event: dict[str, Any], _: LambdaContext) -> dict[str, Any]:
    sys.stdout.write('{"level":"INFO","message":"not a record"}\n')
    sys.stdout.write('{"history":1,"request_id":"r-1"}\n{"history":2,"part":0}\n')
    sys.stdout.write('{"history":3}\nplain text\n')
    headers = EXPECTED_SECURITY_HEADERS | {"Content-Type": "application/json"}
    return {"statusCode": 200, "headers": headers, "body": "{}"}


def writer(event: dict[str, Any], _: LambdaContext) -> None:
    document = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    DELIVERED.append([log_event["message"] for log_event in document["logEvents"]])


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    handlers = {
        "AuthorizerFunction": authorizer,
        "PredictFunction": predict,
        "LoginFunction": predict,
        "HistoryFunction": predict,
        "AdminFunction": predict,
        "HistoryWriterFunction": writer,
    }
    with build_gateway(str(TEMPLATE), handlers, port=0).start_in_thread() as running:
        yield running


def test_predicts_history_lines_reach_the_writer_and_nothing_else_does(gateway: Gateway) -> None:
    # When predict answers a request
    reply = requests.post(
        f"{gateway.url}/api/v1/predict", json={}, headers={"Authorization": "Bearer t"}, timeout=30
    )
    assert reply.status_code == 200
    assert gateway.subscriptions is not None
    gateway.subscriptions.wait()
    # Then the writer got exactly the lines the template's filter pattern selects
    assert DELIVERED == [['{"history":1,"request_id":"r-1"}', '{"history":2,"part":0}']]


@pytest.mark.parametrize(
    ("line", "selected"),
    [
        ('{"history":1}', True),
        ('{"history":2}', True),
        ('{"history":"1"}', False),
        ('{"history":true}', False),
        ('{"other":1}', False),
        ("[1]", False),
        ("not json", False),
    ],
)
def test_the_filter_pattern_matches_as_cloudwatch_would(line: str, selected: bool) -> None:
    assert FilterPattern.parse("{ ($.history = 1) || ($.history = 2) }").matches(line) is selected


@pytest.mark.parametrize("pattern", ["ERROR", "{ $.a > 1 }", "{ ($.a = 1) || ($.b = 2) && ($.c = 3) }"])
def test_a_pattern_it_cannot_match_faithfully_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="unsupported filter pattern"):
        FilterPattern.parse(pattern)
