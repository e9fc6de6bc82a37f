"""The per-request metrics of a served prediction, as one pre-built CloudWatch EMF line.

Powertools' `add_metric` + per-invocation flush builds and validates a metric set and serializes
it with `json.dumps` on every request: about as much time as predict itself on the warm path. The
happy path always emits the same two metrics (`Predictions` = 1, `PredictedRows` = the batch), so
their line is a template with two numbers and a timestamp filled in. Its shape is the one
Powertools writes (namespace, `service` dimension, `Count` units), so dashboards and alarms see no
difference; `tests/test_request_metrics.py` parses it as EMF and compares it with Powertools' own.
Every other metric (rejections, cache misses, refusals) still goes through Powertools.
"""

from __future__ import annotations

import json
import sys
import time

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

PREDICTION_METRICS = ("Predictions", "PredictedRows")


def _template(namespace: str, service: str) -> str:
    document = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in PREDICTION_METRICS],
                }
            ],
        },
        "service": service,
        "Predictions": [1.0],
        "PredictedRows": [0.0],
    }
    text = json.dumps(document, separators=(",", ":")).replace("%", "%%")
    return text.replace('"Timestamp":0', '"Timestamp":%d', 1).replace(
        '"PredictedRows":[0.0]', '"PredictedRows":[%d.0]', 1
    )


class PredictionMetrics:
    """Writes the prediction metrics line for `metrics`' namespace and service."""

    def __init__(self, metrics: Metrics) -> None:
        self._template = _template(str(metrics.namespace), str(metrics.service))
        self._disabled = is_metrics_disabled()

    def line(self, rows: int, now: float | None = None) -> str:
        timestamp = int((time.time() if now is None else now) * 1000)
        return self._template % (timestamp, rows)

    def emit(self, rows: int) -> None:
        if not self._disabled:
            sys.stdout.write(self.line(rows) + "\n")
