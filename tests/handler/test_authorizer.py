"""The REQUEST authorizer (functions/authorizer) and the per-tenant quota plumbing around it:
API keys and tiers made by the operator CLI against moto's API Gateway, and predict's check
that the gateway's tenant is the token's.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from model_runtime.tenant_credentials import TenantCredentials

from functions.authorizer import app as authorizer_app
from functions.predict import app as predict_app
from inferctl.cli import main as inferctl
from inferctl.onboarding import revoke_tokens, set_tenant_status
from local.resources import create_usage_plans_from_template
from tests.forge import assemble, b64url, parts
from tests.support import (
    FAKE_AWS,
    REPO_ROOT,
    FakeLambdaContext,
    Stack,
    assert_problem,
    child_environment,
    current_runtime,
    load_event,
    token_for,
    use_runtime,
)

STACK = "test"  # the stack name the `stack` fixture's resources stand for
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:1234567890/live/POST/api/v1/predict"
ALLOWED = "arn:aws:execute-api:us-east-1:123456789012:1234567890/live/*/api/v1/*"


@pytest.fixture
def tiers(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The template's usage plans in moto, tagged for this stack; tier -> plan id."""
    monkeypatch.setenv("INFERENCE_STACK", STACK)
    return create_usage_plans_from_template(boto3.session.Session(), STACK)


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = inferctl(list(argv), stdout=out)
    use_runtime()
    return code, out.getvalue()


@pytest.fixture
def keyed(tiers: dict[str, str]) -> dict[str, str]:
    """tenant-a with an API key on the standard tier; tenant-b without one."""
    assert cli("set-tier", "tenant-a", "standard")[0] == 0
    return tiers


def apigateway() -> Any:
    return boto3.client("apigateway", region_name="us-east-1")


def plans_of(key_id: str) -> set[str]:
    return {plan["id"] for plan in apigateway().get_usage_plans(keyId=key_id)["items"]}


def authorizer_event(token: str | None) -> dict[str, Any]:
    """A REQUEST authorizer event for predict (`events/authorizer_*.json`), as API Gateway sends it."""
    if token is None:
        return load_event("authorizer_no_token")
    return load_event("authorizer_alice", alice_token=token)


def authorize(token: str | None) -> dict[str, Any]:
    result: dict[str, Any] = authorizer_app.lambda_handler(authorizer_event(token), FakeLambdaContext())
    return result


def assert_unauthorized(token: str | None) -> None:
    with pytest.raises(Exception) as raised:
        authorize(token)
    # API Gateway's contract: exactly this message is a 401 (the UNAUTHORIZED gateway response)
    assert str(raised.value) == "Unauthorized"


# --- allow -----------------------------------------------------------------------------------


