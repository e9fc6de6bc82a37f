"""The pre-built EMF line for a served prediction is exactly what Powertools would have written."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from model_runtime.request_metrics import PredictionMetrics

from functions.predict import app as predict_app
from functions.predict.app import lambda_handler
from tests.conftest import load_event
from tests.support import FakeLambdaContext


def powertools_line(namespace: str, service: str, rows: int, now: float) -> dict[str, Any]:
    metrics = Metrics(namespace=namespace, service=service)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PredictedRows", unit=MetricUnit.Count, value=rows)
    document: dict[str, Any] = metrics.serialize_metric_set()
    metrics.clear_metrics()
    document["_aws"]["Timestamp"] = int(now * 1000)
    return document


@pytest.mark.parametrize("rows", [1, 1000])
@pytest.mark.parametrize(("namespace", "service"), [("InferenceApi", "predict"), ('odd "%s" ns', "p%d")])
def test_the_line_is_the_emf_document_powertools_writes(namespace: str, service: str, rows: int) -> None:
    # Given the pre-built line for a batch
    metrics = Metrics(namespace=namespace, service=service)
    line = PredictionMetrics(metrics).line(rows, now=1_795_000_000.123)
    # Then it is one JSON object, equal to Powertools' own serialization of the same two metrics
    assert "\n" not in line
    assert json.loads(line) == powertools_line(namespace, service, rows, 1_795_000_000.123)


def test_a_served_prediction_writes_one_metrics_line(
    alice_token: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a warm container (model loaded, so no cache-miss metrics)
    context = FakeLambdaContext()
    event = load_event("predict_alice", alice_token=alice_token)
    assert lambda_handler(event, context)["statusCode"] == 200
    monkeypatch.setattr(predict_app.logger.registered_handler, "stream", sys.stdout)
    capsys.readouterr()
    # When alice predicts
    assert lambda_handler(event, context)["statusCode"] == 200
    # Then stdout holds exactly one EMF document, with both metrics and the batch size
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    assert len(emf) == 1
    names = [m["Name"] for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == ["Predictions", "PredictedRows"]
    assert emf[0]["Predictions"] == [1.0]
    assert emf[0]["PredictedRows"] == [float(len(json.loads(event["body"])["instances"]))]
