"""template.yaml keeps the security properties the design depends on.

The template is parsed the way SAM parses it (`!Ref X` becomes `{"Ref": "X"}`, `!GetAtt A.B`
becomes `{"Fn::GetAtt": ["A", "B"]}`), so these tests read the same structure CloudFormation gets.
"""

from __future__ import annotations

from typing import Any

import pytest
from model_runtime import table
from model_runtime.tokens import SIGNING_KEY_TAG
from samcli.yamlhelper import yaml_parse

from tests.support import REPO_ROOT, TEMPLATE, template_resources

TABLE_ARN = {"Fn::GetAtt": ["InferenceTable", "Arn"]}
MODELS_PREFIX_ARN = {"Fn::Sub": "${ModelBucket.Arn}/models/*"}
WRITE_VERBS = ("Put", "Update", "Delete", "Write", "BatchWrite", "Create", "Sign", "Encrypt", "Decrypt")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return document


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return template_resources()


def functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    """The function's IAM statements. Only inline statements are allowed: a managed policy or a
    SAM policy template would grant more than these tests can see."""
    policies = function["Properties"]["Policies"]
    assert all(isinstance(policy, dict) and set(policy) == {"Statement"} for policy in policies)
    return [statement for policy in policies for statement in policy["Statement"]]


def actions(function: dict[str, Any]) -> set[str]:
    return {action for statement in statements(function) for action in as_list(statement["Action"])}


def statement_with(function: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in statements(function) if action in as_list(s["Action"])]


# --- runtime ---------------------------------------------------------------------------------


