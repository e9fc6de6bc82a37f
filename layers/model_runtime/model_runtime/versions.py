"""A tenant's model versions: listed, looked up and activated (rolled back to), without numpy.

A version is a content-addressed model object `models/<tenant>/<sha256>.<format>` and its
registration record `models/<tenant>/<sha256>.json` (`ModelRecord`) in the model bucket; the
tenant's mapping pins one of them. Registering a new version needs the registry (numpy, ONNX
Runtime: `registry.registration`); everything here is table- and bucket-level, so both the
operator's CLI (`inferctl list-versions`, `rollback`) and the tenant-admin function (whose zip
holds only this package) call these same functions.

Errors are `VersionError` subclasses whose message is one line for the operator; the tenant-admin
API maps each class to its own fixed problem body (it never repeats these messages, which name
flags of the CLI).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_runtime.interface import Interface, differences
from model_runtime.model_objects import model_key, record_key, sha256_hex
from model_runtime.table import CLASSIFICATION, ItemMissing, ModelPin, ModelRecord, Tenant, TenantChange

if TYPE_CHECKING:
    from model_runtime.runtime import Runtime

MIN_DIGEST_PREFIX = 12  # what clients see as `model_version`
_HEX = frozenset("0123456789abcdef")


class VersionError(Exception):
    """A version operation is refused; the message is one line meant for the operator."""


class UnknownTenant(VersionError):
    pass


class NoSuchVersion(VersionError):
    pass


class AlreadyCurrent(VersionError):
    pass


class DamagedVersion(VersionError):
    """A record that does not parse, or a model object that is gone or no longer its digest."""


class InterfaceChanged(VersionError):
    def __init__(self, message: str, changes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.changes = changes


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

    @property
    def interface(self) -> Interface:
        classes = tuple(self.classes) if self.task == CLASSIFICATION else ()
        return Interface(self.task, self.n_features, classes, self.feature_names, self.has_probabilities)

    def pin(self, tenant_id: str) -> ModelPin:
        return ModelPin(
            model_key(tenant_id, self.sha256, self.model_format),
            self.sha256,
            self.model_format,
            self.n_features,
            tuple(self.classes),
            self.sklearn_version,
            self.task,
            self.feature_names,
            self.accepts_missing,
        )

    @classmethod
    def of_record(cls, record: ModelRecord, current_sha256: str) -> VersionRow:
        return cls(
            sha256=record.sha256,
            model_format=record.model_format,
            source_format=record.source_format,
            registered_at=record.registered_at,
            probe=record.describe_probe(),
            current=record.sha256 == current_sha256,
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


def _malformed(key: str) -> str:
    return (
        f"the version record {key} is malformed: restore it from the bucket's "
        "versions, or delete it if that version is never to be rolled back to"
    )


def _parse_record(body: bytes, key: str) -> ModelRecord:
    try:
        return ModelRecord.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DamagedVersion(_malformed(key)) from None


def read_record(runtime: Runtime, tenant_id: str, sha256: str) -> ModelRecord | None:
    """A version's registration record, or None (a version registered before records existed)."""
    s3 = runtime.s3
    key = record_key(tenant_id, sha256)
    try:
        body = s3.get_object(Bucket=runtime.settings.model_bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return _parse_record(body, key)


def existing_tenant(runtime: Runtime, tenant_id: str) -> Tenant:
    """The tenant's mapping (a consistent read), or `UnknownTenant` naming it."""
    tenant = runtime.table.get_tenant(tenant_id, consistent=True)
    if tenant is None:
        raise UnknownTenant(f"unknown tenant {tenant_id!r}")
    return tenant


def interface_changes(
    runtime: Runtime, tenant: Tenant, new: Interface, *, allow: bool, action: str
) -> tuple[str, ...]:
    """What `new` changes in `tenant`'s interface; refused (`InterfaceChanged`, one line saying
    what changed) unless `allow`. `action` names the command for the message ("publish it")."""
    record = read_record(runtime, tenant.tenant_id, tenant.model_sha256)
    active = Interface.of_tenant(tenant) if record is None else Interface.of_record(record)
    changes = differences(new, active)
    if changes and not allow:
        raise InterfaceChanged(
            f"this version changes tenant {tenant.tenant_id!r}'s interface ({'; '.join(changes)}), "
            f"which breaks every client of the tenant: {action} with --allow-interface-change "
            "once they are ready for it",
            changes,
        )
    return changes


def list_versions(runtime: Runtime, tenant_id: str) -> list[VersionRow]:
    """Every registered version of a tenant's model, oldest first, from the records in the bucket
    under `models/<tenant_id>/` (and nowhere else)."""
    current = existing_tenant(runtime, tenant_id).model_sha256
    s3 = runtime.s3
    bucket = runtime.settings.model_bucket
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"models/{tenant_id}/"):
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith(".json"):
                continue
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            rows.append(VersionRow.of_record(_parse_record(body, entry["Key"]), current))
    return sorted(rows, key=lambda row: row.order)


def is_digest_prefix(text: str) -> bool:
    """A version's name as clients may give it: 12 to 64 lower-case hex digits."""
    return MIN_DIGEST_PREFIX <= len(text) <= 64 and set(text) <= _HEX


def find_version(versions: list[VersionRow], tenant_id: str, to: str) -> VersionRow:
    """The one version whose digest starts with `to` (at least 12 hex digits)."""
    if len(to) < MIN_DIGEST_PREFIX:
        raise NoSuchVersion("name a version by at least 12 hex digits of its digest")
    matches = [v for v in versions if v.sha256.startswith(to.lower())]
    if len(matches) != 1:
        raise NoSuchVersion(f"{len(matches)} versions of tenant {tenant_id!r} match {to!r}")
    return matches[0]


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
            raise NoSuchVersion("the current model has no registration record: name a version with --to")
        earlier = [v for v in versions if v.order < current.order]
        if not earlier:
            raise NoSuchVersion(f"tenant {tenant_id!r} has no version before the current one")
        target = earlier[-1]
    else:
        target = find_version(versions, tenant_id, to)
    if target.current:
        raise AlreadyCurrent(f"version {target.sha256[:12]} is already current")
    changes = interface_changes(
        runtime, tenant, target.interface, allow=allow_interface_change, action="roll back"
    )
    pin = target.pin(tenant_id)
    s3 = runtime.s3
    try:
        data = s3.get_object(Bucket=runtime.settings.model_bucket, Key=pin.model_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise DamagedVersion(f"version {target.sha256[:12]}'s model object is missing") from None
    if sha256_hex(data) != target.sha256:
        raise DamagedVersion(f"version {target.sha256[:12]}'s model object does not match its digest")
    now = int(time.time())
    try:
        runtime.table.update_tenant(
            tenant_id, TenantChange(pin=pin, interface_changed_at=now if changes else None), now
        )
    except ItemMissing:
        raise UnknownTenant(f"unknown tenant {tenant_id!r}") from None
    return Rollback(target, changes)
