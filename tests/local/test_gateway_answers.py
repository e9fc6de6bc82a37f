"""The local gateway's answers when an authorizer or a function fails, over HTTP.

The template's routes are served by `local.gateway` in this process with stand-in handlers that
fail on purpose (no moto, no stack): API Gateway answers a failed authorizer with its authorizer
failure response and a failed function with DEFAULT_5XX, each customised by template.yaml, never
with SAM's bare `{"message": "Internal server error"}` 502.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from local.gateway import Gateway, LambdaContext, build_gateway, gateway_responses_from_template
from local.resources import TEMPLATE
from tests.support import EXPECTED_SECURITY_HEADERS

pytestmark = pytest.mark.blackbox

# What each stand-in does, by the bearer token the request carries.
ALLOW = "allow"


def authorizer(event: dict[str, Any], _: LambdaContext) -> dict[str, Any]:
    token = (event.get("headers") or {}).get("Authorization", "").removeprefix("Bearer ")
    RECEIVED["authorizer"].append(event["requestContext"]["requestTimeEpoch"])
    if token == "raises":
        raise ConnectionError("the dependency is down")  # what an uncaught EndpointConnectionError is
    if token == "no-policy":
        return {"principalId": "x"}
    if token == "unauthorized":
        raise Exception("Unauthorized")  # the message API Gateway answers with its 401
    effect = "Allow" if token.startswith(ALLOW) else "Deny"
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}
    return {
        "principalId": "x",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": {"tenant_id": "tenant-a"},
        "usageIdentifierKey": "key",
    }


# requestTimeEpoch of the events the stand-ins saw, by function; two requests that meet inside
RECEIVED: dict[str, list[int]] = {"authorizer": [], "predict": []}
MEETING = threading.Barrier(2, timeout=10)


def predict(event: dict[str, Any], _: LambdaContext) -> dict[str, Any]:
    token = (event.get("headers") or {}).get("Authorization", "").removeprefix("Bearer ")
    RECEIVED["predict"].append(event["requestContext"]["requestTimeEpoch"])
    if token == "allow-and-meet":
        MEETING.wait()  # raises BrokenBarrierError (a 5xx) unless another request is in here too
    if token == "allow-but-predict-raises":
        raise RuntimeError("a bug")
    if token == "allow-but-predict-answers-garbage":
        return {"not": "a proxy response"}
    headers = EXPECTED_SECURITY_HEADERS | {"Content-Type": "application/json"}
    return {"statusCode": 200, "headers": headers, "body": json.dumps({"predictions": [0]})}


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    handlers = {
        "AuthorizerFunction": authorizer,
        "PredictFunction": predict,
        "LoginFunction": predict,
        "HistoryFunction": predict,
        "AdminFunction": predict,
    }
    with build_gateway(str(TEMPLATE), handlers, port=0).start_in_thread() as running:
        yield running


def call(gateway: Gateway, token: str) -> requests.Response:
    return requests.post(
        f"{gateway.url}/api/v1/predict",
        json={"instances": [[1.0]]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def assert_template_response(reply: requests.Response, kind: str) -> None:
    expected = gateway_responses_from_template(str(TEMPLATE))[kind]
    assert reply.status_code == expected.status
    assert reply.json() == json.loads(expected.body)
    assert reply.headers["Content-Type"] == "application/problem+json"
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get(name) == value, name


def test_the_stand_ins_serve_an_allowed_request(gateway: Gateway) -> None:
    reply = call(gateway, ALLOW)
    assert reply.status_code == 200 and reply.json() == {"predictions": [0]}


@pytest.mark.parametrize("token", ["raises", "no-policy"])
def test_a_failing_authorizer_is_the_templates_authorizer_error(gateway: Gateway, token: str) -> None:
    # Given an authorizer that raises (a dependency down) or answers without a policy
    reply = call(gateway, token)
    # Then the client gets the template's response to an authorizer error (API Gateway's
    # AUTHORIZER_CONFIGURATION_ERROR, else AUTHORIZER_FAILURE): a 503 problem+json with Retry-After
    defined = gateway_responses_from_template(str(TEMPLATE))
    kind = next(k for k in ("AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE") if k in defined)
    assert_template_response(reply, kind)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"].isdigit()


def test_an_authorizers_unauthorized_is_the_templates_401(gateway: Gateway) -> None:
    assert_template_response(call(gateway, "unauthorized"), "UNAUTHORIZED")


def test_an_authorizers_deny_is_the_templates_403(gateway: Gateway) -> None:
    assert_template_response(call(gateway, "deny"), "ACCESS_DENIED")


@pytest.mark.parametrize("token", ["allow-but-predict-raises", "allow-but-predict-answers-garbage"])
def test_a_failing_function_is_the_templates_default_5xx(gateway: Gateway, token: str) -> None:
    # Given an authorized request whose function raises, or answers something not a proxy response
    reply = call(gateway, token)
    # Then the gateway's answer is the template's DEFAULT_5XX, never SAM's bare 502
    assert_template_response(reply, "DEFAULT_5XX")


def test_the_events_say_when_the_gateway_received_the_request(gateway: Gateway) -> None:
    # Given two requests, a second apart
    RECEIVED["authorizer"].clear()
    RECEIVED["predict"].clear()
    sent = []
    for _ in range(2):
        sent.append(time.time_ns() // 1_000_000)
        assert call(gateway, ALLOW).status_code == 200
        time.sleep(1)
    # Then the authorizer's and the function's events carry each request's own receipt time, in
    # epoch milliseconds, as API Gateway's do (the functions' deadlines count from it), not SAM's
    # one fixed time
    assert RECEIVED["authorizer"] == RECEIVED["predict"]
    for received, before in zip(RECEIVED["predict"], sent, strict=True):
        assert before <= received <= before + 500


def test_concurrent_requests_to_one_function_run_concurrently(gateway: Gateway) -> None:
    # Given two requests whose function waits until the other one is inside it too
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: call(gateway, "allow-and-meet"), range(2)))
    # Then both are answered: neither waited for the other to finish, as on Lambda, where each
    # concurrent request has an execution environment of its own
    assert [reply.status_code for reply in replies] == [200, 200]
