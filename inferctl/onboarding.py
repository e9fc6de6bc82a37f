"""Writes the items `model_runtime.store` reads: tenants with their pinned model, and users.

Model files are checked by `inferctl.registry` (formats that cannot run code, conversion to ONNX
with a probe); what this module guarantees is that the mapping it writes pins exactly the bytes it
uploaded, content-addressed, next to a registration record of each version.
Every input is validated before the first write, and writes are ordered so a failure leaves
nothing a request could reach half-written: the model object goes up first (content-addressed,
so a stray one is harmless), and the mapping that points at it is written last, conditionally.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from model_runtime import aws
from model_runtime.credentials import valid_username
from model_runtime.models import ONNX, model_key, sha256_hex
from model_runtime.passwords import MAX_PASSWORD_CHARS, hash_password
from model_runtime.settings import get_settings
from model_runtime.store import ACTIVE, DISABLED, get_tenant, get_user, tenant_pk, user_pk

from inferctl.registry import RegistrationError, register

DEFAULT_MAX_BATCH = 1000
MAX_BATCH_LIMIT = 100_000
MIN_PASSWORD_CHARS = 8
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

    @property
    def version(self) -> str:
        """The short digest clients see as `model_version` (see `store.Tenant.model_version`)."""
        return self.sha256[:12]


def record_key(tenant_id: str, sha256: str) -> str:
    """The registration record stored beside each model version (`list-versions`, `rollback`)."""
    return f"models/{tenant_id}/{sha256}.json"


def validate_tenant_id(tenant_id: str) -> None:
    if not (1 <= len(tenant_id) <= 64 and set(tenant_id) <= TENANT_ID_CHARS and tenant_id[0] != "-"):
        raise OnboardingError("tenant ids are 1-64 lower-case letters, digits and '-'")


def validate_max_batch(max_batch: int) -> None:
    if not 1 <= max_batch <= MAX_BATCH_LIMIT:
        raise OnboardingError(f"max_batch must be between 1 and {MAX_BATCH_LIMIT}")


def _tenant_item(tenant_id: str) -> dict[str, Any] | None:
    response = aws.dynamodb().get_item(
        TableName=get_settings().table_name, Key={"pk": {"S": tenant_pk(tenant_id)}}, ConsistentRead=True
    )
    return response.get("Item")


def put_model(
    tenant_id: str,
    data: bytes,
    max_batch: int | None,
    *,
    new_tenant: bool,
    filename: str,
    trust_pickle: bool = False,
    sample: npt.NDArray[np.float64] | None = None,
) -> ModelFacts:
    """Register a model file (see `inferctl.registry`), upload what is served content-addressed
    with its registration record, and point the tenant's mapping at it.

    `new_tenant=True` creates the mapping (active, `max_batch` or the default); `False` publishes a
    new version of an existing tenant's model and changes only the model fields (and `max_batch`
    when given): status and `tokens_not_before` stay as the operator left them.
    """
    validate_tenant_id(tenant_id)
    if max_batch is not None:
        validate_max_batch(max_batch)
    try:
        registration = register(filename, data, trust_pickle=trust_pickle, sample=sample)
    except RegistrationError as error:
        raise OnboardingError(str(error)) from None
    exists = _tenant_item(tenant_id) is not None
    if exists and new_tenant:
        raise OnboardingError(f"tenant {tenant_id!r} already exists")
    if not exists and not new_tenant:
        raise OnboardingError(f"unknown tenant {tenant_id!r}")

    settings = get_settings()
    sha256 = sha256_hex(registration.data)
    now = int(time.time())
    key = model_key(tenant_id, sha256, registration.model_format)
    s3 = aws.s3()
    s3.put_object(Bucket=settings.model_bucket, Key=key, Body=registration.data, ChecksumAlgorithm="SHA256")
    s3.put_object(
        Bucket=settings.model_bucket,
        Key=record_key(tenant_id, sha256),
        Body=json.dumps(registration.record(sha256, now)).encode(),
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
    )
    model_fields = _model_fields(key, facts, now)
    client = aws.dynamodb()
    pk = {"pk": {"S": tenant_pk(tenant_id)}}
    try:
        if new_tenant:
            client.put_item(
                TableName=settings.table_name,
                Item={
                    **pk,
                    "tenant_id": {"S": tenant_id},
                    **model_fields,
                    "max_batch": {"N": str(max_batch or DEFAULT_MAX_BATCH)},
                    "status": {"S": ACTIVE},
                    "tokens_not_before": {"N": "0"},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        else:
            if max_batch is not None:
                model_fields["max_batch"] = {"N": str(max_batch)}
            _update(pk, model_fields)
    except client.exceptions.ConditionalCheckFailedException:
        # Someone else created or deleted the tenant since the check above.
        raise OnboardingError(
            f"tenant {tenant_id!r} already exists" if new_tenant else f"unknown tenant {tenant_id!r}"
        ) from None
    return facts


def _model_fields(key: str, facts: ModelFacts, now: int) -> dict[str, Any]:
    """The mapping attributes that select a model version."""
    return {
        "model_key": {"S": key},
        "model_sha256": {"S": facts.sha256},
        "model_format": {"S": facts.model_format},
        "n_features": {"N": str(facts.n_features)},
        "classes_json": {"S": json.dumps(facts.classes)},
        "sklearn_version": {"S": facts.sklearn_version},
        "updated_at": {"N": str(now)},
    }


def _update(key: dict[str, Any], fields: dict[str, Any]) -> None:
    """SET `fields` on an item that must already exist (ConditionalCheckFailed otherwise)."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    aws.dynamodb().update_item(
        TableName=get_settings().table_name,
        Key=key,
        UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def create_user(username: str, password: str, tenant_id: str, roles: tuple[str, ...] = ("predict",)) -> None:
    if not valid_username(username):
        raise OnboardingError(
            "usernames are 1-64 letters, digits or . _ @ + - (starting with a letter or digit)"
        )
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise OnboardingError(f"passwords are {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    validate_tenant_id(tenant_id)
    if _tenant_item(tenant_id) is None:
        raise OnboardingError(f"unknown tenant {tenant_id!r}")
    client = aws.dynamodb()
    try:
        client.put_item(
            TableName=get_settings().table_name,
            Item={
                "pk": {"S": user_pk(username)},
                "username": {"S": username},
                "tenant_id": {"S": tenant_id},
                "password_hash": {"S": hash_password(password)},
                "roles": {"L": [{"S": role} for role in roles]},
                "status": {"S": ACTIVE},
                "created_at": {"N": str(int(time.time()))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise OnboardingError(f"user {username!r} already exists") from None


def set_user_status(username: str, *, active: bool, now: int | None = None) -> None:
    """Enable or disable a login.

    Disabling also revokes the user's tokens issued so far, in the tenant's mapping, so predict
    refuses them within the mapping TTL. Enabling leaves that cut-off in place: the user logs in
    again and only new tokens work.
    """
    if not valid_username(username):
        raise OnboardingError(f"unknown user {username!r}")
    try:
        _update({"pk": {"S": user_pk(username)}}, {"status": {"S": ACTIVE if active else DISABLED}})
    except aws.dynamodb().exceptions.ConditionalCheckFailedException:
        raise OnboardingError(f"unknown user {username!r}") from None
    user = get_user(username)
    if not active and user is not None:
        revoke_subject(user.tenant_id, username, (int(time.time()) if now is None else now) + 1)


# A subject's cut-off matters only while a token issued before it can still be alive: at most the
# longest lifetime the template allows (TokenTtlSeconds' MaxValue, 3600 s) plus leeway. Older
# entries are dropped on the next write, so the map stays as small as the recent disables.
SUBJECT_CUTOFF_KEPT_SECONDS = 2 * 3600


def revoke_subject(tenant_id: str, subject: str, not_before: int) -> None:
    """Refuse `subject`'s (a user's or a machine client's) tokens issued before `not_before`
    (same whole-second rule as `revoke_tokens`), within the mapping TTL."""
    key = {"pk": {"S": tenant_pk(tenant_id)}}
    tenant = get_tenant(tenant_id)
    if tenant is None:
        return  # no mapping: predict already refuses every token of this tenant
    client = aws.dynamodb()
    table = get_settings().table_name
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET subjects_not_before = if_not_exists(subjects_not_before, :empty)",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":empty": {"M": {}}},
    )
    stale = [
        name
        for name, cutoff in tenant.subjects_not_before.items()
        if cutoff < not_before - SUBJECT_CUTOFF_KEPT_SECONDS and name != subject
    ]
    names = {"#s": subject, **{f"#r{i}": name for i, name in enumerate(stale)}}
    remove = " REMOVE " + ", ".join(f"subjects_not_before.#r{i}" for i in range(len(stale))) if stale else ""
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET subjects_not_before.#s = :t, updated_at = :now" + remove,
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":t": {"N": str(not_before)}, ":now": {"N": str(not_before - 1)}},
    )


def set_tenant_status(tenant_id: str, *, active: bool) -> None:
    """Enable or disable a tenant: its users cannot log in and its tokens get 403 while disabled."""
    validate_tenant_id(tenant_id)
    fields = {"status": {"S": ACTIVE if active else DISABLED}, "updated_at": {"N": str(int(time.time()))}}
    try:
        _update({"pk": {"S": tenant_pk(tenant_id)}}, fields)
    except aws.dynamodb().exceptions.ConditionalCheckFailedException:
        raise OnboardingError(f"unknown tenant {tenant_id!r}") from None


def revoke_tokens(tenant_id: str, now: int | None = None) -> int:
    """Refuse every token of the tenant issued so far; returns the new `tokens_not_before`.

    Tokens carry `iat` in whole seconds and predict refuses `iat < tokens_not_before`, so the
    cut-off is the *next* second: a token issued earlier in this second is revoked too (a login
    in the same second as the revocation simply has to log in again).
    """
    validate_tenant_id(tenant_id)
    not_before = (int(time.time()) if now is None else now) + 1
    fields = {"tokens_not_before": {"N": str(not_before)}, "updated_at": {"N": str(not_before - 1)}}
    try:
        _update({"pk": {"S": tenant_pk(tenant_id)}}, fields)
    except aws.dynamodb().exceptions.ConditionalCheckFailedException:
        raise OnboardingError(f"unknown tenant {tenant_id!r}") from None
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


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    tenant_id: str
    status: str
    roles: list[str]
    created_at: int


def _scan(prefix: str, attributes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every item whose pk starts with `prefix`, with only `attributes` read from the table."""
    client = aws.dynamodb()
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    request: dict[str, Any] = {
        "TableName": get_settings().table_name,
        "FilterExpression": "begins_with(pk, :prefix)",
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":prefix": {"S": prefix}},
    }
    items: list[dict[str, Any]] = []
    while True:
        page = client.scan(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _s(item: dict[str, Any], name: str) -> str:
    return str(item[name]["S"]) if name in item else ""


def _n(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def list_tenants() -> list[TenantRow]:
    items = _scan(
        "tenant#",
        (
            "tenant_id",
            "status",
            "model_sha256",
            "n_features",
            "max_batch",
            "classes_json",
            "sklearn_version",
            "tokens_not_before",
            "model_format",
        ),
    )
    rows = [
        TenantRow(
            tenant_id=_s(item, "tenant_id"),
            status=_s(item, "status"),
            model_version=_s(item, "model_sha256")[:12],
            n_features=_n(item, "n_features"),
            max_batch=_n(item, "max_batch"),
            classes=json.loads(_s(item, "classes_json") or "[]"),
            sklearn_version=_s(item, "sklearn_version"),
            tokens_not_before=_n(item, "tokens_not_before"),
            model_format=_s(item, "model_format") or "pickle",
        )
        for item in items
    ]
    return sorted(rows, key=lambda row: row.tenant_id)


def list_users(tenant_id: str | None = None) -> list[UserRow]:
    # The projection never names password_hash: the hashes are not even read.
    items = _scan("user#", ("username", "tenant_id", "status", "roles", "created_at"))
    rows = [
        UserRow(
            username=_s(item, "username"),
            tenant_id=_s(item, "tenant_id"),
            status=_s(item, "status"),
            roles=[role["S"] for role in item.get("roles", {}).get("L", [])],
            created_at=_n(item, "created_at"),
        )
        for item in items
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


def list_versions(tenant_id: str) -> list[VersionRow]:
    """Every registered version of a tenant's model, oldest first, from the records in the bucket."""
    validate_tenant_id(tenant_id)
    item = _tenant_item(tenant_id)
    if item is None:
        raise OnboardingError(f"unknown tenant {tenant_id!r}")
    current = _s(item, "model_sha256")
    s3 = aws.s3()
    bucket = get_settings().model_bucket
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"models/{tenant_id}/"):
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith(".json"):
                continue
            record = json.loads(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
            probe = record.get("probe", {})
            rows.append(
                VersionRow(
                    sha256=str(record["sha256"]),
                    model_format=str(record["format"]),
                    source_format=str(record.get("source_format", "")),
                    registered_at=int(record.get("registered_at", 0)),
                    probe=f"{probe.get('rows', 0) - probe.get('disagreements', 0)}/{probe.get('rows', 0)} "
                    f"{probe.get('source', '')} rows agree",
                    current=record["sha256"] == current,
                    n_features=int(record["n_features"]),
                    classes=list(record["classes"]),
                    sklearn_version=str(record.get("sklearn_version", "")),
                )
            )
    return sorted(rows, key=lambda row: (row.registered_at, row.sha256))


def rollback(tenant_id: str, to: str | None = None) -> VersionRow:
    """Point the tenant's mapping at a previously registered version: `to` (a digest or a unique
    prefix of at least 12 hex digits), else the version registered before the current one.

    The object is fetched and hashed first: a version whose bytes are gone or changed is refused.
    """
    versions = list_versions(tenant_id)
    current = next((v for v in versions if v.current), None)
    if to is None:
        if current is None:
            raise OnboardingError("the current model has no registration record: name a version with --to")
        earlier = [
            v for v in versions if (v.registered_at, v.sha256) < (current.registered_at, current.sha256)
        ]
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
    key = model_key(tenant_id, target.sha256, target.model_format)
    s3 = aws.s3()
    try:
        data = s3.get_object(Bucket=get_settings().model_bucket, Key=key)["Body"].read()
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
    )
    try:
        _update({"pk": {"S": tenant_pk(tenant_id)}}, _model_fields(key, facts, int(time.time())))
    except aws.dynamodb().exceptions.ConditionalCheckFailedException:
        raise OnboardingError(f"unknown tenant {tenant_id!r}") from None
    return target
