"""events/*.json are what API Gateway (REST, payload v1) sends: Powertools' own model accepts each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel

from tests.support import REPO_ROOT

EVENT_FILES = sorted((REPO_ROOT / "events").glob("*.json"))


def test_there_are_events_for_every_route() -> None:
    # Given the committed events
    routes = {(e["httpMethod"], e["resource"]) for e in (json.loads(f.read_text()) for f in EVENT_FILES)}
    # Then each route the template serves has at least one
    assert routes == {
        ("POST", "/api/v1/auth/token"),
        ("GET", "/.well-known/jwks.json"),
        ("POST", "/api/v1/predict"),
        ("GET", "/api/v1/model"),
    }


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.stem)
def test_event_is_a_valid_api_gateway_rest_event(path: Path) -> None:
    # Given an event file
    raw = json.loads(path.read_text())
    # When Powertools' API Gateway REST event model parses it
    event = APIGatewayProxyEventModel.model_validate(raw)
    # Then it is valid, and its two request times agree
    request_time = datetime.strptime(raw["requestContext"]["requestTime"], "%d/%b/%Y:%H:%M:%S %z")
    assert event.requestContext.requestTimeEpoch == request_time.astimezone(UTC)
