"""template.yaml's inference history (docs/history.md): predict's lines reach the writer through
a subscription, the writer may only put history items and capture objects, failures are not
dropped, and the reading function may only query history items and check cursors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import template_resources
from tests.unit.test_template import actions, statement_with

ACTIVITY_ARN = {"Fn::GetAtt": ["ActivityTable", "Arn"]}
HISTORY_KEYS = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["history#*"]}}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return template_resources()


def test_predict_gains_nothing_from_history(resources: dict[str, Any]) -> None:
    assert actions(resources["PredictFunction"]) == {"dynamodb:GetItem", "kms:GetPublicKey"}


def test_the_writer_may_only_put_history_items_and_capture_objects(resources: dict[str, Any]) -> None:
    writer = resources["HistoryWriterFunction"]
    assert actions(writer) == {"dynamodb:GetItem", "dynamodb:PutItem", "s3:PutObject", "sqs:SendMessage"}
    (put,) = statement_with(writer, "dynamodb:PutItem")
    assert put["Resource"] == ACTIVITY_ARN and put["Condition"] == HISTORY_KEYS
    (read,) = statement_with(writer, "dynamodb:GetItem")
    assert read["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["tenant#*"]}}
    (objects,) = statement_with(writer, "s3:PutObject")
    assert objects["Resource"] == {"Fn::Sub": "${ModelBucket.Arn}/captures/*"}


def test_predicts_history_lines_reach_the_writer_and_nothing_else_does(resources: dict[str, Any]) -> None:
    subscription = resources["PredictHistorySubscription"]["Properties"]
    assert subscription["LogGroupName"] == {"Ref": "PredictLogGroup"}
    assert subscription["DestinationArn"] == {"Fn::GetAtt": ["HistoryWriterFunction", "Arn"]}
    assert subscription["FilterPattern"] == "{ ($.history = 1) || ($.history = 2) }"
    permission = resources["HistoryWriterPermission"]["Properties"]
    assert permission["Principal"] == "logs.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["PredictLogGroup", "Arn"]}


def test_the_writers_failures_go_to_an_encrypted_queue_with_an_alarm(resources: dict[str, Any]) -> None:
    writer = resources["HistoryWriterFunction"]["Properties"]
    assert writer["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["HistoryDeadLetterQueue", "Arn"]},
    }
    assert resources["HistoryDeadLetterQueue"]["Properties"]["KmsMasterKeyId"]
    alarm = resources["HistoryDeadLetterAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SQS" and alarm["Threshold"] == 1
    assert json.dumps(alarm["Dimensions"]).count("HistoryDeadLetterQueue") == 1


def test_the_history_function_only_queries_history_items_and_checks_cursors(
    resources: dict[str, Any],
) -> None:
    history = resources["HistoryFunction"]
    assert actions(history) == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "kms:GetPublicKey",
        "kms:GenerateMac",
        "kms:VerifyMac",
    }
    (query,) = statement_with(history, "dynamodb:Query")
    assert query["Resource"] == ACTIVITY_ARN and query["Condition"] == HISTORY_KEYS
    (macs,) = statement_with(history, "kms:VerifyMac")
    assert macs["Resource"] == {"Fn::GetAtt": ["HistoryCursorKey", "Arn"]}
    key = resources["HistoryCursorKey"]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    events = history["Properties"]["Events"]
    assert {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in events.values()} == {
        ("/api/v1/history", "GET"),
        ("/api/v1/history/{request_id}", "GET"),
    }


def test_captured_objects_expire_by_the_longest_retention(resources: dict[str, Any]) -> None:
    rules = resources["ModelBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [rule for rule in rules if rule["Id"] == "ExpireCaptures"]
    assert rule["Prefix"] == "captures/" and rule["ExpirationInDays"] == 400
