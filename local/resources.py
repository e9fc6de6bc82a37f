"""The template's stateful resources and function environments, outside CloudFormation.

Both the tests (moto in-process) and the local stack (moto's server) build the table, bucket and
signing key from `template.yaml`'s own resource definitions, so neither can drift from what is
deployed. `function_environments` resolves each function's `Environment` (Globals included) the
way CloudFormation would, given the physical names of those resources; the local stack exports
it to its in-process handlers and writes it as an env-vars file for `sam local start-api`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from samcli.yamlhelper import yaml_parse

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
# moto's account and the region the local stack and the tests use.
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"


# The tag the functions' IAM policies match to find the operator's signing keys.
@dataclass(frozen=True)
class ResourceNames:
    table_name: str
    bucket: str
    key_id: str
    activity_table: str = ""
    cursor_key_id: str = ""
    tenant_data_role_arn: str = ""

    def physical_ids(self) -> dict[str, str]:
        """What `!Ref` of each stateful resource's logical id returns."""
        return {
            "InferenceTable": self.table_name,
            "ModelBucket": self.bucket,
            "SigningKey": self.key_id,
            "ActivityTable": self.activity_table,
            "HistoryCursorKey": self.cursor_key_id,
        }


def load_template(template: Path = TEMPLATE) -> dict[str, Any]:
    """The template, parsed the way SAM parses it (intrinsic tags become `{"Ref": ...}` etc.);
    a copy the caller may change."""
    return copy.deepcopy(_parsed(template.read_text()))


# Parsing the template takes about 0.3 s (SAM's YAML loader, pure Python) and every test that
# builds the moto resources does it: each text is parsed once per process, and copied (~5 ms).
@cache
def _parsed(text: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(text)
    return document


def template_resources(template: Path = TEMPLATE) -> dict[str, Any]:
    resources: dict[str, Any] = load_template(template)["Resources"]
    return resources


def create_resources_from_template(
    session: boto3.session.Session, prefix: str = "test", template: Path = TEMPLATE
) -> ResourceNames:
    """Create the table, bucket and signing key with the template's own properties.

    Only the properties that need a real AWS account (names, policies) are left out, so a change
    to the key schema, TTL attribute or key spec in the template reaches every test. `prefix`
    stands in for the stack name: it names the table and is the signing key's tag value.
    """
    resources = template_resources(template)
    table_name = _create_table(session, f"{prefix}-inference", resources["InferenceTable"]["Properties"])

    bucket_props = resources["ModelBucket"]["Properties"]
    s3 = session.client("s3")
    bucket = f"{prefix}-models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=bucket_props["VersioningConfiguration"])
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=bucket_props["PublicAccessBlockConfiguration"]
    )

    key = resources["SigningKey"]["Properties"]
    kms = session.client("kms")
    key_id = kms.create_key(
        KeySpec=key["KeySpec"],
        KeyUsage=key["KeyUsage"],
        Description=key["Description"],
        Tags=[{"TagKey": tag["Key"], "TagValue": prefix} for tag in key["Tags"]],
    )["KeyMetadata"]["KeyId"]
    activity_table, cursor_key_id = _create_history_resources(session, prefix, resources)
    names = ResourceNames(table_name, bucket, key_id, activity_table, cursor_key_id)
    role_arn = _create_tenant_data_role(session, prefix, resources["TenantDataRole"]["Properties"], names)
    return dataclasses.replace(names, tenant_data_role_arn=role_arn)


def tenant_data_policy(names: ResourceNames, template: Path = TEMPLATE) -> dict[str, Any]:
    """The TenantDataRole's policy with this stack's table and bucket ARNs; its IAM policy
    variables (`${aws:PrincipalTag/tenant_id}`) stay as IAM evaluates them, per session."""
    (policy,) = template_resources(template)["TenantDataRole"]["Properties"]["Policies"]
    arns = {
        "InferenceTable.Arn": f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{names.table_name}",
        "ModelBucket.Arn": f"arn:aws:s3:::{names.bucket}",
    }

    def resolved(value: Any) -> Any:
        if isinstance(value, list):
            return [resolved(item) for item in value]
        if not isinstance(value, Mapping):
            return value
        if set(value) == {"Fn::GetAtt"}:
            return arns[".".join(value["Fn::GetAtt"])]
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            text: str = value["Fn::Sub"]
            for name, arn in arns.items():
                text = text.replace("${" + name + "}", arn)
            return text.replace("${!", "${")  # Sub's escape for a literal ${...}
        return {key: resolved(item) for key, item in value.items()}

    document: dict[str, Any] = resolved(policy["PolicyDocument"])
    return document


def _create_tenant_data_role(
    session: boto3.session.Session, prefix: str, role: Mapping[str, Any], names: ResourceNames
) -> str:
    """The role the authorizer assumes per tenant, with the template's policy. Its trust policy
    names the authorizer's role, which exists only in CloudFormation: here the account stands in."""
    iam = session.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{LOCAL_ACCOUNT}:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
    name = f"{prefix}-tenant-data-{uuid.uuid4().hex[:8]}"
    arn: str = iam.create_role(
        RoleName=name,
        Path=f"/{prefix}/tenant-data/",
        AssumeRolePolicyDocument=json.dumps(trust),
        MaxSessionDuration=int(role["MaxSessionDuration"]),
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName=role["Policies"][0]["PolicyName"],
        PolicyDocument=json.dumps(tenant_data_policy(names)),
    )
    return arn


