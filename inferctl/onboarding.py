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
from model_runtime import accounts
from model_runtime.accounts import SUBJECT_CUTOFF_KEPT_SECONDS, revoke_subject  # noqa: F401 - re-exported
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
    ModelRecord,
    Tenant,
    TenantChange,
)
from model_serving.models import ONNX, largest_cached_file, model_key, sha256_hex

from registry.interface import Interface, differences
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


def record_key(tenant_id: str, sha256: str) -> str:
    """The registration record stored beside each model version (`list-versions`, `rollback`)."""
    return f"models/{tenant_id}/{sha256}.json"


def validate_tenant_id(tenant_id: str) -> None:
    if not (1 <= len(tenant_id) <= 64 and set(tenant_id) <= TENANT_ID_CHARS and tenant_id[0] != "-"):
        raise OnboardingError("tenant ids are 1-64 lower-case letters, digits and '-'")


def validate_max_batch(max_batch: int) -> None:
    if not 1 <= max_batch <= MAX_BATCH_LIMIT:
        raise OnboardingError(f"max_batch must be between 1 and {MAX_BATCH_LIMIT}")


def existing_tenant(runtime: Runtime, tenant_id: str) -> Tenant:
    """The tenant's mapping (a consistent read), or `OnboardingError` naming it."""
    validate_tenant_id(tenant_id)
    tenant = runtime.table.get_tenant(tenant_id, consistent=True)
    if tenant is None:
        raise OnboardingError(f"unknown tenant {tenant_id!r}")
    return tenant


