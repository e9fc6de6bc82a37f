"""What every response carries, and what none may carry.

`Api.check` already applies these rules to every reply of the suite; here they are asserted on a
catalogue that reaches each route, each error the functions produce, and the gateway's own
answers, and the checker itself is shown to catch what it guards against.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from email.message import Message

import pytest

from tests.attack.kit import (
    RUNNING_STACK_URL,
    Api,
    Caller,
    Reply,
    assert_problem,
    assert_security_headers,
    from_local_gateway,
)
from tests.forge import b64url_decode

pytestmark = pytest.mark.blackbox

PREDICT, MODEL, TOKEN, JWKS = (
    "/api/v1/predict",
    "/api/v1/model",
    "/api/v1/auth/token",
    "/.well-known/jwks.json",
)
EVIL_ORIGIN = "https://evil.example"

Probe = Callable[[Api, Caller], Reply]

FUNCTION_REPLIES: dict[str, tuple[int, Probe]] = {
    "login-200": (200, lambda api, who: api.request("POST", TOKEN, vars(api.accounts[0]))),
    "login-400": (400, lambda api, who: api.request("POST", TOKEN, b"{", content_type="application/json")),
    "login-401": (
        401,
        lambda api, who: api.request("POST", TOKEN, {"username": f"x-{uuid.uuid4().hex}", "password": "y"}),
    ),
    "login-413": (413, lambda api, who: api.request("POST", TOKEN, b" " * (300 * 1024))),
    "jwks-200": (200, lambda api, who: api.request("GET", JWKS)),
    "model-200": (200, lambda api, who: api.request("GET", MODEL, token=who.token)),
    "model-401": (401, lambda api, who: api.request("GET", MODEL)),
    "predict-200": (
        200,
        lambda api, who: api.request("POST", PREDICT, {"instances": who.rows()}, token=who.token),
    ),
    "predict-400": (400, lambda api, who: api.request("POST", PREDICT, {"instances": []}, token=who.token)),
    "predict-401": (
        401,
        lambda api, who: api.request("POST", PREDICT, {"instances": who.rows()}, token="x.y.z"),
    ),
    "predict-413": (
        413,
        lambda api, who: api.request("POST", PREDICT, b" " * (1024 * 1024 + 1), token=who.token),
    ),
    "predict-415": (
        415,
        lambda api, who: api.request("POST", PREDICT, b"{}", token=who.token, content_type="text/plain"),
    ),
}


@pytest.mark.parametrize("case", list(FUNCTION_REPLIES))
def test_every_function_reply_carries_the_security_headers(api: Api, caller_a: Caller, case: str) -> None:
    status, probe = FUNCTION_REPLIES[case]
    reply = probe(api, caller_a)
    assert reply.status == status, reply.body[:200]
    assert not from_local_gateway(reply)
    assert_security_headers(reply)
    expected_type = "application/problem+json" if status >= 400 else "application/json"
    assert reply.headers.get_content_type() == expected_type


GATEWAY_ERRORS = [
    ("GET", "/"),
    ("GET", "/nope"),
    ("GET", "/api/v1"),
    ("GET", "/api/v2/predict"),
    ("GET", "/API/V1/MODEL"),
    ("GET", PREDICT),
    ("DELETE", PREDICT),
    ("PUT", PREDICT),
    ("PATCH", MODEL),
    ("POST", MODEL),
    ("DELETE", TOKEN),
    ("POST", JWKS),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/../../etc/passwd"),
]


@pytest.mark.parametrize(("method", "path"), GATEWAY_ERRORS, ids=[f"{m} {p}" for m, p in GATEWAY_ERRORS])
def test_unknown_routes_and_methods_get_the_gateways_not_found(
    api: Api, caller_a: Caller, method: str, path: str
) -> None:
    # Given a route or method the template does not declare, even with a valid token
    reply = api.request(method, path, token=caller_a.token)
    # Then the gateway answers itself: 404 problem+json with our headers (the template's
    # MISSING_AUTHENTICATION_TOKEN gateway response, on AWS and `make serve`'s gateway alike);
    # `sam local start-api` (make test-sam-local) keeps API Gateway's raw 403
    if RUNNING_STACK_URL:
        assert reply.status == 403 and reply.json() == {"message": "Missing Authentication Token"}
    else:
        assert reply.status == 404
        assert_security_headers(reply)
        assert_problem(reply)


@pytest.mark.parametrize("path", [PREDICT, MODEL, TOKEN, JWKS])
def test_cors_preflight_from_another_origin_is_not_allowed(api: Api, path: str) -> None:
    # Given a browser on another origin asking whether it may call the API with credentials
    reply = api.request(
        "OPTIONS",
        path,
        headers={
            "Origin": EVIL_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    # Then no CORS permission is granted (no route answers OPTIONS: it is the gateway's not-found)
    assert_no_cors_grant(reply.headers)
    assert reply.status == (403 if RUNNING_STACK_URL else 404)  # sam local start-api: its raw 403


@pytest.mark.parametrize("case", ["login-200", "model-200", "predict-200", "jwks-200", "model-401"])
def test_cross_origin_requests_get_no_allow_origin(api: Api, caller_a: Caller, case: str) -> None:
    # Given the same requests sent by a page on another origin
    _, probe = FUNCTION_REPLIES[case]
    reply = probe(replace(api, extra_headers={"Origin": EVIL_ORIGIN}), caller_a)
    # Then the browser is given no permission to read the answer
    assert_no_cors_grant(reply.headers)


def assert_no_cors_grant(headers: Message) -> None:
    granted = [name for name in headers if name.lower().startswith("access-control-allow-")]
    assert granted == [], granted


def test_jwks_publishes_public_rsa_keys_only(api: Api, caller_a: Caller) -> None:
    keys = api.request("GET", JWKS).json()["keys"]
    assert keys
    for key in keys:
        # No private parameters (RFC 7518 6.3.2), RSA for signatures, 2048 bits at least
        assert not {"d", "p", "q", "dp", "dq", "qi", "oth", "k"} & set(key), sorted(key)
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
        assert len(b64url_decode(key["n"])) * 8 >= 2048
    # And the key that signed a real token is among them
    assert caller_a.header["kid"] in {key["kid"] for key in keys}


@pytest.mark.parametrize(
    "leak",
    [
        'Traceback (most recent call last):\n  File "app.py"',
        "KeyError: 'tid'",
        "botocore.exceptions.ClientError",
        "arn:aws:kms:us-east-1:123456789012:key/abc",
        "models/tenant-a/0708.pkl",
    ],
)
def test_the_reply_checker_catches_leaks(api: Api, leak: str) -> None:
    # The guard that every test relies on, shown not to be vacuous
    message = Message()
    message["Content-Type"] = "application/problem+json"
    body = json.dumps({"type": "x", "title": "x", "status": 400, "detail": leak}).encode()
    with pytest.raises(AssertionError, match="leaks"):
        api.check(Reply(400, message, body, 0.0))


def test_the_reply_checker_catches_missing_security_headers(api: Api) -> None:
    message = Message()
    message["Content-Type"] = "application/json"
    with pytest.raises(AssertionError):
        api.check(Reply(200, message, b"{}", 0.0))
