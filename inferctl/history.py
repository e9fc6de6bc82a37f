"""The operator's side of inference history (docs/history.md): capture and retention per tenant,
reading any tenant's records, and erasing them (a data-subject request).

The activity table's name comes from the stack's `ActivityTableName` output (`--stack`) or the
writer's own variable `ACTIVITY_TABLE_NAME`; captured objects are in the model bucket, under
`captures/<tenant_id>/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from model_runtime.history import capture_prefix
from model_runtime.table import MAX_HISTORY_DAYS, HistoryRecord, HistoryStore, TenantChange

from inferctl.onboarding import OnboardingError, update_tenant, validate_tenant_id
from inferctl.target import Target


@dataclass(frozen=True, slots=True)
class Erased:
    records: int
    objects: int


def set_capture(target: Target, tenant_id: str, *, capture: bool, history_days: int | None) -> None:
    validate_tenant_id(tenant_id)
    if history_days is not None and not 1 <= history_days <= MAX_HISTORY_DAYS:
        raise OnboardingError(f"history days must be 1 to {MAX_HISTORY_DAYS}")
    update_tenant(target.runtime, tenant_id, TenantChange(capture=capture, history_days=history_days))


def store(target: Target) -> HistoryStore:
    name = os.environ.get("ACTIVITY_TABLE_NAME", "").strip() or _stack_output(target, "ActivityTableName")
    if not name:
        raise OnboardingError("no activity table: pass --stack NAME, or set ACTIVITY_TABLE_NAME")
    return HistoryStore(target.runtime.dynamodb, name)


def _stack_output(target: Target, output: str) -> str:
    if not target.stack_name:
        return ""
    client = target.runtime.session.client("cloudformation")
    stack = client.describe_stacks(StackName=target.stack_name)["Stacks"][0]
    return next((o.get("OutputValue", "") for o in stack.get("Outputs", []) if o["OutputKey"] == output), "")


def records(target: Target, tenant_id: str, user: str | None, since: str | None) -> list[HistoryRecord]:
    """A tenant's (or one user's or client's) records, newest first, from `since` (ISO 8601 UTC)."""
    validate_tenant_id(tenant_id)
    found = store(target).records(tenant_id, user)
    return [record for record in found if since is None or record.recorded_at >= since]


def purge(target: Target, tenant_id: str, user: str | None) -> Erased:
    """Erase the records and the captured objects of a tenant (or of one of its callers)."""
    validate_tenant_id(tenant_id)
    erased = store(target).delete(tenant_id, user)
    # Every version: the bucket is versioned, and an erasure must not leave old ones.
    objects = _delete_versions(target, capture_prefix(tenant_id, user))
    return Erased(len(erased), objects)


@dataclass(frozen=True, slots=True)
class DeletedTenant:
    users: int
    clients: int
    history: Erased
    model_objects: int


def delete_tenant(target: Target, tenant_id: str) -> DeletedTenant:
    """Erase a tenant: its mapping first (every token of it is refused from then on, and the
    history writer records nothing more for it), its API key, logins and machine clients, its
    history and captured objects, and every version of its model objects."""
    from inferctl.onboarding import existing_tenant  # noqa: PLC0415

    tenant = existing_tenant(target.runtime, tenant_id)
    runtime = target.runtime
    users = [user.username for user in runtime.table.users() if user.tenant_id == tenant_id]
    clients = [client.client_id for client in runtime.table.clients() if client.tenant_id == tenant_id]
    runtime.table.delete_tenant(tenant_id, users, clients)
    if tenant.api_key_id:
        runtime.session.client("apigateway").delete_api_key(apiKey=tenant.api_key_id)
    history = purge(target, tenant_id, None)
    return DeletedTenant(len(users), len(clients), history, _delete_versions(target, f"models/{tenant_id}/"))


def _delete_versions(target: Target, prefix: str) -> int:
    """Delete every version (and delete marker) of every object under `prefix`; returns how many."""
    if not target.bucket:
        return 0
    s3 = target.runtime.s3
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=target.bucket, Prefix=prefix):
        versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        if versions:
            s3.delete_objects(
                Bucket=target.bucket,
                Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]},
            )
            deleted += len(versions)
    return deleted
