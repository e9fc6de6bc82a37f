"""Inference history in tests: predict's lines, delivered to the writer as a CloudWatch Logs
subscription delivers them, and the history function called as API Gateway calls it."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from model_runtime.history import HistoryRuntime
from model_runtime.settings import read_settings

from functions.history import app as history_app
from functions.history_writer import app as writer_app
from functions.predict import app as predict_app
from tests.support import FakeLambdaContext, aws_session, load_event


def fresh_history_runtimes(monkeypatch: pytest.MonkeyPatch) -> HistoryRuntime:
    """New container state for the writer and the history function (settings read now)."""
    runtime = HistoryRuntime(read_settings(), session=aws_session())
    monkeypatch.setattr(writer_app, "runtime", runtime)
    monkeypatch.setattr(history_app, "runtime", HistoryRuntime(read_settings(), session=aws_session()))
    return runtime


def subscription_event(messages: list[str], log_group: str = "/aws/lambda/predict") -> dict[str, Any]:
    """What CloudWatch Logs hands a subscribed Lambda function: base64 of gzip of a JSON document."""
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": "2026/12/06/[$LATEST]0123456789abcdef",
        "subscriptionFilters": ["history"],
        "logEvents": [
            {"id": str(index), "timestamp": 1_765_000_000_000 + index, "message": message}
            for index, message in enumerate(messages)
        ],
    }
    data = base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
    return {"awslogs": {"data": data}}


def history_lines(output: str) -> list[str]:
    """The lines the subscription filter selects (`{ ($.history = 1) || ($.history = 2) }`)."""
    selected = []
    for raw in output.splitlines():
        try:
            document = json.loads(raw)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("history") in (1, 2):
            selected.append(raw)
    return selected


def predict(
    token: str, capsys: pytest.CaptureFixture[str], *, body: str | None = None, request_id: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """predict's response to `token`'s request, and the history lines it logged."""
    event = load_event("predict_alice", alice_token=token)
    event["requestContext"]["requestId"] = request_id or FakeLambdaContext().aws_request_id
    if body is not None:
        event["body"] = body
    capsys.readouterr()
    response = predict_app.lambda_handler(event, FakeLambdaContext())
    return response, history_lines(capsys.readouterr().out)


def deliver(lines: list[str]) -> dict[str, int]:
    """The writer's outcome counts for one subscription delivery of `lines`."""
    outcome: dict[str, int] = writer_app.lambda_handler(subscription_event(lines), FakeLambdaContext())
    return outcome


def get_history(
    token: str, *, query: dict[str, str] | None = None, request_id: str | None = None, tenant: str = ""
) -> dict[str, Any]:
    """The history function's response to `token` (an authorizer context naming `tenant`, if given)."""
    path = "/api/v1/history" + (f"/{request_id}" if request_id is not None else "")
    event = load_event("predict_alice", alice_token=token)
    event |= {
        "resource": "/api/v1/history/{request_id}" if request_id is not None else "/api/v1/history",
        "path": path,
        "httpMethod": "GET",
        "body": None,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"request_id": request_id} if request_id is not None else None,
    }
    if tenant:
        event["requestContext"]["authorizer"] = {"tenant_id": tenant}
    response: dict[str, Any] = history_app.lambda_handler(event, FakeLambdaContext())
    return response
