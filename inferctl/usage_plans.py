"""Per-tenant quotas: each tenant has one API Gateway API key, on the usage plan of its tier.

The API's key source is AUTHORIZER: the authorizer (functions/authorizer) returns the key stored
in the tenant's mapping (`api_key`), and API Gateway enforces that key's plan (rate, burst, daily
quota) before predict runs. Clients never see the key; it is an identifier for metering, not a
credential, which is why the mapping may hold its value.

A stack's plans are found by their tags (template.yaml): `inference-stack=<stack name>` and
`inference-tier=<tier>`. The stack name comes from `--stack`, else `$INFERENCE_STACK`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_runtime.runtime import Runtime
from model_runtime.table import TenantChange

from inferctl.onboarding import OnboardingError, existing_tenant, update_tenant

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient

STACK_TAG = "inference-stack"
TIER_TAG = "inference-tier"
TENANT_TAG = "inference-tenant"
DEFAULT_TIER = "standard"
STACK_VARIABLE = "INFERENCE_STACK"


def stack_name(explicit: str | None) -> str | None:
    return explicit or os.environ.get(STACK_VARIABLE) or None


def _apigateway(runtime: Runtime) -> APIGatewayClient:
    return runtime.session.client("apigateway")


def tier_plans(runtime: Runtime, stack: str) -> dict[str, str]:
    """tier -> usage plan id, for the plans tagged with this stack."""
    plans: dict[str, str] = {}
    for page in _apigateway(runtime).get_paginator("get_usage_plans").paginate():
        for plan in page.get("items", []):
            tags = plan.get("tags") or {}
            if tags.get(STACK_TAG) == stack and tags.get(TIER_TAG):
                plans[tags[TIER_TAG]] = plan["id"]
    return plans


def plan_for(runtime: Runtime, stack: str, tier: str) -> str:
    plans = tier_plans(runtime, stack)
    if tier not in plans:
        known = ", ".join(sorted(plans)) or "none"
        raise OnboardingError(f"no usage plan for tier {tier!r} in stack {stack!r} (tiers: {known})")
    return plans[tier]


@dataclass(frozen=True, slots=True)
class TierChange:
    tenant_id: str
    previous_tier: str
    tier: str
    key_created: bool


def issue_api_key(
    runtime: Runtime, tenant_id: str, stack: str, tier: str, plan_id: str | None = None
) -> None:
    """Create the tenant's API key on `tier`'s plan and record it in the tenant's mapping."""
    plan_id = plan_id or plan_for(runtime, stack, tier)
    if existing_tenant(runtime, tenant_id).api_key_id:
        raise OnboardingError(f"tenant {tenant_id!r} already has an API key: use set-tier")
    client = _apigateway(runtime)
    key = client.create_api_key(
        name=f"{stack}-{tenant_id}",
        description=f"Meters tenant {tenant_id} on its usage plan; returned by the authorizer only.",
        enabled=True,
        tags={STACK_TAG: stack, TENANT_TAG: tenant_id},
    )
    client.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    update_tenant(
        runtime, tenant_id, TenantChange(api_key_id=key["id"], api_key=key["value"], usage_tier=tier)
    )


def set_tier(runtime: Runtime, tenant_id: str, stack: str, tier: str) -> TierChange:
    """Move the tenant's key to `tier`'s plan (creating the key if the tenant has none).

    A key can be on one plan per stage, so it leaves the old plan before joining the new one:
    a request in between (milliseconds) is refused with a 403 and may be retried.
    """
    plan_id = plan_for(runtime, stack, tier)
    tenant = existing_tenant(runtime, tenant_id)
    previous = tenant.usage_tier
    if not tenant.api_key_id:
        issue_api_key(runtime, tenant_id, stack, tier, plan_id)
        return TierChange(tenant_id, previous, tier, key_created=True)
    key_id = tenant.api_key_id
    client = _apigateway(runtime)
    current = [plan["id"] for plan in client.get_usage_plans(keyId=key_id).get("items", [])]
    for old_plan in current:
        if old_plan != plan_id:
            client.delete_usage_plan_key(usagePlanId=old_plan, keyId=key_id)
    if plan_id not in current:
        client.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
    update_tenant(runtime, tenant_id, TenantChange(usage_tier=tier))
    return TierChange(tenant_id, previous, tier, key_created=False)
