"""The local gateway runs a tenant-isolated function as Lambda does (decision 0017): one execution
environment per tenant id, never shared, the tenant id taken from the authorizer's context as the
template maps it, never from a client's X-Amz-Tenant-Id header.

Predict is stood in for by a probe module (a file loaded like any handler, `LazyHandler`) that
answers with an id drawn when its module was imported: the same id means the same environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.gateway import Gateway, LambdaContext, LazyHandler, build_gateway
from tests.support import EXPECTED_SECURITY_HEADERS, TEMPLATE

pytestmark = pytest.mark.blackbox

PROBE = """
import json, uuid

ENVIRONMENT = uuid.uuid4().hex  # drawn once per import: once per execution environment


def lambda_handler(event, context):
    body = {"environment": ENVIRONMENT, "module": __name__, "tenant_id": context.tenant_id}
    return {"statusCode": 200, "headers": HEADERS, "body": json.dumps(body)}
"""


def authorizer(event: dict[str, Any], _: LambdaContext) -> dict[str, Any]:
    """Allows any token, naming the tenant the token names (the real one verifies it)."""
    tenant = (event.get("headers") or {}).get("Authorization", "").removeprefix("Bearer ")
    statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
    return {
        "principalId": tenant,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": {"tenant_id": tenant},
    }


def other(_: dict[str, Any], __: LambdaContext) -> dict[str, Any]:
    return {"statusCode": 204, "headers": EXPECTED_SECURITY_HEADERS, "body": ""}


def start(tmp_path: Path, mode: str) -> Gateway:
    probe = tmp_path / "probe.py"
    probe.write_text(f"HEADERS = {json.dumps(EXPECTED_SECURITY_HEADERS)}\n{PROBE}")
    handlers = {
        "AuthorizerFunction": authorizer,
        "PredictFunction": LazyHandler(f"probe_{mode.replace('-', '_')}", "lambda_handler", str(probe)),
        "LoginFunction": other,
        "HistoryFunction": other,
        "AdminFunction": other,
    }
    gateway = build_gateway(str(TEMPLATE), handlers, port=0, parameter_overrides={"TenantIsolation": mode})
    return gateway.start_in_thread()


@pytest.fixture(scope="module")
def per_tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with start(tmp_path_factory.mktemp("per-tenant"), "per-tenant") as running:
        yield running


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with start(tmp_path_factory.mktemp("shared"), "shared") as running:
        yield running


def served(gateway: Gateway, tenant: str, **headers: str) -> dict[str, Any]:
    reply = requests.post(
        f"{gateway.url}/api/v1/predict",
        json={"instances": [[1.0]]},
        headers={"Authorization": f"Bearer {tenant}", **headers},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def test_each_tenant_gets_environments_of_its_own_and_b_never_reaches_as(per_tenant: Gateway) -> None:
    # Given tenant-a served first
    first_a = served(per_tenant, "tenant-a")
    # When tenant-b, then tenant-a again, are served
    b = served(per_tenant, "tenant-b")
    second_a = served(per_tenant, "tenant-a")
    # Then tenant-b ran in an environment of its own, never in the one that served tenant-a
    assert b["environment"] != first_a["environment"]
    assert second_a["environment"] == first_a["environment"]
    # And each invocation named its tenant, as Lambda's context does in tenant isolation mode
    assert (first_a["tenant_id"], b["tenant_id"]) == ("tenant-a", "tenant-b")
    assert first_a["module"] != b["module"]


def test_a_clients_tenant_id_header_changes_nothing(per_tenant: Gateway) -> None:
    # Given tenant-a's own environment
    own = served(per_tenant, "tenant-a")
    # When tenant-a's caller sends X-Amz-Tenant-Id naming tenant-c (or tenant-b)
    for claimed in ("tenant-c", "tenant-b"):
        answer = served(per_tenant, "tenant-a", **{"X-Amz-Tenant-Id": claimed})
        # Then the invocation is still tenant-a's, in tenant-a's environment
        assert (answer["tenant_id"], answer["environment"]) == ("tenant-a", own["environment"])


def test_shared_mode_runs_one_environment_and_names_no_tenant(shared: Gateway) -> None:
    a = served(shared, "tenant-a")
    b = served(shared, "tenant-b", **{"X-Amz-Tenant-Id": "tenant-b"})
    assert a["environment"] == b["environment"]
    assert a["tenant_id"] is None and b["tenant_id"] is None
