"""The served request's EMF line is built from a template (the warm path's line); it must be,
character for character, the line the general builder writes for the same request."""

from __future__ import annotations

import json

import pytest
from model_runtime.tenant_metrics import emf_line, served_line


@pytest.mark.parametrize(
    ("namespace", "service", "tenant_id", "latency_ms", "rows"),
    [
        ("InferenceApi", "predict", "tenant-a", 0.123, 1),
        ("Other NS", "predict-eu", "tenant-b", 1.0, 1000),
        ("InferenceApi", "predict", 'odd "tenant" \\ é', 12345.678, 7),
    ],
)
def test_the_served_line_is_the_general_line_of_a_served_request(
    namespace: str, service: str, tenant_id: str, latency_ms: float, rows: int
) -> None:
    # Given a served request's figures
    timestamp = 1_765_000_000_123
    # When its line comes from the template and from the general builder
    figures = {"timestamp": timestamp, "latency_ms": latency_ms, "rows": rows}
    fast = served_line(namespace, service, tenant_id, **figures)  # type: ignore[arg-type]
    general = emf_line(namespace, service, tenant_id, status=200, events=[], **figures)  # type: ignore[arg-type]
    # Then they are the same text, and valid EMF naming this tenant's rows
    assert fast == general
    document = json.loads(fast)
    assert document["tenant"] == tenant_id
    assert document["PredictedRows"] == rows
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace
