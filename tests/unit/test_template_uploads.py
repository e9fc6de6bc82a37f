"""template.yaml's model uploads (docs/tenant-admin.md, decision 0016): the admin function signs
forms for uploads/ only, the registering function reads and deletes uploads and writes models and
nothing else, the bucket's events reach it without a dependency cycle, the upload cap is the
registry's at most, and the registering function's zip has no scikit-learn."""

from __future__ import annotations

from typing import Any

import pytest
from model_runtime import uploads
from samcli.yamlhelper import yaml_parse

from registry.registration import MAX_MODEL_BYTES
from tests.support import TEMPLATE, template_resources
from tests.unit.test_template import as_list, statement_with, statements

BUCKET_ARN = {"Fn::GetAtt": ["ModelBucket", "Arn"]}
UPLOADS = {"Fn::Sub": "${ModelBucket.Arn}/uploads/*"}
MODELS = {"Fn::Sub": "${ModelBucket.Arn}/models/*"}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return template_resources()


def s3_grants(function: dict[str, Any]) -> dict[str, list[Any]]:
    """Each S3 action of the function, with the resources it is granted on."""
    grants: dict[str, list[Any]] = {}
    for statement in statements(function):
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                grants.setdefault(action, []).extend(as_list(statement["Resource"]))
    return grants


def test_the_registering_function_reads_and_deletes_uploads_and_writes_models_only(
    resources: dict[str, Any],
) -> None:
    register = resources["RegisterFunction"]
    assert s3_grants(register) == {
        "s3:GetObject": [UPLOADS, MODELS],
        "s3:DeleteObject": [UPLOADS],
        "s3:DeleteObjectVersion": [UPLOADS],
        "s3:PutObject": [MODELS],
    }
    # Its table items: uploads (claim, finish), mappings (read, and the model pin only), audit
    for statement in statement_with(register, "dynamodb:UpdateItem"):
        keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        assert keys in (["upload#*"], ["tenant#*"])
        if keys == ["tenant#*"]:
            attributes = set(statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
            assert {"status", "tokens_not_before", "api_key", "max_batch"}.isdisjoint(attributes)
    (audit,) = statement_with(register, "dynamodb:PutItem")
    assert audit["Resource"] == {"Fn::GetAtt": ["ActivityTable", "Arn"]}


def test_the_admin_function_signs_upload_forms_for_uploads_only_and_reads_models(
    resources: dict[str, Any],
) -> None:
    grants = s3_grants(resources["AdminFunction"])
    assert grants == {"s3:GetObject": [MODELS], "s3:ListBucket": [BUCKET_ARN], "s3:PutObject": [UPLOADS]}
    (listing,) = statement_with(resources["AdminFunction"], "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/*"]}}


def test_the_buckets_object_created_events_reach_the_registering_function_without_a_cycle(
    resources: dict[str, Any],
) -> None:
    bucket = resources["ModelBucket"]["Properties"]
    # The bucket names no function (a notification naming it would be a dependency cycle)
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    (event,) = resources["RegisterFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"] == {
        "bucket": {"name": [{"Ref": "ModelBucket"}]},
        "object": {"key": [{"prefix": "uploads/"}]},
    }
    # And what is left under uploads/ expires within a day
    rules = bucket["LifecycleConfiguration"]["Rules"]
    (expiry,) = [rule for rule in rules if rule["Prefix"] == "uploads/"]
    assert expiry["ExpirationInDays"] == 1 and expiry["NoncurrentVersionExpirationInDays"] == 1


def test_the_upload_cap_is_a_parameter_within_the_registrys_model_cap(resources: dict[str, Any]) -> None:
    parameters = yaml_parse(TEMPLATE.read_text())["Parameters"]
    cap = parameters["UploadMaxBytes"]
    assert cap["Default"] == uploads.DEFAULT_MAX_BYTES and cap["MaxValue"] <= MAX_MODEL_BYTES
    assert parameters["UploadFormSeconds"]["Default"] == uploads.DEFAULT_FORM_SECONDS
    for name in ("AdminFunction", "RegisterFunction"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["UPLOAD_MAX_BYTES"] == {"Ref": "UploadMaxBytes"}


def test_the_registering_function_gets_no_scikit_learn_layer(resources: dict[str, Any]) -> None:
    layers = resources["RegisterFunction"]["Properties"]["Layers"]
    assert layers == [{"Ref": "ModelServingLayer"}, {"Ref": "RegistryLayer"}]
    assert resources["RegistryLayer"]["Properties"]["ContentUri"] == "layers/registry/"