def test_valid_token_is_allowed_with_the_tenants_key_and_id(keyed: dict[str, str]) -> None:
    # Given alice's valid token, and tenant-a's API key on the standard plan
    tenant = current_runtime().table.get_tenant("tenant-a")
    assert tenant is not None and tenant.api_key and tenant.usage_tier == "standard"
    # When the gateway asks the authorizer about a predict request
    result = authorize(token_for("alice", "tenant-a"))
    # Then it allows the tenant routes of this stage, for the token's subject
    assert result["principalId"] == "alice"
    (statement,) = result["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ALLOWED}
    # And it names the tenant for predict, and the key that meters it on its usage plan
    assert result["context"]["tenant_id"] == "tenant-a"  # and its data's credentials: see below
    assert set(result["context"]) == {"tenant_id", *TenantCredentials("", "", "").to_context()}
    assert result["usageIdentifierKey"] == tenant.api_key
    key = next(
        k for k in apigateway().get_api_keys(includeValues=True)["items"] if k["value"] == tenant.api_key
    )
    assert plans_of(key["id"]) == {keyed["standard"]}


def test_a_machine_clients_token_is_allowed_for_its_tenant(keyed: dict[str, str]) -> None:
    result = authorize(token_for("mc_0123456789abcdef01234567", "tenant-a"))
    assert result["context"]["tenant_id"] == "tenant-a"  # and its data's credentials: see below
    assert set(result["context"]) == {"tenant_id", *TenantCredentials("", "", "").to_context()}
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"


# --- refuse ----------------------------------------------------------------------------------


def tampered(token: str) -> str:
    header, claims, signature = parts(token)
    return assemble(header, {**claims, "tid": "tenant-b"}, signature)


def alg_none(token: str) -> str:
    _, claims, _ = parts(token)
    return assemble({"alg": "none", "typ": "JWT"}, claims)


def zeroed_signature(token: str) -> str:
    head, body, signature = token.split(".")
    return f"{head}.{body}.{b64url(bytes(len(signature) * 3 // 4))}"


BAD_TOKENS: dict[str, Callable[[], str | None]] = {
    "no-token": lambda: None,
    "garbage": lambda: "not-a-jwt",
    "tampered-claims": lambda: tampered(token_for("alice", "tenant-a")),
    "alg-none": lambda: alg_none(token_for("alice", "tenant-a")),
    "zeroed-signature": lambda: zeroed_signature(token_for("alice", "tenant-a")),
    "expired": lambda: token_for("alice", "tenant-a", now=int(time.time()) - 3600),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_forged_expired_or_missing_tokens_are_401(keyed: dict[str, str], case: str) -> None:
    assert_unauthorized(BAD_TOKENS[case]())


def test_revoked_tokens_are_401(keyed: dict[str, str]) -> None:
    # Given alice's token, then an operator revoking every token of tenant-a
    token = token_for("alice", "tenant-a")
    revoke_tokens(current_runtime(), "tenant-a")
    use_runtime()
    # Then the authorizer refuses it like any bad token
    assert_unauthorized(token)


def assert_denied(result: dict[str, Any]) -> None:
    (statement,) = result["policyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert "usageIdentifierKey" not in result and "context" not in result


def test_a_tenant_without_an_api_key_is_denied(keyed: dict[str, str]) -> None:
    # Given bob's valid token, and tenant-b onboarded without an API key
    tenant = current_runtime().table.get_tenant("tenant-b")
    assert tenant is not None and not tenant.api_key
    # Then the request is denied (403), never served unmetered
    assert_denied(authorize(token_for("bob", "tenant-b")))


def test_a_disabled_tenant_is_denied(keyed: dict[str, str]) -> None:
    set_tenant_status(current_runtime(), "tenant-a", active=False)
    use_runtime()
    assert_denied(authorize(token_for("alice", "tenant-a")))


# --- predict's own check ---------------------------------------------------------------------


def predict_with_authorizer_tenant(tenant_id: str | None, token: str) -> dict[str, Any]:
    event = load_event("predict_alice", alice_token=token)
    if tenant_id is not None:
        event["requestContext"]["authorizer"] = {"tenant_id": tenant_id, "principalId": "alice"}
    response: dict[str, Any] = predict_app.lambda_handler(event, FakeLambdaContext())
    return response


def test_predict_refuses_a_gateway_tenant_other_than_the_tokens(alice_token: str) -> None:
    # Given alice's token, and a gateway context naming tenant-b (a misconfiguration or a stale cache)
    # When predict runs
    response = predict_with_authorizer_tenant("tenant-b", alice_token)
    # Then it refuses the request with the usual 401
    assert_problem(response, 401)
    # And with the gateway naming her own tenant, or no authorizer at all, she is served
    assert predict_with_authorizer_tenant("tenant-a", alice_token)["statusCode"] == 200
    assert predict_with_authorizer_tenant(None, alice_token)["statusCode"] == 200


# --- the CLI's keys and tiers, against moto's API Gateway -------------------------------------


def test_create_tenant_gives_the_tenant_a_key_on_its_tier(tiers: dict[str, str]) -> None:
    # Given a stack with standard and premium plans
    assert set(tiers) == {"standard", "premium"}
    # When an operator onboards tenant-c on the premium tier
    code, out = cli(
        "create-tenant",
        "tenant-c",
        "--model",
        str(REPO_ROOT / "models/model_user_a.pkl"),
        "--trust-pickle",
        "--tier",
        "premium",
    )
    # Then its mapping records a key, and that key is on the premium plan only
    assert code == 0 and "premium tier" in out
    item = current_runtime().dynamodb.get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": "tenant#tenant-c"}}
    )["Item"]
    assert item["usage_tier"] == {"S": "premium"}
    assert plans_of(item["api_key_id"]["S"]) == {tiers["premium"]}
    key = apigateway().get_api_key(apiKey=item["api_key_id"]["S"], includeValue=True)
    assert key["value"] == item["api_key"]["S"] and key["enabled"]


def test_set_tier_moves_the_key_between_plans(keyed: dict[str, str]) -> None:
    # Given tenant-a on the standard tier
    before = current_runtime().table.get_tenant("tenant-a")
    assert before is not None
    key_id = current_runtime().dynamodb.get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": "tenant#tenant-a"}}
    )["Item"]["api_key_id"]["S"]
    # When the operator moves it to premium
    code, out = cli("set-tier", "tenant-a", "premium")
    # Then its key (the same key: cached authorizer answers stay right) is on the premium plan only
    assert code == 0 and "standard -> premium" in out
    assert plans_of(key_id) == {keyed["premium"]}
    after = current_runtime().table.get_tenant("tenant-a")
    assert after is not None and after.usage_tier == "premium" and after.api_key == before.api_key
    # And moving it back works the same way
    assert cli("set-tier", "tenant-a", "standard")[0] == 0
    assert plans_of(key_id) == {keyed["standard"]}


def test_unknown_tier_or_tenant_is_refused_and_writes_nothing(
    keyed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    items_before = current_runtime().dynamodb.scan(TableName=os.environ["TABLE_NAME"])["Items"]
    assert cli("set-tier", "tenant-a", "gold")[0] == 1
    assert "no usage plan for tier 'gold'" in capsys.readouterr().err
    assert cli("set-tier", "tenant-zz", "premium")[0] == 1
    assert "unknown tenant" in capsys.readouterr().err
    model = str(REPO_ROOT / "models/model_user_a.pkl")
    code, _ = cli("create-tenant", "tenant-d", "--model", model, "--trust-pickle", "--tier", "gold")
    assert code == 1
    assert "no usage plan for tier 'gold'" in capsys.readouterr().err
    assert current_runtime().dynamodb.scan(TableName=os.environ["TABLE_NAME"])["Items"] == items_before


def test_set_tier_needs_a_stack(
    demo: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFERENCE_STACK", raising=False)
    assert cli("set-tier", "tenant-a", "premium")[0] == 1
    assert "no stack" in capsys.readouterr().err


# --- cold start: no numpy, no scikit-learn ----------------------------------------------------

HEAVY_MODULES = ("numpy", "sklearn", "scipy", "joblib")
CHILD = r"""
import importlib, json, os, sys
from types import SimpleNamespace

HEAVY = ("numpy", "sklearn", "scipy", "joblib")
module_name, result_path, event_path = sys.argv[1:4]
handler = importlib.import_module(module_name)
result = {"after_import": sorted(n for n in HEAVY if n in sys.modules)}

import boto3
from moto import mock_aws

with mock_aws():
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="imports-test",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    key = boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    os.environ.update(TABLE_NAME="imports-test", SIGNING_KEY_ID=key["KeyMetadata"]["KeyId"])
    dynamodb.put_item(TableName="imports-test", Item={
        "pk": {"S": "tenant#tenant-a"}, "status": {"S": "active"}, "api_key": {"S": "k" * 40},
    })
    from model_runtime.runtime import Runtime
    handler.runtime = Runtime.from_environment()  # the init ran before moto's key existed
    token = handler.runtime.tokens.issue("alice", "tenant-a").access_token
    with open(event_path) as file:
        event = json.load(file)
    event["headers"]["Authorization"] = "Bearer " + token
    context = SimpleNamespace(function_name="authorizer", memory_limit_in_mb=512, aws_request_id="r",
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:a",
                              get_remaining_time_in_millis=lambda: 5000)
    answer = handler.lambda_handler(event, context)
    result["effect"] = answer["policyDocument"]["Statement"][0]["Effect"]
result["after_request"] = sorted(n for n in HEAVY if n in sys.modules)
with open(result_path, "w") as file:
    json.dump(result, file)
"""


@pytest.mark.parametrize(
    ("pythonpath", "module"),
    [
        ([REPO_ROOT / "functions" / "authorizer", REPO_ROOT / "layers" / "model_runtime"], "app"),
        ([REPO_ROOT, REPO_ROOT / "layers" / "model_runtime"], "functions.authorizer.app"),
    ],
    ids=["lambda-layout", "repo-layout"],
)
def test_authorizer_never_imports_numpy_or_sklearn(
    tmp_path: Path, pythonpath: list[Path], module: str
) -> None:
    # Given a fresh interpreter with only the authorizer and the layer package on the path
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(authorizer_event(None)))
    # The init requires both settings; the child points them at moto's table and key afterwards
    env = child_environment(
        pythonpath, "authorizer", **FAKE_AWS, TABLE_NAME="imports-test", SIGNING_KEY_ID="replaced-after-init"
    )
    result_file = tmp_path / "result.json"
    # When it imports the authorizer and authorizes a valid token
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, module, str(result_file), str(event_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(result_file.read_text())
    # Then it allowed the request, and no heavy ML module was loaded at any point
    assert result["effect"] == "Allow"
    assert result["after_import"] == [] and result["after_request"] == []


def test_the_local_stack_names_the_stack_variable_the_cli_reads() -> None:
    # local.serve cannot import the CLI's constant (the layer is not importable yet when it starts)
    from inferctl.usage_plans import STACK_VARIABLE  # noqa: PLC0415
    from local.serve import STACK_VARIABLE as LOCAL_STACK_VARIABLE  # noqa: PLC0415

    assert STACK_VARIABLE == LOCAL_STACK_VARIABLE
