"""Writes events/*.json: API Gateway REST (payload v1) events for every route and case.

The shape is what API Gateway (and `sam local generate-event apigateway aws-proxy`) delivers.
`<alice-token>`-style placeholders stand where a live token goes: tests substitute one; with
`sam local invoke`, paste a token from the login endpoint. Run: `python scripts/make_events.py`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
WINE_ROWS = [
    [14.23, 1.71, 2.43, 15.6, 127.0, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065.0],
    [12.37, 0.94, 1.36, 10.6, 88.0, 1.98, 0.57, 0.28, 0.42, 1.95, 1.05, 1.82, 520.0],
]


def event(
    method: str,
    path: str,
    body: str | None = None,
    *,
    content_type: str | None = "application/json",
    token: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    all_headers = {
        "Host": "1234567890.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if content_type:
        all_headers["Content-Type"] = content_type
    if token:
        all_headers["Authorization"] = f"Bearer <{token}>"
    all_headers.update(headers or {})
    if body is not None and base64_body:
        body = base64.b64encode(body.encode()).decode()
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/live{path}",
            "stage": "live",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "23/Nov/2026:18:40:00 +0000",  # the same instant as requestTimeEpoch
            "requestTimeEpoch": 1795459200000,
            "accountId": "123456789012",
            "apiId": "1234567890",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def instances(rows: list[list[Any]]) -> str:
    return dumps({"instances": rows})


TOKEN, PREDICT, MODEL = "/api/v1/auth/token", "/api/v1/predict", "/api/v1/model"
ALICE_LOGIN = dumps({"username": "alice", "password": "alice-local-demo"})

ALL: dict[str, dict[str, Any]] = {
    # login
    "login_success": event("POST", TOKEN, ALICE_LOGIN),
    "login_wrong_password": event("POST", TOKEN, dumps({"username": "alice", "password": "wrong-guess"})),
    "login_unknown_user": event("POST", TOKEN, dumps({"username": "mallory", "password": "wrong-guess"})),
    "login_malformed_body": event("POST", TOKEN, '{"username": "alice", "password": '),
    "login_missing_field": event("POST", TOKEN, dumps({"username": "alice"})),
    "login_wrong_content_type": event("POST", TOKEN, ALICE_LOGIN, content_type="text/plain"),
    "login_oversized_password": event("POST", TOKEN, dumps({"username": "alice", "password": "x" * 100_000})),
    "login_form_body": event(
        "POST",
        TOKEN,
        "grant_type=password&username=alice&password=alice-local-demo",
        content_type="application/x-www-form-urlencoded",
    ),
    "login_base64_body": event("POST", TOKEN, ALICE_LOGIN, base64_body=True),
    "jwks": event("GET", "/.well-known/jwks.json", content_type=None),
    # predict
    "predict_alice": event("POST", PREDICT, instances(IRIS_ROWS), token="alice-token"),
    "predict_bob": event("POST", PREDICT, instances(WINE_ROWS), token="bob-token"),
    "predict_no_token": event("POST", PREDICT, instances(IRIS_ROWS)),
    "predict_expired_token": event("POST", PREDICT, instances(IRIS_ROWS), token="expired-token"),
    "predict_oversized_body": event(
        "POST", PREDICT, dumps({"instances": [[0.0] * 4] * 60_000}), token="alice-token"
    ),
    "predict_1001_rows": event("POST", PREDICT, instances([IRIS_ROWS[0]] * 1001), token="alice-token"),
    "predict_wrong_feature_count": event("POST", PREDICT, instances([WINE_ROWS[0]]), token="alice-token"),
    "predict_nan": event("POST", PREDICT, '{"instances":[[5.1,NaN,1.4,0.2]]}', token="alice-token"),
    "predict_tenant_in_query_and_headers": event(
        "POST",
        PREDICT,
        instances(IRIS_ROWS),
        token="alice-token",
        headers={"X-Tenant-Id": "tenant-b", "X-Model-Id": "model_user_b.pkl"},
        query={"tenant_id": "tenant-b", "model": "models/tenant-b/model_user_b.pkl"},
    ),
    "predict_tenant_in_body": event(
        "POST", PREDICT, dumps({"instances": IRIS_ROWS, "tenant_id": "tenant-b"}), token="alice-token"
    ),
    "predict_base64_body": event(
        "POST", PREDICT, instances(IRIS_ROWS), token="alice-token", base64_body=True
    ),
    "predict_wrong_content_type": event(
        "POST", PREDICT, instances(IRIS_ROWS), token="alice-token", content_type="text/csv"
    ),
    "model_card": event("GET", MODEL, content_type=None, token="alice-token"),
}


def authorizer_event(method: str, path: str, token: str | None) -> dict[str, Any]:
    """What API Gateway sends the REQUEST authorizer (functions/authorizer): the request without
    its body, the type and the invoked method's ARN."""
    request = event(method, path, content_type=None, token=token)
    for name in ("body", "isBase64Encoded"):
        request.pop(name)
    arn = f"arn:aws:execute-api:us-east-1:123456789012:1234567890/live/{method}{path}"
    return {"type": "REQUEST", "methodArn": arn, **request}


# Machine clients (OAuth2 client credentials) and the authorizer of the tenant routes.
ALL |= {
    "token_client_credentials": event(
        "POST",
        TOKEN,
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": "Basic <client-basic>"},
    ),
    "authorizer_alice": authorizer_event("POST", PREDICT, "alice-token"),
    "authorizer_no_token": authorizer_event("POST", PREDICT, None),
}


def main() -> None:
    EVENTS.mkdir(exist_ok=True)
    for old in EVENTS.glob("*.json"):
        old.unlink()
    for name, value in ALL.items():
        (EVENTS / f"{name}.json").write_text(json.dumps(value, indent=2) + "\n")
    print(f"wrote {len(ALL)} events to {EVENTS}")


if __name__ == "__main__":
    main()