def _record(runtime: Runtime, tenant_id: str, sha256: str) -> ModelRecord | None:
    """A version's registration record, or None (a version registered before records existed)."""
    s3 = runtime.s3
    try:
        body = s3.get_object(Bucket=runtime.settings.model_bucket, Key=record_key(tenant_id, sha256))["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    try:
        return ModelRecord.from_json(json.loads(body.read()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise OnboardingError(_malformed(record_key(tenant_id, sha256))) from None


def _malformed(key: str) -> str:
    return (
        f"the version record {key} is malformed: restore it from the bucket's "
        "versions, or delete it if that version is never to be rolled back to"
    )


def interface_changes(
    runtime: Runtime, tenant: Tenant, new: Interface, *, allow: bool, action: str
) -> tuple[str, ...]:
    """What `new` changes in `tenant`'s interface; refused (`OnboardingError`, one line saying
    what changed) unless `allow`. `action` names the command for the message ("publish it")."""
    record = _record(runtime, tenant.tenant_id, tenant.model_sha256)
    active = Interface.of_tenant(tenant) if record is None else Interface.of_record(record)
    changes = differences(new, active)
    if changes and not allow:
        raise OnboardingError(
            f"this version changes tenant {tenant.tenant_id!r}'s interface ({'; '.join(changes)}), "
            f"which breaks every client of the tenant: {action} with --allow-interface-change "
            "once they are ready for it"
        )
    return changes


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


# --- model versions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionRow:
    sha256: str
    model_format: str
    source_format: str
    registered_at: int
    probe: str
    current: bool
    n_features: int
    classes: list[Any]
    sklearn_version: str
    task: str = CLASSIFICATION
    feature_names: tuple[str, ...] | None = None
    accepts_missing: bool = False
    has_probabilities: bool = False
    # Published with --allow-interface-change: its interface differed from the one then served.
    interface_changed: bool = False
    registered_at_ns: int = 0  # 0: registered before records held it

    @property
    def order(self) -> tuple[int, int, str]:
        """Registration order: by the second, then within it by the nanosecond (a version whose
        record predates `registered_at_ns` comes first in its second), then by digest."""
        return (self.registered_at, self.registered_at_ns, self.sha256)


def list_versions(runtime: Runtime, tenant_id: str) -> list[VersionRow]:
    """Every registered version of a tenant's model, oldest first, from the records in the bucket."""
    current = existing_tenant(runtime, tenant_id).model_sha256
    s3 = runtime.s3
    bucket = runtime.settings.model_bucket
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"models/{tenant_id}/"):
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith(".json"):
                continue
            try:
                record = ModelRecord.from_json(
                    json.loads(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
                )
            except (ValueError, KeyError, TypeError, AttributeError):
                raise OnboardingError(_malformed(entry["Key"])) from None
            rows.append(
                VersionRow(
                    sha256=record.sha256,
                    model_format=record.model_format,
                    source_format=record.source_format,
                    registered_at=record.registered_at,
                    probe=record.describe_probe(),
                    current=record.sha256 == current,
                    n_features=record.n_features,
                    classes=list(record.classes),
                    sklearn_version=record.sklearn_version,
                    task=record.task,
                    feature_names=record.feature_names,
                    accepts_missing=record.accepts_missing,
                    has_probabilities=record.has_probabilities,
                    interface_changed=record.interface_changed,
                    registered_at_ns=record.registered_at_ns,
                )
            )
    return sorted(rows, key=lambda row: row.order)


def _interface(row: VersionRow) -> Interface:
    classes = tuple(row.classes) if row.task == CLASSIFICATION else ()
    return Interface(row.task, row.n_features, classes, row.feature_names, row.has_probabilities)


@dataclass(frozen=True, slots=True)
class Rollback:
    version: VersionRow
    interface_changes: tuple[str, ...]  # what it changed in the tenant's interface; empty: nothing


def rollback(
    runtime: Runtime, tenant_id: str, to: str | None = None, *, allow_interface_change: bool = False
) -> Rollback:
    """Point the tenant's mapping at a previously registered version: `to` (a digest or a unique
    prefix of at least 12 hex digits), else the version registered before the current one.

    The object is fetched and hashed first: a version whose bytes are gone or changed is refused,
    and so is one whose interface differs from the active one's, unless `allow_interface_change`.
    """
    tenant = existing_tenant(runtime, tenant_id)
    versions = list_versions(runtime, tenant_id)
    current = next((v for v in versions if v.current), None)
    if to is None:
        if current is None:
            raise OnboardingError("the current model has no registration record: name a version with --to")
        earlier = [v for v in versions if v.order < current.order]
        if not earlier:
            raise OnboardingError(f"tenant {tenant_id!r} has no version before the current one")
        target = earlier[-1]
    else:
        if len(to) < 12:
            raise OnboardingError("name a version by at least 12 hex digits of its digest")
        matches = [v for v in versions if v.sha256.startswith(to.lower())]
        if len(matches) != 1:
            raise OnboardingError(f"{len(matches)} versions of tenant {tenant_id!r} match {to!r}")
        target = matches[0]
    if target.current:
        raise OnboardingError(f"version {target.sha256[:12]} is already current")
    changes = interface_changes(
        runtime, tenant, _interface(target), allow=allow_interface_change, action="roll back"
    )
    key = model_key(tenant_id, target.sha256, target.model_format)
    s3 = runtime.s3
    try:
        data = s3.get_object(Bucket=runtime.settings.model_bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise OnboardingError(f"version {target.sha256[:12]}'s model object is missing") from None
    if sha256_hex(data) != target.sha256:
        raise OnboardingError(f"version {target.sha256[:12]}'s model object does not match its digest")
    facts = ModelFacts(
        sha256=target.sha256,
        n_features=target.n_features,
        classes=target.classes,
        sklearn_version=target.sklearn_version,
        model_format=target.model_format,
        source_format=target.source_format,
        task=target.task,
        feature_names=target.feature_names,
        accepts_missing=target.accepts_missing,
    )
    now = int(time.time())
    change = TenantChange(pin=facts.pin(key), interface_changed_at=now if changes else None)
    update_tenant(runtime, tenant_id, change, now)
    return Rollback(target, changes)
