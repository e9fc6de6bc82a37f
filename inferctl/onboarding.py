"""Writes the items the functions read (`model_runtime.table`): tenants with their pinned model,
and users.

Model files are checked by `registry.registration` (formats that cannot run code, conversion to ONNX
with a probe); what this module guarantees is that the mapping it writes pins exactly the bytes it
uploaded, content-addressed, next to a registration record of each version.
Every input is validated before the first write, and writes are ordered so a failure leaves
nothing a request could reach half-written: the model object goes up first (content-addressed,
so a stray one is harmless), and the mapping that points at it is written last, conditionally.
Every function takes the CLI's `Runtime` (`inferctl.target`): its table, bucket and clients.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from model_runtime import accounts, versions
from model_runtime.accounts import SUBJECT_CUTOFF_KEPT_SECONDS, revoke_subject  # noqa: F401 - re-exported
from model_runtime.interface import Interface
from model_runtime.model_objects import model_key, record_key, sha256_hex
from model_runtime.roles import USER
from model_runtime.runtime import Runtime
from model_runtime.table import (
    ACTIVE,
    CLASSIFICATION,
    DISABLED,
    MAX_RUN_BUDGET_MS,
    ItemExists,
    ItemMissing,
    ModelPin,
    Tenant,
    TenantChange,
)
from model_runtime.versions import VersionRow
from model_serving.models import ONNX, largest_cached_file

from registry.registration import RegistrationError, register

DEFAULT_MAX_BATCH = 1000
MAX_BATCH_LIMIT = 100_000
TENANT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class OnboardingError(Exception):
    """Bad operator input; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class ModelFacts:
    sha256: str
    n_features: int
    classes: list[Any]
    sklearn_version: str
    model_format: str = ONNX
    source_format: str = ONNX
    probe: str = ""
    task: str = CLASSIFICATION
    feature_names: tuple[str, ...] | None = None
    accepts_missing: bool = False
    # What this version changed in the tenant's interface (`registry.interface`); empty: nothing.
    interface_changes: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """The short digest clients see as `model_version` (see `table.Tenant.model_version`)."""
        return self.sha256[:12]

    def pin(self, key: str) -> ModelPin:
        return ModelPin(
            key,
            self.sha256,
            self.model_format,
            self.n_features,
            tuple(self.classes),
            self.sklearn_version,
            self.task,
            self.feature_names,
            self.accepts_missing,
        )


def validate_tenant_id(tenant_id: str) -> None:
    if not (1 <= len(tenant_id) <= 64 and set(tenant_id) <= TENANT_ID_CHARS and tenant_id[0] != "-"):
        raise OnboardingError("tenant ids are 1-64 lower-case letters, digits and '-'")


def validate_max_batch(max_batch: int) -> None:
    if not 1 <= max_batch <= MAX_BATCH_LIMIT:
        raise OnboardingError(f"max_batch must be between 1 and {MAX_BATCH_LIMIT}")


def existing_tenant(runtime: Runtime, tenant_id: str) -> Tenant:
    """The tenant's mapping (a consistent read), or `OnboardingError` naming it."""
    validate_tenant_id(tenant_id)
    try:
        return versions.existing_tenant(runtime, tenant_id)
    except versions.VersionError as error:
        raise OnboardingError(str(error)) from None


def interface_changes(
    runtime: Runtime, tenant: Tenant, new: Interface, *, allow: bool, action: str
) -> tuple[str, ...]:
    """What `new` changes in `tenant`'s interface; refused unless `allow` (`model_runtime.versions`)."""
    try:
        return versions.interface_changes(runtime, tenant, new, allow=allow, action=action)
    except versions.VersionError as error:
        raise OnboardingError(str(error)) from error  # the cause tells functions/register which refusal


def update_tenant(runtime: Runtime, tenant_id: str, change: TenantChange, now: int | None = None) -> None:
    try:
        runtime.table.update_tenant(tenant_id, change, int(time.time()) if now is None else now)
    except ItemMissing:
        raise OnboardingError(f"unknown tenant {tenant_id!r}") from None