def test_functions_run_python312_on_x86_64(template: dict[str, Any], resources: dict[str, Any]) -> None:
    # Given the template's Globals and functions
    globals_ = template["Globals"]["Function"]
    # Then every function runs python3.12 on x86_64 (what the layer is built for), set once in Globals
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["x86_64"]
    for name, function in functions(resources).items():
        assert "Runtime" not in function["Properties"], name
        assert "Architectures" not in function["Properties"], name
    layer = resources["ModelRuntimeLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == ["x86_64"]


# --- data at rest ----------------------------------------------------------------------------


def test_table_is_on_demand_encrypted_recoverable_and_expires_counters(resources: dict[str, Any]) -> None:
    # Given the table of users, tenants, attempt counters and keys
    table = resources["InferenceTable"]
    properties = table["Properties"]
    # Then it scales on demand, is encrypted, has point-in-time recovery, survives stack deletion
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    # And TTL removes attempt counters by the attribute model_runtime.table writes
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_model_bucket_is_private_versioned_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    # Given the tenants' model bucket and its policy
    bucket = resources["ModelBucket"]
    properties = bucket["Properties"]
    # Then it is versioned, encrypted by default, retained, and blocks every kind of public access
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse")
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "Retain"
    # And its policy refuses any request not made over TLS, on the bucket and on every object
    policies = [r for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"]
    (policy,) = [p for p in policies if p["Properties"]["Bucket"] == {"Ref": "ModelBucket"}]
    denies = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 1
    (deny,) = denies
    assert deny["Principal"] == "*"
    assert as_list(deny["Action"]) == ["s3:*"]
    assert {"Fn::GetAtt": ["ModelBucket", "Arn"]} in deny["Resource"]
    assert {"Fn::Sub": "${ModelBucket.Arn}/*"} in deny["Resource"]


def test_signing_key_is_an_asymmetric_rsa_signing_key(resources: dict[str, Any]) -> None:
    # Given the token signing key
    key = resources["SigningKey"]
    properties = key["Properties"]
    # Then it is RSA 2048 for signing (RS256), retained, and tagged for the functions' policies
    assert properties["KeySpec"] == "RSA_2048"
    assert properties["KeyUsage"] == "SIGN_VERIFY"
    assert key["DeletionPolicy"] == "Retain"
    assert {"Key": SIGNING_KEY_TAG, "Value": {"Ref": "AWS::StackName"}} in properties["Tags"]


# --- least privilege -------------------------------------------------------------------------


def test_no_function_policy_uses_wildcard_actions(resources: dict[str, Any]) -> None:
    # Given every function's policy
    for name, function in functions(resources).items():
        # Then each action names one API call, and every statement allows (no surprises in Deny logic)
        for action in actions(function):
            assert "*" not in action, (name, action)
        assert all(s["Effect"] == "Allow" for s in statements(function)), name


def test_login_policy_reads_users_writes_only_counters_and_signs(resources: dict[str, Any]) -> None:
    # Given the login function's policy
    login = resources["LoginFunction"]
    # Then it can do exactly these things
    assert actions(login) == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "kms:Sign",
        "kms:GetPublicKey",
    }
    # And it reads items of its own table only
    (read,) = statement_with(login, "dynamodb:GetItem")
    assert read["Resource"] == TABLE_ARN
    # And every write is limited to the failed-login counters (attempts#<username>)
    for action in ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"):
        (write,) = statement_with(login, action)
        assert write["Resource"] == TABLE_ARN
        assert write["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["attempts#*"]}}
    # And it signs only with keys carrying this stack's signing-key tag
    for action in ("kms:Sign", "kms:GetPublicKey"):
        (sign,) = statement_with(login, action)
        assert sign["Condition"] == {
            "StringEquals": {f"aws:ResourceTag/{SIGNING_KEY_TAG}": {"Ref": "AWS::StackName"}}
        }


def test_predict_policy_is_read_only_and_cannot_sign(resources: dict[str, Any]) -> None:
    # Given the predict function's policy
    predict = resources["PredictFunction"]
    granted = actions(predict)
    # Then it holds no write action of any service, no read of tenant data (the authorizer's
    # vended credentials read it: tests/unit/test_template_isolation.py), and cannot sign a token
    assert granted == {"dynamodb:GetItem", "kms:GetPublicKey"}
    for action in granted:
        assert not action.split(":", 1)[1].startswith(WRITE_VERBS), action
    assert "kms:Sign" not in granted
    (read,) = statement_with(predict, "dynamodb:GetItem")
    assert read["Resource"] == TABLE_ARN
    # And only the public halves of this stack's tagged keys
    (keys,) = statement_with(predict, "kms:GetPublicKey")
    assert keys["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/{SIGNING_KEY_TAG}": {"Ref": "AWS::StackName"}}
    }


def test_predict_reads_only_the_key_ring_with_its_own_role(resources: dict[str, Any]) -> None:
    # Given predict's one DynamoDB statement
    (read,) = statement_with(resources["PredictFunction"], "dynamodb:GetItem")
    assert read["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [table.KEYRING_PK]}}
    # Then no tenant mapping, user (password hash) or login attempt counter is among its keys
    keys = read["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    for other in (table.tenant_pk("tenant-a"), table.user_pk("alice"), table.attempts_pk("alice")):
        assert other not in keys


def test_model_runtimes_are_predicts_alone_and_scikit_learn_is_opt_in(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # Given the layers: the shared one in Globals, the model runtimes on predict only
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "ModelRuntimeLayer"}]
    assert "Layers" not in resources["LoginFunction"]["Properties"]
    assert template["Resources"]["PredictFunction"]["Properties"]["Layers"] == [
        {"Ref": "ModelServingLayer"},
        {"Fn::If": ["SklearnRuntime", {"Ref": "SklearnRuntimeLayer"}, {"Ref": "AWS::NoValue"}]},
    ]
    # Then the scikit-learn layer exists only when the parameter turns it on (off by default)
    assert template["Parameters"]["EnableSklearnRuntime"]["Default"] == "false"
    assert template["Resources"]["SklearnRuntimeLayer"]["Condition"] == "SklearnRuntime"

    # And what each layer installs: no ML in the shared one, no scikit-learn or scipy in ONNX's
    def pins(layer: str) -> set[str]:
        text = (REPO_ROOT / "layers" / layer / "requirements.txt").read_text()
        return {line.split("==")[0].lower() for line in text.splitlines() if "==" in line}

    ml = {"numpy", "scipy", "scikit-learn", "joblib", "onnxruntime", "skops"}
    assert not pins("model_runtime") & ml
    assert pins("model_serving") == {"numpy", "onnxruntime"}
    assert {"scikit-learn", "scipy", "skops"} <= pins("sklearn_runtime")


# --- operations ------------------------------------------------------------------------------


def test_every_function_has_a_log_group_with_retention(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # Given the template's log groups
    log_groups = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    retention = template["Parameters"]["LogRetentionDays"]
    assert retention["Default"] in retention["AllowedValues"]
    for name in functions(resources):
        # Then each function's /aws/lambda group is declared (so it is not created by Lambda without
        # retention) and keeps logs for the operator's retention
        (group,) = [g for g in log_groups if g["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_outputs_give_operators_what_they_need(template: dict[str, Any]) -> None:
    # Given the stack outputs
    outputs = template["Outputs"]
    # Then the API URL and the resources the operator CLI works on are there
    assert {"ApiUrl", "TableName", "ModelBucketName", "SigningKeyId"} <= set(outputs)
    assert outputs["TableName"]["Value"] == {"Ref": "InferenceTable"}
    assert outputs["ModelBucketName"]["Value"] == {"Ref": "ModelBucket"}
    assert outputs["SigningKeyId"]["Value"] == {"Ref": "SigningKey"}
    assert "${Api}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]


def test_api_throttles_every_route_from_parameters(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # Given the API and the operator's throttling parameters
    settings = resources["Api"]["Properties"]["MethodSettings"]
    # Then one method setting throttles all resources and methods with those parameters
    assert {
        "ResourcePath": "/*",
        "HttpMethod": "*",
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    } in settings
    for parameter in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
        assert template["Parameters"][parameter]["Type"] == "Number"
        assert template["Parameters"][parameter]["MinValue"] >= 1
    # And every route is on that API, not on an implicit one without throttling; the only other
    # event is the model bucket's Object Created rule of the registering function
    for name, function in functions(resources).items():
        for event in function["Properties"].get("Events", {}).values():  # the authorizer has none
            if event["Type"] == "EventBridgeRule":
                assert name == "RegisterFunction"
                continue
            assert event["Type"] == "Api", name
            assert event["Properties"]["RestApiId"] == {"Ref": "Api"}, name
