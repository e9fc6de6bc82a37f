"""The served request's EMF line is built from a template (the warm path's line); it must be,
character for character, the line the general builder writes for the same request."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from model_runtime.tenant_metrics import (
    CAPTURE_INLINE_BYTES,
    capture_text,
    emf_line,
    history_tail,
    part_line,
    served_line,
)


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


def test_the_served_line_with_its_history_record_is_the_general_line_too() -> None:
    # Given a served request's figures and its history properties
    history = history_tail("req-1", "alice", "0123456789ab", probabilities=True)
    figures: dict[str, Any] = {"timestamp": 1_765_000_000_123, "latency_ms": 0.5, "rows": 3}
    # When its line comes from the template and from the general builder
    fast = served_line("InferenceApi", "predict", "tenant-a", history=history, **figures)
    general = emf_line(
        "InferenceApi", "predict", "tenant-a", status=200, events=[], history=history, **figures
    )
    # Then they are the same text, one JSON document holding the record beside the metrics
    assert fast == general
    document = json.loads(fast)
    assert document["history"] == 1
    assert (document["request_id"], document["sub"], document["model_version"]) == (
        "req-1",
        "alice",
        "0123456789ab",
    )
    assert document["probabilities"] is True and document["PredictedRows"] == 3


def test_a_captured_body_stays_one_line_and_one_document() -> None:
    # Given a request body with line breaks between its tokens, and its answer
    body = '{\r\n  "instances": [[1, 2],\n [3, 4]]\n}'
    # When it is captured into the record's line
    inline, parts = capture_text(body, '{"predictions":[0,1],"model_version":"abc"}')
    line = served_line(
        "InferenceApi",
        "predict",
        "tenant-a",
        timestamp=1,
        latency_ms=1.0,
        rows=2,
        history=history_tail("r", "alice", "abc", probabilities=False) + inline,
    )
    # Then the line has no line break, and holds the request and the answer as JSON
    assert parts == []
    assert "\n" not in line and "\r" not in line
    capture = json.loads(line)["capture"]
    assert capture["request"]["instances"] == [[1, 2], [3, 4]]
    assert capture["response"]["predictions"] == [0, 1]


def test_a_capture_too_large_for_a_log_event_is_split_into_parts_that_rebuild_it() -> None:
    # Given a capture larger than one log line may carry (CloudWatch Logs: 256 KiB per event)
    rows = ",".join(["[1.5,2.5,3.5,4.5]"] * 20_000)
    body, response = f'{{"instances":[{rows}]}}', '{"predictions":[1],"model_version":"abc"}'
    # When it is captured
    inline, parts = capture_text(body, response)
    # Then the record names its size and parts, each part line fits a log event, and the parts
    # rebuild the capture exactly
    assert '"capture":' not in inline and f'"capture_parts":{len(parts)}' in inline
    lines = [part_line("tenant-a", "alice", "r", index, parts) for index in range(len(parts))]
    assert len(parts) > 1 and all(len(line.encode()) < 256 * 1024 - 26 for line in lines)
    rebuilt = b"".join(base64.b64decode(json.loads(line)["data"]) for line in lines)
    assert json.loads(rebuilt) == {"request": json.loads(body), "response": json.loads(response)}
    assert len(rebuilt) > CAPTURE_INLINE_BYTES
