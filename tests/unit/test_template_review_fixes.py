"""template.yaml against the defects of the 2026-12-06 code review (issue 25): how predict learns a
model is missing, what the auth-failure alarm counts, and the limits that must agree with the code.

Parsed the way SAM parses it (`!Ref X` is `{"Ref": "X"}`), like tests/unit/test_template.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse

from tests.support import REPO_ROOT, TEMPLATE


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return document


def function_actions(template: dict[str, Any], name: str) -> set[str]:
    policies = template["Resources"][name]["Properties"]["Policies"]
    found: set[str] = set()
    for policy in policies:
        for statement in policy["Statement"]:
            action = statement["Action"]
            found |= set(action if isinstance(action, list) else [action])
    return found


def test_predict_cannot_list_the_model_bucket(template: dict[str, Any]) -> None:
    # Decision 0007: predict reads the pinned key and nothing else in S3, so S3 answers a missing
    # model with AccessDenied (which predict treats as missing, tests/handler/test_missing_model_on_aws.py)
    # and a compromised environment cannot enumerate other tenants' model keys.
    # Predict reads models with the tenant-data role's session (decision 0017): that role's S3 grant.
    assert not {a for a in function_actions(template, "PredictFunction") if a.startswith("s3:")}
    role = template["Resources"]["TenantDataRole"]["Properties"]
    s3_actions = {
        s["Action"]
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"].startswith("s3:")
    }
    assert s3_actions == {"s3:GetObject"}
    decision = REPO_ROOT / "docs" / "decisions" / "0007-access-denied-is-a-missing-model.md"
    assert "s3:ListBucket" in decision.read_text()


def emitted(function_dir: str, metric: str) -> bool:
    """Whether the function's handler adds `metric` by name."""
    pattern = re.compile(rf"""name=["']{metric}["']""")
    return any(
        pattern.search(path.read_text()) for path in (REPO_ROOT / "functions" / function_dir).glob("*.py")
    )


def service_of(template: dict[str, Any], function: str) -> str:
    variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    service: str = variables["POWERTOOLS_SERVICE_NAME"]
    return service


def test_the_auth_failure_alarm_counts_every_refused_credential(template: dict[str, Any]) -> None:
    # Given the alarm's metric math
    alarm = template["Resources"]["AuthFailureAlarm"]["Properties"]
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    (total,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    summed = set(re.findall(r"FILL\((\w+), 0\)", total["Expression"]))
    counted = {
        (
            queries[i]["MetricStat"]["Metric"]["MetricName"],
            queries[i]["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
        )
        for i in summed
    }
    # Then it sums forged or expired tokens wherever they are refused (the authorizer in front of
    # predict, and predict), failed logins and failed client authentications
    assert counted == {
        ("RejectedUnauthorized", service_of(template, "PredictFunction")),
        ("AuthorizerUnauthorized", service_of(template, "AuthorizerFunction")),
        ("LoginFailure", service_of(template, "LoginFunction")),
        ("ClientAuthFailure", service_of(template, "LoginFunction")),
    }
    # And each is a metric its function really emits (predict's is the router's Rejected<Error>)
    for metric, function_dir in (
        ("AuthorizerUnauthorized", "authorizer"),
        ("LoginFailure", "login"),
        ("ClientAuthFailure", "login"),
    ):
        assert emitted(function_dir, metric), metric
    router = (REPO_ROOT / "layers" / "model_runtime" / "model_runtime" / "http.py").read_text()
    assert 'f"Rejected{type(error).__name__}"' in router


def test_the_mapping_ttl_fits_the_authorizers_reauthorize_every(template: dict[str, Any]) -> None:
    # API Gateway refuses an authorizer result TTL above 3600 s: a larger MappingTtlSeconds would
    # fail the deploy, so the parameter cannot take one
    ttl = template["Parameters"]["MappingTtlSeconds"]
    assert 0 < ttl["MaxValue"] <= 3600
    auth = template["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["TenantAuthorizer"]
    assert auth["Identity"]["ReauthorizeEvery"] == {"Ref": "MappingTtlSeconds"}
