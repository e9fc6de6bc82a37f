"""Test helpers shared by the unit, handler and black-box suites (not fixtures: plain functions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from model_runtime import aws, store, tokens
from model_runtime.models import model_cache
from model_runtime.settings import get_settings
from samcli.yamlhelper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def reset_runtime_caches() -> None:
    """What a fresh Lambda container would have: no settings, clients, mappings, keys or models."""
    get_settings.cache_clear()
    aws.reset_clients()
    store.tenants.clear()
    store.keyrings.clear()
    model_cache.cache_clear()
    for cached in (tokens._public_key_der, tokens.key_kid, tokens._load_public_key):
        cached.cache_clear()


def template_resources() -> dict[str, Any]:
    """The template's resources, parsed the way SAM parses them (intrinsic tags included)."""
    resources: dict[str, Any] = yaml_parse(TEMPLATE.read_text())["Resources"]
    return resources


@dataclass(frozen=True)
class ResourceNames:
    table_name: str
    bucket: str
    key_id: str


def create_resources_from_template(session: boto3.session.Session, prefix: str = "test") -> ResourceNames:
    """Create the table, bucket and signing key with the template's own properties.

    Only the properties that need a real AWS account (names, policies) are left out, so a change
    to the key schema, TTL attribute or key spec in the template reaches every test.
    """
    resources = template_resources()
    table = resources["InferenceTable"]["Properties"]
    dynamodb = session.client("dynamodb")
    table_name = f"{prefix}-inference"
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode=table["BillingMode"],
        SSESpecification={"Enabled": table["SSESpecification"]["SSEEnabled"]},
    )
    dynamodb.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={
            "AttributeName": table["TimeToLiveSpecification"]["AttributeName"],
            "Enabled": table["TimeToLiveSpecification"]["Enabled"],
        },
    )

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
    return ResourceNames(table_name, bucket, key_id)
