"""template.yaml's tenant isolation (decision 0017), in both modes: predict's TenancyConfig, the
invocation's tenant id mapped from the authorizer's verified tenant, the TenantDataRole's exact
policy and trust, and both renderings linted (cfn-lint and `sam validate --lint` here; `make
template-lint` adds checkov on both).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from model_runtime.deadlines import CONNECT_TIMEOUT
from model_runtime.table import KEYRING_PK, tenant_pk
from model_runtime.tenant_credentials import CLOCK_MARGIN_SECONDS, TENANT_TAG, session_seconds
from samcli.yamlhelper import yaml_parse

from local.gateway import TENANT_ID_SOURCE, _configs, _functions, _stacks
from scripts.render_isolation_mode import MODES, render
from tests.support import REPO_ROOT, TEMPLATE

PREDICT_ROUTES = (("/api/v1/predict", "post"), ("/api/v1/model", "get"))
TAG = "${aws:PrincipalTag/tenant_id}"
NO_VALUE = {"Ref": "AWS::NoValue"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return document


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def test_isolation_is_per_tenant_by_default_and_shared_is_the_one_alternative(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["TenantIsolation"]
    assert parameter["Default"] == "per-tenant"
    assert parameter["AllowedValues"] == ["per-tenant", "shared"] == list(MODES)
    assert template["Conditions"]["PerTenant"] == {"Fn::Equals": [{"Ref": "TenantIsolation"}, "per-tenant"]}


@pytest.mark.parametrize("mode", MODES)
def test_predict_is_tenant_isolated_exactly_in_per_tenant_mode(template: dict[str, Any], mode: str) -> None:
    predict = template["Resources"]["PredictFunction"]["Properties"]
    assert predict["TenancyConfig"] == {
        "Fn::If": ["PerTenant", {"TenantIsolationMode": "PER_TENANT"}, NO_VALUE]
    }
    # And resolved as SAM resolves the deployed template (the local stack's function configs)
    stacks = _stacks(str(TEMPLATE), {"TenantIsolation": mode})
    assert _configs(_functions(stacks), stacks)["PredictFunction"].multi_tenant is (mode == "per-tenant")
    # And predict knows its mode (an invocation without the token's tenant is refused per-tenant)
    assert predict["Environment"]["Variables"]["TENANT_ISOLATION"] == {"Ref": "TenantIsolation"}
    assert predict["Environment"]["Variables"]["TENANT_DATA_CREDENTIALS"] == "authorizer"


def test_the_invocations_tenant_id_is_the_authorizers_verified_tenant_never_the_clients(
    template: dict[str, Any],
) -> None:
    body = template["Resources"]["Api"]["Properties"]["DefinitionBody"]
    for path, method in PREDICT_ROUTES:
        integration = body["paths"][path][method]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert "${PredictFunction.Arn}" in integration["uri"]["Fn::Sub"]
        # Then in per-tenant mode the invocation's X-Amz-Tenant-Id is the authorizer's tenant_id
        # (the verified token's), and in shared mode no tenant id is sent at all
        mapping = {"integration.request.header.X-Amz-Tenant-Id": "context.authorizer.tenant_id"}
        assert integration["requestParameters"] == {"Fn::If": ["PerTenant", mapping, NO_VALUE]}
        # And no client request property (method.request.*) is mapped anywhere
        assert "method.request" not in str(integration)
    # And the local gateway maps it from the same source
    assert TENANT_ID_SOURCE == "context.authorizer.tenant_id"
    # And predict is routed from nowhere else: no event of its own
    assert "Events" not in template["Resources"]["PredictFunction"]["Properties"]


def test_sam_keeps_the_authorizer_and_key_on_predicts_routes_and_merges_the_others(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from samtranslator.translator.transform import transform  # noqa: PLC0415

    class NoManagedPolicies:
        @staticmethod
        def load() -> dict[str, str]:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    for resource in document["Resources"].values():
        for uri in ("CodeUri", "ContentUri"):  # `sam build` and `sam package` put S3 URIs here
            if uri in (resource.get("Properties") or {}):
                resource["Properties"][uri] = "s3://bucket/key.zip"
    translated = transform(document, {}, NoManagedPolicies())
    paths = translated["Resources"]["Api"]["Properties"]["Body"]["paths"]
    # Then predict's routes keep the REQUEST authorizer and the API key
    for path, method in PREDICT_ROUTES:
        assert paths[path][method]["security"] == [{"TenantAuthorizer": []}, {"api_key": []}]
    # And the other functions' event routes are merged in, login's still open
    assert paths["/api/v1/auth/token"]["post"]["security"] == []
    assert "/api/v1/history" in paths
    # And API Gateway may invoke predict for exactly its two routes
    permissions = {
        name: r["Properties"]["SourceArn"]["Fn::Sub"]
        for name, r in translated["Resources"].items()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["FunctionName"] == {"Ref": "PredictFunction"}
    }
    assert sorted(arn.rpartition("${Api}/")[2] for arn in permissions.values()) == [
        "*/GET/api/v1/model",
        "*/POST/api/v1/predict",
    ]


def test_the_tenant_data_role_reads_one_tenants_mapping_and_models_only(template: dict[str, Any]) -> None:
    role = template["Resources"]["TenantDataRole"]
    found = {s["Sid"]: s for s in statements(role)}
    assert set(found) == {"ReadOwnMapping", "ReadOwnModels"}
    # Then the one mapping item whose key names the session's tenant tag
    mapping = found["ReadOwnMapping"]
    assert (mapping["Effect"], mapping["Action"]) == ("Allow", "dynamodb:GetItem")
    assert mapping["Resource"] == {"Fn::GetAtt": ["InferenceTable", "Arn"]}
    assert mapping["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [tenant_pk(TAG)]}}
    # And only objects under models/<the session's tenant>/ (the ${!...} is Sub's literal ${...})
    models = found["ReadOwnModels"]
    assert (models["Effect"], models["Action"]) == ("Allow", "s3:GetObject")
    assert models["Resource"] == {"Fn::Sub": "${ModelBucket.Arn}/models/${!aws:PrincipalTag/tenant_id}/*"}
    assert "Condition" not in models
    # And the tag is the one the authorizer sets
    assert TAG == "${aws:PrincipalTag/" + TENANT_TAG + "}"


def test_predicts_own_role_reads_no_tenant_data(template: dict[str, Any]) -> None:
    predict = template["Resources"]["PredictFunction"]["Properties"]
    granted = [s for policy in predict["Policies"] for s in policy["Statement"]]
    assert {s["Action"] for s in granted} == {"dynamodb:GetItem", "kms:GetPublicKey"}
    (read,) = [s for s in granted if s["Action"] == "dynamodb:GetItem"]
    assert read["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [KEYRING_PK]}}


def test_only_the_authorizer_may_assume_the_tenant_data_role_and_only_with_a_tenant_tag(
    template: dict[str, Any],
) -> None:
    role = template["Resources"]["TenantDataRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Principal"] == {"AWS": {"Fn::GetAtt": ["AuthorizerFunctionRole", "Arn"]}}
    assert trust["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    # A session without a tenant tag, or with any other tag, cannot be had
    assert trust["Condition"] == {
        "StringLike": {f"aws:RequestTag/{TENANT_TAG}": "?*"},
        "ForAllValues:StringEquals": {"aws:TagKeys": [TENANT_TAG]},
    }
    # And the authorizer's own grant names only roles on this stack's tenant-data path
    authorizer = template["Resources"]["AuthorizerFunction"]["Properties"]
    (vend,) = [
        s
        for p in authorizer["Policies"]
        for s in p["Statement"]
        if s.get("Sid") == "VendOneTenantsCredentials"
    ]
    assert vend["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert vend["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/tenant-data/*"
    }
    assert role["Path"] == {"Fn::Sub": "/${AWS::StackName}/tenant-data/"}
    assert authorizer["Environment"]["Variables"]["TENANT_DATA_ROLE_ARN"] == {
        "Fn::GetAtt": ["TenantDataRole", "Arn"]
    }


def test_vended_sessions_outlive_the_authorizer_cache_and_predicts_timeout(template: dict[str, Any]) -> None:
    predict_timeout = template["Resources"]["PredictFunction"]["Properties"].get(
        "Timeout", template["Globals"]["Function"]["Timeout"]
    )
    authorizer = template["Resources"]["AuthorizerFunction"]["Properties"]["Environment"]["Variables"]
    assert authorizer["PREDICT_TIMEOUT_SECONDS"] == predict_timeout
    # The longest session the authorizer may ask for (authorizer TTL at its maximum) is allowed
    longest_ttl = template["Parameters"]["MappingTtlSeconds"]["MaxValue"]
    needed = longest_ttl + predict_timeout + CLOCK_MARGIN_SECONDS
    assert (
        session_seconds(needed) <= template["Resources"]["TenantDataRole"]["Properties"]["MaxSessionDuration"]
    )
    assert session_seconds(needed) - needed > CONNECT_TIMEOUT  # and may be handed out at all


@pytest.mark.parametrize("mode", MODES)
def test_both_modes_pass_cfn_lint_and_sam_validate(mode: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"template.{mode}.yaml"
    rendered.write_text(render(mode, TEMPLATE.read_text()))
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")} | {
        "SAM_CLI_TELEMETRY": "0"
    }
    for argv in (
        [bin_dir / "cfn-lint", rendered],
        [bin_dir / "sam", "validate", "--lint", "--template", rendered],
    ):
        result = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=REPO_ROOT,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
