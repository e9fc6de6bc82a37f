"""Proof that a tenant-data session reaches one tenant's data alone (decision 0017).

The strongest evaluator offline is moto's IAM authorization (`set_initial_no_auth_action_count`;
server mode: `INITIAL_NO_AUTH_ACTION_COUNT`). What it evaluates, read in moto 5.2's
modules `moto.iam.access_control` and `moto.core.authorization` (the tests below pin the
S3 evaluation, the unsubstituted variable and DynamoDB's Resource `*`):

- it evaluates, for a request signed with an assumed role's credentials, the Allow and Deny
  statements of that role's inline and attached policies: Action patterns, and for S3 the
  Resource patterns against the object's ARN (`arn:aws:s3:::bucket/key`);
- it ignores session policies (AssumeRole's `Policy`) and session tags, does not substitute
  policy variables (`${aws:PrincipalTag/tenant_id}`), and ignores Condition blocks in identity
  policies (only `StringEquals` is implemented, and only for values a request supplies, i.e.
  trust policies);
- for DynamoDB it checks the Action against Resource "*" only: a statement naming the table's ARN
  never matches, so it can say nothing about items (`dynamodb:LeadingKeys`).

So the S3 proof substitutes the session's tag into the template's policy, as IAM does when it
evaluates a policy variable, and lets moto evaluate the result against the object ARNs; the
DynamoDB rule is proven by the exact policy (tests/unit/test_template_isolation.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from local.resources import LOCAL_ACCOUNT, ResourceNames, create_resources_from_template, tenant_data_policy

TAG_VARIABLE = "${aws:PrincipalTag/tenant_id}"
KEYS = {"tenant-a": "models/tenant-a/aaaa.onnx", "tenant-b": "models/tenant-b/bbbb.onnx"}


@pytest.fixture
def names() -> Iterator[ResourceNames]:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        created = create_resources_from_template(session)
        for key in KEYS.values():
            session.client("s3").put_object(Bucket=created.bucket, Key=key, Body=b"model bytes")
        yield created


def session_of(names: ResourceNames, tenant_id: str, *, policy: str | None = None) -> boto3.session.Session:
    """The credentials of a tenant-data session tagged `tenant_id`, with the template's policy as
    IAM evaluates it for that session (its tag in place of the variable)."""
    iam = boto3.client("iam", region_name="us-east-1")
    document = policy or json.dumps(tenant_data_policy(names)).replace(TAG_VARIABLE, tenant_id)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{LOCAL_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=f"as-{tenant_id}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName=f"as-{tenant_id}", PolicyName="OneTenantsData", PolicyDocument=document)
    credentials = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=role["Arn"],
        RoleSessionName=f"tenant-{tenant_id}",
        Tags=[{"Key": "tenant_id", "Value": tenant_id}],
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


def readable(session: boto3.session.Session, bucket: str, key: str) -> bool:
    """Whether moto, evaluating IAM, lets this session read the object."""

    @set_initial_no_auth_action_count(0)
    def read() -> bool:
        try:
            session.client("s3").get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDenied"
            return False
        return True

    return read()


def test_tenant_as_session_reads_its_own_models_and_not_another_tenants(names: ResourceNames) -> None:
    # Given the session the authorizer vends for tenant-a, with the template's policy
    tenant_a = session_of(names, "tenant-a")
    # Then it reads tenant-a's model, and moto's IAM evaluation denies tenant-b's
    assert readable(tenant_a, names.bucket, KEYS["tenant-a"])
    assert not readable(tenant_a, names.bucket, KEYS["tenant-b"])
    # And nothing outside the models prefix (captures, uploads)
    assert not readable(tenant_a, names.bucket, "/".join(("captures", "tenant-a", "capture.json")))


def test_a_policy_without_the_tenant_in_its_arn_would_be_caught(names: ResourceNames) -> None:
    # The evaluator is not vacuous: the same check with the tenant left out of the object ARN
    # (what the template would say if the scoping were removed) lets tenant-a read tenant-b's model.
    unscoped = json.dumps(tenant_data_policy(names)).replace(f"/models/{TAG_VARIABLE}/*", "/models/*")
    assert unscoped != json.dumps(tenant_data_policy(names))
    assert readable(session_of(names, "tenant-a", policy=unscoped), names.bucket, KEYS["tenant-b"])


def test_moto_does_not_substitute_policy_variables_nor_evaluate_dynamodb_items(names: ResourceNames) -> None:
    # Why the proof substitutes the tag itself: with the variable left in, moto matches it as text
    # and denies every object, tenant-a's own included (IAM would allow it)
    as_written = json.dumps(tenant_data_policy(names))
    assert TAG_VARIABLE in as_written
    assert not readable(session_of(names, "tenant-a", policy=as_written), names.bucket, KEYS["tenant-a"])
    # And why DynamoDB is proven by the exact policy instead: moto checks a DynamoDB action against
    # Resource "*", so a statement naming the table never matches: even the own mapping is denied
    tenant_b = session_of(names, "tenant-b")

    @set_initial_no_auth_action_count(0)
    def own_mapping() -> int:
        try:
            tenant_b.client("dynamodb").get_item(
                TableName=names.table_name, Key={"pk": {"S": "tenant#tenant-b"}}
            )
        except ClientError as error:
            return int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        return 200

    assert own_mapping() == 403