def put_model(
    runtime: Runtime,
    tenant_id: str,
    data: bytes,
    max_batch: int | None,
    *,
    new_tenant: bool,
    filename: str,
    trust_pickle: bool = False,
    sample: npt.NDArray[np.float64] | None = None,
    feature_names: tuple[str, ...] | None = None,
    allow_interface_change: bool = False,
    sample_header: tuple[str, ...] | None = None,
) -> ModelFacts:
    """Register a model file (see `registry.registration`), upload what is served content-addressed
    with its registration record, and point the tenant's mapping at it.

    `new_tenant=True` creates the mapping (active, `max_batch` or the default); `False` publishes a
    new version of an existing tenant's model and changes only the model fields (and `max_batch`
    when given): status and `tokens_not_before` stay as the operator left them. A version whose
    interface differs from the active one's is refused unless `allow_interface_change`
    (`interface_changes`); then the mapping records when (`interface_changed_at`). A sample's
    CSV header (`sample_header`) must name the model's features, where the model has names.
    """
    validate_tenant_id(tenant_id)
    if max_batch is not None:
        validate_max_batch(max_batch)
    try:
        registration = register(
            filename, data, trust_pickle=trust_pickle, sample=sample, feature_names=feature_names
        )
    except RegistrationError as error:
        raise OnboardingError(str(error)) from None
    names = registration.feature_names
    if sample_header is not None and names is not None and sample_header != names:
        raise OnboardingError(
            f"the sample's header row names {','.join(sample_header)}, and the model's features are "
            f"{','.join(names)}: name them in that order, or drop the header row"
        )
    cacheable = largest_cached_file(runtime.settings.model_cache_bytes)
    if len(registration.data) > cacheable:
        raise OnboardingError(
            f"the served model is {len(registration.data)} bytes, and predict's cache "
            f"(ModelCacheBytes {runtime.settings.model_cache_bytes}) keeps models of at most {cacheable}: "
            "register a smaller model, or raise ModelCacheBytes (and PredictMemorySize) and pass --stack"
        )
    active = runtime.table.get_tenant(tenant_id, consistent=True)
    if active is not None and new_tenant:
        raise OnboardingError(f"tenant {tenant_id!r} already exists")
    if active is None and not new_tenant:
        raise OnboardingError(f"unknown tenant {tenant_id!r}")

    bucket = runtime.settings.model_bucket
    sha256 = sha256_hex(registration.data)
    now_ns = time.time_ns()
    now = now_ns // 1_000_000_000
    record = registration.record(sha256, now_ns)
    changes: tuple[str, ...] = ()
    if active is not None:  # checked before the first write: a refusal leaves the tenant as it was
        changes = interface_changes(
            runtime, active, Interface.of_record(record), allow=allow_interface_change, action="publish it"
        )
    key = model_key(tenant_id, sha256, registration.model_format)
    s3 = runtime.s3
    s3.put_object(Bucket=bucket, Key=key, Body=registration.data, ChecksumAlgorithm="SHA256")
    s3.put_object(
        Bucket=bucket,
        Key=record_key(tenant_id, sha256),
        Body=json.dumps(replace(record, interface_changed=bool(changes)).to_json()).encode(),
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    facts = ModelFacts(
        sha256=sha256,
        n_features=registration.n_features,
        classes=registration.classes,
        sklearn_version=registration.sklearn_version,
        model_format=registration.model_format,
        source_format=registration.source_format,
        probe=registration.probe.describe(),
        task=registration.task,
        feature_names=registration.feature_names,
        accepts_missing=registration.accepts_missing,
        interface_changes=changes,
    )
    try:
        if new_tenant:
            tenant = Tenant.new(tenant_id, facts.pin(key), max_batch or DEFAULT_MAX_BATCH, now)
            runtime.table.create_tenant(tenant)
        else:
            change = TenantChange(
                pin=facts.pin(key), max_batch=max_batch, interface_changed_at=now if changes else None
            )
            runtime.table.update_tenant(tenant_id, change, now)
    except (ItemExists, ItemMissing):
        # Someone else created or deleted the tenant since the check above.
        raise OnboardingError(
            f"tenant {tenant_id!r} already exists" if new_tenant else f"unknown tenant {tenant_id!r}"
        ) from None
    return facts


def _operator_error(error: accounts.AccountError) -> OnboardingError:
    return OnboardingError(str(error))


def create_user(
    runtime: Runtime, username: str, password: str, tenant_id: str, roles: tuple[str, ...] = (USER,)
) -> None:
    """A new user (`model_runtime.accounts`, the code tenant admins use too)."""
    validate_tenant_id(tenant_id)
    try:
        accounts.create_user(runtime, username, password, tenant_id, roles)
    except accounts.AccountError as error:
        raise _operator_error(error) from None


def set_user_status(runtime: Runtime, username: str, *, active: bool, now: int | None = None) -> None:
    """Enable or disable a login; disabling revokes its tokens (`model_runtime.accounts`)."""
    try:
        accounts.set_user_status(runtime, username, active=active, now=now)
    except accounts.AccountError as error:
        raise _operator_error(error) from None


def set_user_roles(runtime: Runtime, username: str, roles: tuple[str, ...]) -> None:
    """Give a user exactly `roles`; taking one away revokes its tokens (`model_runtime.accounts`)."""
    try:
        accounts.set_user_roles(runtime, username, roles)
    except accounts.AccountError as error:
        raise _operator_error(error) from None


def set_tenant_status(runtime: Runtime, tenant_id: str, *, active: bool, now: int | None = None) -> None:
    """Enable or disable a tenant: its users cannot log in and its tokens get 403 while disabled.

    Disabling also revokes every token issued so far (`tokens_not_before`, as `revoke_tokens`), as
    disabling a user revokes the user's: enabling the tenant again does not bring them back.
    """
    validate_tenant_id(tenant_id)
    if active:
        update_tenant(runtime, tenant_id, TenantChange(status=ACTIVE))
        return
    not_before = (int(time.time()) if now is None else now) + 1
    change = TenantChange(status=DISABLED, tokens_not_before=not_before)
    update_tenant(runtime, tenant_id, change, now=not_before - 1)


def set_run_budget(runtime: Runtime, tenant_id: str, budget_ms: int) -> None:
    """How long one request may run the tenant's model (model_serving/run_budget.py)."""
    validate_tenant_id(tenant_id)
    if not 1 <= budget_ms <= MAX_RUN_BUDGET_MS:
        raise OnboardingError(
            f"the run budget must be 1 to {MAX_RUN_BUDGET_MS} ms (predict's timeout is 10 s)"
        )
    update_tenant(runtime, tenant_id, TenantChange(run_budget_ms=budget_ms))


def revoke_tokens(runtime: Runtime, tenant_id: str, now: int | None = None) -> int:
    """Refuse every token of the tenant issued so far; returns the new `tokens_not_before`.

    Tokens carry `iat` in whole seconds and predict refuses `iat < tokens_not_before`, so the
    cut-off is the *next* second: a token issued earlier in this second is revoked too (a login
    in the same second as the revocation simply has to log in again).
    """
    validate_tenant_id(tenant_id)
    not_before = (int(time.time()) if now is None else now) + 1
    update_tenant(runtime, tenant_id, TenantChange(tokens_not_before=not_before), now=not_before - 1)
    return not_before


# --- the operator's view ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantRow:
    tenant_id: str
    status: str
    model_version: str
    n_features: int
    max_batch: int
    classes: list[Any]
    sklearn_version: str
    tokens_not_before: int
    model_format: str = ""
    capture: bool = False  # inference history (docs/history.md)
    history_days: int = 0


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    tenant_id: str
    status: str
    roles: list[str]
    created_at: int


def list_tenants(runtime: Runtime) -> list[TenantRow]:
    rows = [
        TenantRow(
            tenant_id=tenant.tenant_id,
            status=tenant.status,
            model_version=tenant.model_version,
            n_features=tenant.n_features,
            max_batch=tenant.max_batch,
            classes=list(tenant.classes),
            sklearn_version=tenant.sklearn_version,
            tokens_not_before=tenant.tokens_not_before,
            model_format=tenant.model_format,
            capture=tenant.capture,
            history_days=tenant.history_days,
        )
        for tenant in runtime.table.tenants()
    ]
    return sorted(rows, key=lambda row: row.tenant_id)


def list_users(runtime: Runtime, tenant_id: str | None = None) -> list[UserRow]:
    # The listing never reads password_hash (`Table.users`).
    rows = [
        UserRow(user.username, user.tenant_id, user.status, list(user.roles), user.created_at)
        for user in runtime.table.users()
    ]
    return sorted(
        (row for row in rows if tenant_id is None or row.tenant_id == tenant_id),
        key=lambda row: (row.tenant_id, row.username),
    )


# --- model versions: model_runtime/versions.py (the tenant-admin API calls it too) ------------


def list_versions(runtime: Runtime, tenant_id: str) -> list[VersionRow]:
    """Every registered version of a tenant's model, oldest first (`model_runtime.versions`)."""
    validate_tenant_id(tenant_id)
    try:
        return versions.list_versions(runtime, tenant_id)
    except versions.VersionError as error:
        raise OnboardingError(str(error)) from None


def rollback(
    runtime: Runtime, tenant_id: str, to: str | None = None, *, allow_interface_change: bool = False
) -> versions.Rollback:
    """Point the tenant's mapping at a previously registered version (`model_runtime.versions`)."""
    validate_tenant_id(tenant_id)
    try:
        return versions.rollback(runtime, tenant_id, to, allow_interface_change=allow_interface_change)
    except versions.VersionError as error:
        raise OnboardingError(str(error)) from None
