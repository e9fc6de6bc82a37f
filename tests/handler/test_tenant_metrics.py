"""Per-tenant metrics of predict: one EMF line per request whose tenant was verified.

The lines are what CloudWatch turns into metrics (Embedded Metric Format), so they are checked
the way CloudWatch reads them: each directive's dimensions and metric names must be keys of the
same JSON object.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.predict import app as predict_app
from tests.support import FakeLambdaContext, Stack, load_event


def tenant_lines(output: str) -> list[dict[str, Any]]:
    """The EMF documents that carry a tenant dimension, checked as CloudWatch would read them."""
    lines = []
    for raw in output.splitlines():
        if not raw.startswith("{") or '"tenant"' not in raw:
            continue
        document = json.loads(raw)
        if "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"]
            for dimension_set in directive["Dimensions"]:
                assert all(isinstance(document[name], str) for name in dimension_set)
            for metric in directive["Metrics"]:
                assert isinstance(document[metric["Name"]], int | float)
        lines.append(document)
    return lines


def metric_names(document: dict[str, Any], dimensions: list[str]) -> set[str]:
    return {
        metric["Name"]
        for directive in document["_aws"]["CloudWatchMetrics"]
        if dimensions in directive["Dimensions"]
        for metric in directive["Metrics"]
    }


def invoke(event: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    capsys.readouterr()
    status = predict_app.lambda_handler(event, FakeLambdaContext())["statusCode"]
    return status, tenant_lines(capsys.readouterr().out)


def test_a_prediction_is_counted_for_its_tenant(alice_token: str, capsys: pytest.CaptureFixture[str]) -> None:
    # When alice predicts two rows
    status, lines = invoke(load_event("predict_alice", alice_token=alice_token), capsys)
    # Then one line counts a request, a prediction and two rows for tenant-a, with its latency
    assert status == 200
    (line,) = lines
    assert line["tenant"] == "tenant-a" and line["service"] == "test"
    assert metric_names(line, ["service", "tenant"]) == {
        "Requests",
        "Latency",
        "Predictions",
        "PredictedRows",
    }
    assert (line["Requests"], line["Predictions"], line["PredictedRows"]) == (1, 1, 2)
    assert 0 < line["Latency"] < 10_000


def test_a_rejection_is_counted_by_tenant_and_kind(
    alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When alice sends bob's model's row shape
    status, lines = invoke(load_event("predict_wrong_feature_count", alice_token=alice_token), capsys)
    # Then a Rejected of kind BadRequest is counted for tenant-a, and no prediction
    assert status == 400
    (line,) = lines
    assert line["tenant"] == "tenant-a" and line["kind"] == "BadRequest"
    assert metric_names(line, ["service", "tenant", "kind"]) == {"Rejected"}
    assert "Predictions" not in line


def test_tenants_are_told_apart(alice_token: str, bob_token: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, alice = invoke(load_event("predict_alice", alice_token=alice_token), capsys)
    _, bob = invoke(load_event("predict_bob", bob_token=bob_token), capsys)
    assert [line["tenant"] for line in alice + bob] == ["tenant-a", "tenant-b"]


def test_requests_without_a_verified_tenant_have_no_tenant_line(
    demo: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # A request with no token, or an oversized body, never names a tenant: nothing to attribute
    for name in ("predict_no_token", "predict_oversized_body"):
        status, lines = invoke(load_event(name, alice_token="x"), capsys)
        assert status in (401, 413)
        assert lines == []


def test_metrics_can_be_switched_off(
    alice_token: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    predict_app.lambda_handler(load_event("predict_alice", alice_token=alice_token), FakeLambdaContext())
    lines = [json.loads(raw) for raw in capsys.readouterr().out.splitlines() if raw.startswith("{")]
    # No metric directive anywhere; the served request's history record still goes out (docs/history.md)
    assert all("CloudWatchMetrics" not in line.get("_aws", {}) for line in lines)
    assert [line["history"] for line in lines if "history" in line] == [1]


def test_a_served_prediction_writes_one_metrics_line_for_tenant_and_service(
    alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a warm container (model loaded, so no cache-miss metrics)
    event = load_event("predict_alice", alice_token=alice_token)
    assert predict_app.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200
    capsys.readouterr()
    # When alice predicts two rows
    assert predict_app.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200
    # Then stdout holds exactly one EMF document for the request
    documents = [json.loads(raw) for raw in capsys.readouterr().out.splitlines() if raw.startswith("{")]
    (line,) = [document for document in documents if "_aws" in document]
    # And it counts the prediction and its rows service-wide too, under the names alarms read
    assert metric_names(line, ["service"]) == {"Predictions", "PredictedRows"}
    assert (line["service"], line["Predictions"], line["PredictedRows"]) == ("test", 1, 2)
    assert tenant_lines(json.dumps(line)) == [line]  # and CloudWatch can read every directive


def test_a_request_refused_before_its_tenant_is_known_does_not_log_the_last_tenant(
    alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a served request of tenant-a: its log keys name the tenant
    invoke(load_event("predict_alice", alice_token=alice_token), capsys)
    assert predict_app.logger.get_current_keys()["tenant_id"] == "tenant-a"
    # When the container's next request has a bad token (no tenant is ever verified)
    event = load_event("predict_alice", alice_token=alice_token + "x")
    event["requestContext"]["requestId"] = "the-next-request"
    context = FakeLambdaContext(aws_request_id="the-next-invocation")
    assert predict_app.lambda_handler(event, context)["statusCode"] == 401
    # Then its log keys carry no tenant, and its own request ids
    keys = predict_app.logger.get_current_keys()
    assert "tenant_id" not in keys
    assert keys["correlation_id"] == "the-next-request"
    assert keys["function_request_id"] == "the-next-invocation"