def _create_table(session: boto3.session.Session, name: str, table: Mapping[str, Any]) -> str:
    """A DynamoDB table named `name` from a template table's properties: its keys, indexes,
    billing, encryption and TTL attribute."""
    dynamodb = session.client("dynamodb")
    indexes = (
        {"GlobalSecondaryIndexes": table["GlobalSecondaryIndexes"]}
        if "GlobalSecondaryIndexes" in table
        else {}
    )
    dynamodb.create_table(
        TableName=name,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode=table["BillingMode"],
        SSESpecification={"Enabled": table["SSESpecification"]["SSEEnabled"]},
        **indexes,
    )
    ttl = table["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )
    return name


def _create_history_resources(
    session: boto3.session.Session, prefix: str, resources: Mapping[str, Any]
) -> tuple[str, str]:
    """The activity table (history and audit items) and the history cursors' HMAC key."""
    table_name = _create_table(session, f"{prefix}-activity", resources["ActivityTable"]["Properties"])
    key = resources["HistoryCursorKey"]["Properties"]
    key_id = session.client("kms").create_key(
        KeySpec=key["KeySpec"], KeyUsage=key["KeyUsage"], Description=key["Description"]
    )["KeyMetadata"]["KeyId"]
    return table_name, key_id


def create_usage_plans_from_template(
    session: boto3.session.Session,
    stack_name: str,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    template: Path = TEMPLATE,
) -> dict[str, str]:
    """The template's usage plans (one per tier) in API Gateway, named, limited and tagged as the
    template has CloudFormation create them; returns tier -> plan id.

    Only what the operator CLI reads is reproduced: the plans are not attached to an API stage
    (the local gateway enforces no usage plan), so their limits are descriptive here.
    """
    document = load_template(template)
    parameters = _parameter_values(document, parameter_overrides)
    refs = parameters | {"AWS::StackName": stack_name}

    def value(raw: Any) -> str:
        if isinstance(raw, Mapping) and set(raw) == {"Ref"}:
            return refs[raw["Ref"]]
        if isinstance(raw, Mapping) and set(raw) == {"Fn::Sub"} and isinstance(raw["Fn::Sub"], str):
            text: str = raw["Fn::Sub"]
            for name, resolved in refs.items():
                text = text.replace("${" + name + "}", resolved)
            return text
        return str(raw)

    client = session.client("apigateway")
    plans: dict[str, str] = {}
    for resource in document["Resources"].values():
        if resource.get("Type") != "AWS::ApiGateway::UsagePlan":
            continue
        properties = resource["Properties"]
        tags = {tag["Key"]: value(tag["Value"]) for tag in properties.get("Tags", [])}
        plan = client.create_usage_plan(
            name=value(properties["UsagePlanName"]),
            description=str(properties.get("Description", "")),
            throttle={
                "rateLimit": float(value(properties["Throttle"]["RateLimit"])),
                "burstLimit": int(value(properties["Throttle"]["BurstLimit"])),
            },
            quota={
                "limit": int(value(properties["Quota"]["Limit"])),
                "period": properties["Quota"]["Period"],
            },
            tags=tags,
        )
        plans[tags.get("inference-tier", plan["id"])] = plan["id"]
    return plans


def _parameter_values(document: Mapping[str, Any], overrides: Mapping[str, str] | None) -> dict[str, str]:
    given = dict(overrides or {})
    return {
        name: given.get(name, str(spec.get("Default", "")))
        for name, spec in (document.get("Parameters") or {}).items()
    }


def function_environments(
    names: ResourceNames,
    *,
    stack_name: str,
    region: str,
    parameter_overrides: Mapping[str, str] | None = None,
    template: Path = TEMPLATE,
) -> dict[str, dict[str, str]]:
    """Each AWS::Serverless::Function's environment variables (Globals merged in), by logical id.

    `!Ref` is resolved to a parameter's value (override, else its Default), to `names` for the
    stateful resources, or to the pseudo parameters `AWS::StackName` / `AWS::Region`. Any other
    intrinsic is refused rather than guessed.
    """
    document = load_template(template)
    overrides = dict(parameter_overrides or {})
    refs: dict[str, str] = {
        name: overrides.get(name, str(spec.get("Default", "")))
        for name, spec in (document.get("Parameters") or {}).items()
    }
    refs |= names.physical_ids() | {"AWS::StackName": stack_name, "AWS::Region": region}

    def resolve(variable: str, value: Any) -> str:
        if isinstance(value, Mapping) and value.get("Fn::GetAtt") == ["TenantDataRole", "Arn"]:
            return names.tenant_data_role_arn
        if isinstance(value, Mapping):
            ref = value.get("Ref") if len(value) == 1 else None
            if not isinstance(ref, str) or ref not in refs:
                raise ValueError(f"{variable}: cannot resolve {dict(value)!r} outside CloudFormation")
            return refs[ref]
        return str(value)

    global_vars = _variables(document.get("Globals", {}).get("Function", {}))
    environments: dict[str, dict[str, str]] = {}
    for logical_id, resource in document["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        variables = global_vars | _variables(resource.get("Properties", {}))
        environments[logical_id] = {name: resolve(name, value) for name, value in variables.items()}
    return environments


def _variables(properties: Mapping[str, Any]) -> dict[str, Any]:
    return dict((properties.get("Environment") or {}).get("Variables") or {})


def write_env_file(path: Path, environments: Mapping[str, Mapping[str, str]]) -> None:
    """`sam local start-api --env-vars PATH`: per-function values, keyed by logical id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(environments, indent=2, sort_keys=True) + "\n")
