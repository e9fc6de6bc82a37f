"""Which table, bucket and key the CLI works on: a deployed stack, or explicit names.

The CLI reuses the functions' own data access: it builds a `model_runtime.runtime.Runtime` of
its own from the resolved names (explicit names, else the stack's outputs, else the functions'
environment variables), without writing the environment. The endpoint is boto3's own business:
`AWS_ENDPOINT_URL` points every client at moto or any other AWS-compatible endpoint, exactly as
for the functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import boto3
from botocore.exceptions import ClientError
from model_runtime.runtime import Runtime
from model_runtime.settings import read_settings

from inferctl.onboarding import OnboardingError

# stack output -> the setting (`model_runtime.settings.Settings`) it names
STACK_OUTPUTS = {
    "TableName": "table_name",
    "ModelBucketName": "model_bucket",
    "SigningKeyId": "signing_key_id",
}
# stack parameters the CLI needs: the timings of rotations and revocations, and the model cache bound
STACK_PARAMETERS = {
    "TokenTtlSeconds": "token_ttl_seconds",
    "MappingTtlSeconds": "mapping_ttl_seconds",
    "ModelCacheBytes": "model_cache_bytes",  # registration refuses what predict would not cache
}


# what each timing is called in the environment (the functions' own variables)
TIMING_VARIABLES = {"token_ttl_seconds": "TOKEN_TTL_SECONDS", "mapping_ttl_seconds": "MAPPING_TTL_SECONDS"}


@dataclass(frozen=True, slots=True)
class Target:
    stack_name: str | None
    runtime: Runtime
    # Whether the token lifetime and mapping TTL are the deployment's (from the stack's parameters
    # or set explicitly in the environment), not the code's defaults.
    timings_known: bool = False

    @property
    def table_name(self) -> str:
        return self.runtime.settings.table_name

    @property
    def bucket(self) -> str:
        return self.runtime.settings.model_bucket

    @property
    def key_id(self) -> str:
        return self.runtime.settings.signing_key_id

    def require_table(self) -> None:
        if not self.table_name:
            raise OnboardingError("no table: pass --stack NAME or --table, or set TABLE_NAME")

    def require_timings(self) -> None:
        """Key rotation waits one mapping TTL and retires keys after a token lifetime: guessing
        them (60 s, 900 s) against a stack with longer ones breaks fresh or live tokens."""
        if not self.timings_known:
            raise OnboardingError(
                "the stack's timings are unknown: pass --stack NAME, or set MAPPING_TTL_SECONDS and "
                "TOKEN_TTL_SECONDS to its MappingTtlSeconds and TokenTtlSeconds"
            )

    def require_bucket(self) -> None:
        self.require_table()
        if not self.bucket:
            raise OnboardingError("no model bucket: pass --stack NAME or --bucket, or set MODEL_BUCKET")


def _from_stack(session: boto3.session.Session, stack_name: str) -> dict[str, str | int]:
    client = session.client("cloudformation")
    try:
        stack = client.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:
        raise OnboardingError(f"stack {stack_name!r}: {error.response['Error']['Message']}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    missing = sorted(set(STACK_OUTPUTS) - set(outputs))
    if missing:
        raise OnboardingError(f"stack {stack_name!r} has no output(s) {', '.join(missing)}")
    values: dict[str, str | int] = {name: outputs[output] for output, name in STACK_OUTPUTS.items()}
    if outputs.get("ActivityTableName"):  # stacks deployed before the audit trail have none
        values["activity_table_name"] = outputs["ActivityTableName"]
    for parameter in stack.get("Parameters", []):
        name = STACK_PARAMETERS.get(parameter["ParameterKey"])
        if name and parameter.get("ParameterValue"):
            values[name] = int(parameter["ParameterValue"])
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
    environment) and build the CLI's own `Runtime` on them."""
    session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    values = _from_stack(session, stack) if stack else {}
    explicit = {"table_name": table, "model_bucket": bucket, "signing_key_id": key_id}
    values |= {name: value for name, value in explicit.items() if value}
    settings = replace(read_settings(), **values)  # type: ignore[arg-type]
    known = all(
        name in values or os.environ.get(variable, "").strip() for name, variable in TIMING_VARIABLES.items()
    )
    return Target(stack, Runtime(settings, session=session), timings_known=known)
