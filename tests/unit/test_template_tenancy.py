"""template.yaml's fair-sharing, edge and observability resources: usage plans per tier, the API's
AUTHORIZER key source and its REQUEST authorizer, the gateway responses clients see when refused
or throttled, the WAF web ACL and its association, and the per-tenant dashboard.

Parsed the way SAM parses it (`!Ref X` is `{"Ref": "X"}`), like tests/unit/test_template.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from model_runtime.errors import Forbidden, ProblemError, ServiceUnavailable, Unauthorized
from model_runtime.http import problem
from samcli.yamlhelper import yaml_parse

from tests.support import EXPECTED_SECURITY_HEADERS, TEMPLATE

TIERS = ("standard", "premium")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return document


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"]
    return found


@pytest.fixture(scope="module")
def api(resources: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = resources["Api"]["Properties"]
    return properties


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def number_parameter(template: dict[str, Any], name: str) -> dict[str, Any]:
    parameter: dict[str, Any] = template["Parameters"][name]
    assert parameter["Type"] == "Number" and parameter["MinValue"] >= 1, name
    return parameter


# --- usage plans and the key source ------------------------------------------------------------


def test_one_usage_plan_per_tier_with_rate_burst_and_daily_quota_parameters(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    plans = of_type(resources, "AWS::ApiGateway::UsagePlan")
    by_tier = {
        tag["Value"]: plan["Properties"]
        for plan in plans.values()
        for tag in plan["Properties"]["Tags"]
        if tag["Key"] == "inference-tier"
    }
    # Then there is a plan per tier, on this API's stage, tagged for the operator CLI
    assert set(by_tier) >= set(TIERS)
    for tier, plan in by_tier.items():
        assert plan["ApiStages"] == [{"ApiId": {"Ref": "Api"}, "Stage": {"Ref": "Api.Stage"}}]
        assert {"Key": "inference-stack", "Value": {"Ref": "AWS::StackName"}} in plan["Tags"]
        # And rate, burst and the daily quota are the operator's parameters
        prefix = tier.capitalize()
        assert plan["Throttle"] == {
            "RateLimit": {"Ref": f"{prefix}RateLimit"},
            "BurstLimit": {"Ref": f"{prefix}BurstLimit"},
        }
        assert plan["Quota"] == {"Limit": {"Ref": f"{prefix}DailyQuota"}, "Period": "DAY"}
        for name in ("RateLimit", "BurstLimit", "DailyQuota"):
            number_parameter(template, prefix + name)
    # And the premium tier allows more than the standard one by default
    for name in ("RateLimit", "BurstLimit", "DailyQuota"):
        standard = template["Parameters"]["Standard" + name]["Default"]
        assert template["Parameters"]["Premium" + name]["Default"] > standard


def test_api_keys_come_from_the_authorizer_and_are_required_on_tenant_routes(
    template: dict[str, Any], resources: dict[str, Any], api: dict[str, Any]
) -> None:
    # Then API Gateway takes each request's key from the authorizer, never from the client
    assert api["ApiKeySourceType"] == "AUTHORIZER"
    auth = api["Auth"]
    assert auth["DefaultAuthorizer"] == "TenantAuthorizer"
    assert auth["ApiKeyRequired"] is True
    # And the authorizer is the REQUEST function, keyed on the Authorization header
    authorizer = auth["Authorizers"]["TenantAuthorizer"]
    assert authorizer["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert authorizer["FunctionPayloadType"] == "REQUEST"
    assert authorizer["Identity"]["Headers"] == ["Authorization"]
    # And its answers are cached no longer than a container caches a tenant mapping
    assert authorizer["Identity"]["ReauthorizeEvery"] == {"Ref": "MappingTtlSeconds"}
    assert template["Parameters"]["MappingTtlSeconds"]["Default"] <= 3600  # API Gateway's maximum
    # And predict and the model card keep the defaults (authorizer + key), login and JWKS are open
    # (predict's two routes are in the API's definition body, without a security of their own)
    for path, methods in api["DefinitionBody"]["paths"].items():
        for method, operation in methods.items():
            assert "security" not in operation, (path, method)
    for name, event in resources["LoginFunction"]["Properties"]["Events"].items():
        assert event["Properties"]["Auth"] == {"Authorizer": "NONE", "ApiKeyRequired": False}, name


def test_authorizer_can_only_read_mappings_and_public_keys(resources: dict[str, Any]) -> None:
    function = resources["AuthorizerFunction"]["Properties"]
    assert function["CodeUri"] == "functions/authorizer/"
    statements = [s for policy in function["Policies"] for s in policy["Statement"]]
    assert {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    } == {
        "dynamodb:GetItem",
        "kms:GetPublicKey",
        "sts:AssumeRole",  # the tenant-data role, for the caller's tenant (test_template_isolation.py)
        "sts:TagSession",
    }
    (read,) = [s for s in statements if s["Action"] == "dynamodb:GetItem"]
    assert read["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["tenant#*", "keyring"]}}
    assert "Events" not in function  # invoked by API Gateway as an authorizer, never routed to


# --- what refused and throttled clients see ----------------------------------------------------


def gateway_response(api: dict[str, Any], kind: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    response = api["GatewayResponses"][kind]
    # API Gateway header values are quoted literals: 'value', with \' for a quote inside
    headers = {name: value[1:-1] for name, value in response["ResponseParameters"]["Headers"].items()}
    body = json.loads(response["ResponseTemplates"]["application/json"])
    return int(response["StatusCode"]), headers, body


def unquote(value: str) -> str:
    return value.replace("\\'", "'")


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("UNAUTHORIZED", 401),
        ("ACCESS_DENIED", 403),
        ("INVALID_API_KEY", 403),
        ("THROTTLED", 429),
        ("QUOTA_EXCEEDED", 429),
        ("WAF_FILTERED", 403),
        ("AUTHORIZER_FAILURE", 503),
        ("AUTHORIZER_CONFIGURATION_ERROR", 503),
    ],
)
def test_gateway_refusals_are_problem_json_with_the_security_headers(
    api: dict[str, Any], kind: str, status: int
) -> None:
    code, headers, body = gateway_response(api, kind)
    assert code == status == body["status"]
    assert headers["Content-Type"] == "application/problem+json"
    assert set(body) == {"type", "title", "status", "detail"}
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert unquote(headers[name]) == value, (kind, name)
    if status in (429, 503):
        assert headers["Retry-After"].isdigit() and int(headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("UNAUTHORIZED", Unauthorized()),
        ("ACCESS_DENIED", Forbidden()),
        ("AUTHORIZER_FAILURE", ServiceUnavailable()),
        ("AUTHORIZER_CONFIGURATION_ERROR", ServiceUnavailable()),  # what a raising authorizer gets
    ],
)
def test_authorizer_refusals_are_the_same_answers_predict_gives(
    api: dict[str, Any], kind: str, error: ProblemError
) -> None:
    # Given predict's own 401 / 403 (model_runtime.errors rendered by model_runtime.http)
    expected = problem(error)
    # Then the gateway's answer to an authorizer refusal is byte for byte the same body and headers
    code, headers, body = gateway_response(api, kind)
    assert code == expected.status
    assert body == json.loads(expected.body)
    for name, value in expected.headers.items():
        assert unquote(headers[name]).replace('\\"', '"') == value, name


# --- WAF ---------------------------------------------------------------------------------------


def rules(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in resources["WebAcl"]["Properties"]["Rules"]}


def test_web_acl_is_on_by_default_and_associated_with_the_stage(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    assert template["Parameters"]["EnableWaf"]["Default"] == "true"
    assert template["Conditions"]["UseWaf"] == {"Fn::Equals": [{"Ref": "EnableWaf"}, "true"]}
    acl = resources["WebAcl"]
    assert acl["Condition"] == "UseWaf"
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert acl["Properties"]["DefaultAction"] == {"Allow": {}}
    association = resources["WebAclAssociation"]
    assert association["Condition"] == "UseWaf"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("/restapis/${Api}/stages/${Api.Stage}")


def rate_rule(resources: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
    rule = rules(resources)[name]
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    match = statement["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}} and match["PositionalConstraint"] == "ENDS_WITH"
    return rule, match["SearchString"]


def test_per_address_rate_rules_on_the_token_endpoint_and_a_looser_one_on_predict(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    token_rule, token_path = rate_rule(resources, "TokenEndpointPerAddress")
    predict_rule, predict_path = rate_rule(resources, "PredictPerAddress")
    assert token_path == "/api/v1/auth/token" and predict_path == "/api/v1/predict"
    token_limit = token_rule["Statement"]["RateBasedStatement"]["Limit"]
    predict_limit = predict_rule["Statement"]["RateBasedStatement"]["Limit"]
    assert token_limit == {"Ref": "WafTokenRateLimit"} and predict_limit == {"Ref": "WafPredictRateLimit"}
    defaults = template["Parameters"]
    assert defaults["WafPredictRateLimit"]["Default"] > defaults["WafTokenRateLimit"]["Default"] >= 10
    # And a blocked address gets a 429 problem with the security headers and Retry-After
    bodies = resources["WebAcl"]["Properties"]["CustomResponseBodies"]
    for rule in (token_rule, predict_rule):
        response = rule["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        body = json.loads(bodies[response["CustomResponseBodyKey"]]["Content"])
        assert body["status"] == 429 and set(body) == {"type", "title", "status", "detail"}
        headers = {h["Name"]: h["Value"] for h in response["ResponseHeaders"]}
        assert {name: headers[name] for name in EXPECTED_SECURITY_HEADERS} == EXPECTED_SECURITY_HEADERS
        assert headers["Retry-After"].isdigit()


def test_known_bad_inputs_and_the_body_size_cap(resources: dict[str, Any]) -> None:
    managed = rules(resources)["KnownBadInputs"]
    assert managed["Statement"]["ManagedRuleGroupStatement"] == {
        "VendorName": "AWS",
        "Name": "AWSManagedRulesKnownBadInputsRuleSet",
    }
    assert managed["OverrideAction"] == {"None": {}}
    size = rules(resources)["BodyOverMaxBodyBytes"]
    statement = size["Statement"]["SizeConstraintStatement"]
    assert statement["FieldToMatch"] == {"Body": {"OversizeHandling": "CONTINUE"}}
    assert statement["ComparisonOperator"] == "GT" and statement["Size"] == {"Ref": "MaxBodyBytes"}
    assert size["Action"] == {"Block": {}}  # answered by the WAF_FILTERED gateway response


# --- observability -------------------------------------------------------------------------------


def dashboard_body(resources: dict[str, Any]) -> dict[str, Any]:
    text = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # What CloudFormation substitutes: ${Name} and ${AWS::...} (never ${!...} here)
    substituted = re.sub(r"\$\{[A-Za-z0-9:.]+\}", "x", text)
    body: dict[str, Any] = json.loads(substituted)
    return body


def test_dashboard_shows_traffic_errors_and_latency_per_tenant_and_the_service_signals(
    resources: dict[str, Any],
) -> None:
    widgets = dashboard_body(resources)["widgets"]
    text = json.dumps(widgets)
    # Per tenant: traffic, errors by kind, p50 and p99 duration
    assert 'MetricName=\\"Requests\\"' in text and "{InferenceApi,service,tenant}" in text
    assert "{InferenceApi,kind,service,tenant}" in text and 'MetricName=\\"Rejected\\"' in text
    assert "'p50'" in text and "'p99'" in text and 'MetricName=\\"Latency\\"' in text
    # And for the service: cold starts, model cache misses, throttles
    assert 'MetricName=\\"ColdStart\\"' in text
    assert '"ModelCacheMiss"' in text
    assert '"Throttles"' in text and "status = '429'" in text
    for widget in widgets:
        assert widget["properties"]["title"]
