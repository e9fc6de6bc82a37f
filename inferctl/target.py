"""Which table, bucket and key the CLI works on: a deployed stack, or explicit names.

The CLI reuses the functions' own data access (`model_runtime`), which reads its resources
from the environment (`model_runtime.settings`), so the resolved names are exported there. The
endpoint is boto3's own business: `AWS_ENDPOINT_URL` points every client at moto or any other
AWS-compatible endpoint, exactly as for the functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError
from model_runtime import aws
from model_runtime.settings import get_settings

from inferctl.onboarding import OnboardingError

# stack output -> the environment variable the functions (and so model_runtime) read
STACK_OUTPUTS = {
    "TableName": "TABLE_NAME",
    "ModelBucketName": "MODEL_BUCKET",
    "SigningKeyId": "SIGNING_KEY_ID",
}
# stack parameters that decide how long rotations and revocations take to reach every container
STACK_PARAMETERS = {
    "TokenTtlSeconds": "TOKEN_TTL_SECONDS",
    "MappingTtlSeconds": "MAPPING_TTL_SECONDS",
}


@dataclass(frozen=True, slots=True)
class Target:
    stack_name: str | None
    table_name: str
    bucket: str
    key_id: str

    def require_table(self) -> None:
        if not self.table_name:
            raise OnboardingError("no table: pass --stack NAME or --table, or set TABLE_NAME")

    def require_bucket(self) -> None:
        self.require_table()
        if not self.bucket:
            raise OnboardingError("no model bucket: pass --stack NAME or --bucket, or set MODEL_BUCKET")


def _from_stack(stack_name: str) -> dict[str, str]:
    client = boto3.session.Session().client("cloudformation")
    try:
        stack = client.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:
        raise OnboardingError(f"stack {stack_name!r}: {error.response['Error']['Message']}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    missing = sorted(set(STACK_OUTPUTS) - set(outputs))
    if missing:
        raise OnboardingError(f"stack {stack_name!r} has no output(s) {', '.join(missing)}")
    values = {variable: outputs[output] for output, variable in STACK_OUTPUTS.items()}
    for parameter in stack.get("Parameters", []):
        variable = STACK_PARAMETERS.get(parameter["ParameterKey"])
        if variable and parameter.get("ParameterValue"):
            values[variable] = parameter["ParameterValue"]
    return values


def configure(
    *,
    stack: str | None = None,
    table: str | None = None,
    bucket: str | None = None,
    key_id: str | None = None,
    region: str | None = None,
) -> Target:
    """Resolve the resources (explicit names win over the stack's outputs, which win over the
    environment) and point `model_runtime` at them."""
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    values = _from_stack(stack) if stack else {}
    explicit = {"TABLE_NAME": table, "MODEL_BUCKET": bucket, "SIGNING_KEY_ID": key_id}
    values |= {name: value for name, value in explicit.items() if value}
    os.environ.update(values)
    get_settings.cache_clear()
    aws.reset_clients()
    settings = get_settings()
    return Target(stack, settings.table_name, settings.model_bucket, settings.signing_key_id)
