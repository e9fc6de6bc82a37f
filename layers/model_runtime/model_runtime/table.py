"""The DynamoDB item design, and the one module that reads and writes it.

One table, partition key `pk` (string), no sort key:

- `user#<username>`: a login. username, tenant_id, password_hash, roles (list), status, created_at.
- `tenant#<tenant_id>`: a tenant's mapping. tenant_id, model_key, model_sha256, model_format,
  n_features, max_batch, classes_json, sklearn_version, task, feature_names_json, accepts_missing,
  status, tokens_not_before, subjects_not_before, updated_at, run_budget_ms (absent:
  `DEFAULT_RUN_BUDGET_MS`), interface_changed_at (absent: never changed); api_key_id, api_key and
  usage_tier once the tenant has an API Gateway API key (inferctl).
- `attempts#<subject>`: a failed-login counter. attempt_ids (string set: the attempts counted),
  released_ids (string set: attempts that ended in a dependency failure, never counted),
  expires_at (the table's TTL attribute).
- `keyring`: the signing keys. active_key_id, verify_key_ids (list), version, rotated_at,
  updated_at.
The ActivityTable (pk, sk) holds the audit trail of admin actions (`AuditEntry`, `ActivityLog`;
the rules are `model_runtime.audit`): pk `audit#<tenant_id>`, sk `<ISO 8601 UTC, ms>Z#<16 hex>`.
actor, via, origin, action, acted_on, result, expires_at (its TTL attribute).

- `client#<client_id>`: a machine client (OAuth2 client credentials). client_id, tenant_id,
  secret_sha256, roles (list; absent: `user`), status, created_at, revoked_at. Its attempt
  counter is `attempts#client:<id>`.

The global secondary index `by-tenant` (hash `tenant_id`, range `pk`) lists one tenant's users and
clients for its admins (`Table.users_of`, `Table.clients_of`) without a scan; it projects only
`TENANT_INDEX_ATTRIBUTES`, never a password hash, a secret digest or an API key, so the tenant-admin
function, which may query it, can read none of them through it. `roles` hold the names of
`model_runtime.roles` (a user's stored before roles meant anything may hold "predict": a `user`).

`status` is `active` or `disabled` (a machine client's: `active` or `revoked`). `classes_json`
keeps the model's labels with their JSON types (ints stay ints, strings stay strings).
`task` is `classification` or `regression` (a mapping written before tasks existed is a
classifier's); `feature_names_json` is a JSON list of names or `null`; `accepts_missing` (bool)
says the model was proven at registration to answer rows holding NaN.
`tokens_not_before` is an epoch second: tokens issued earlier are refused, which revokes every
token of a tenant at once. `subjects_not_before` (a map, subject -> epoch second) does the same for
one user's or client's tokens: disabling a user writes it here, in the item predict already reads
and caches, so cutting a user off costs the warm path nothing. Attempt counters exist for any
subject tried, known or not, so lockout behaves the same for both.

Every attribute name is spelled here, and no other module builds or reads an item
(`tests/unit/test_item_design.py` checks it; a few names are also words of the public API or the logs,
such as `tenant_id` or `n_features`, and only those appear elsewhere). Entities encode themselves
(`to_item`) and decode (`from_item`), and `Table` does the reads, writes and conditional updates,
for the functions and for `inferctl` alike. No caching and no
rules live here: the caches are the container's (`model_runtime.runtime`), the rules are
`model_runtime.access`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]

ACTIVE: Final = "active"
DISABLED: Final = "disabled"
REVOKED: Final = "revoked"

KEYRING_PK: Final = "keyring"
USER_PREFIX: Final = "user#"
TENANT_PREFIX: Final = "tenant#"
ATTEMPTS_PREFIX: Final = "attempts#"
CLIENT_PREFIX: Final = "client#"
TENANT_INDEX: Final = "by-tenant"
# What `TENANT_INDEX` projects besides its keys (template.yaml's InferenceTable says the same;
# tests/unit/test_tenant_admin_model.py keeps the two equal).
TENANT_INDEX_ATTRIBUTES: Final = ("username", "client_id", "roles", "status", "created_at")

CLASSIFICATION: Final = "classification"
REGRESSION: Final = "regression"
TASKS: Final = (CLASSIFICATION, REGRESSION)

# Every attribute of every item: the test of the item design checks no other module spells one.
ATTRIBUTE_NAMES: Final = frozenset(
    {
        "pk",
        "username",
        "tenant_id",
        "password_hash",
        "roles",
        "status",
        "created_at",
        "model_key",
        "model_sha256",
        "model_format",
        "n_features",
        "max_batch",
        "classes_json",
        "sklearn_version",
        "task",
        "feature_names_json",
        "accepts_missing",
        "tokens_not_before",
        "subjects_not_before",
        "updated_at",
        "api_key_id",
        "api_key",
        "usage_tier",
        "attempt_ids",
        "released_ids",
        "expires_at",
        "active_key_id",
        "verify_key_ids",
        "version",
        "rotated_at",
        "client_id",
        "secret_sha256",
        "revoked_at",
        "run_budget_ms",
        "interface_changed_at",
        # the tenant's history settings, and the activity table's history items (`HistoryRecord`)
        "capture",
        "history_days",
        "sk",
        "request_id",
        "sub",
        "client_kind",
        "model_version",
        "rows",
        "latency_ms",
        "probabilities",
        "recorded_at",
        "capture_json",
        "capture_parts",
        "capture_bytes",
        # the ActivityTable's audit items (`AuditEntry`)
        "actor",
        "via",
        "origin",
        "action",
        "acted_on",
        "result",
        # a tenant admin's model upload (`Upload`)
        "upload_tenant",
        "upload_format",
        "requested_by",
        "interface_change_allowed",
        "model_version_sha256",
        "refusal_reason",
    }
)

# How long one request may run the tenant's model (model_serving/run_budget.py): well below
# predict's 10 s function timeout, far above a converted estimator's milliseconds.
DEFAULT_RUN_BUDGET_MS: Final = 1000
MAX_RUN_BUDGET_MS: Final = 5000
# How long a tenant's inference history is kept (docs/history.md): DynamoDB TTL and S3 lifecycle.
DEFAULT_HISTORY_DAYS: Final = 30
MAX_HISTORY_DAYS: Final = 400


class ItemExists(Exception):
    """A create found the item already there."""


class ItemMissing(Exception):
    """An update found no item to change (or, for the key ring, another version)."""


class AdminGone(Exception):
    """The admin a change relied on keeping the tenant administered is no longer one."""


def user_pk(username: str) -> str:
    return f"{USER_PREFIX}{username}"


def tenant_pk(tenant_id: str) -> str:
    return f"{TENANT_PREFIX}{tenant_id}"


def attempts_pk(subject: str) -> str:
    return f"{ATTEMPTS_PREFIX}{subject}"


def client_pk(client_id: str) -> str:
    return f"{CLIENT_PREFIX}{client_id}"


def client_subject(client_id: str) -> str:
    """The lockout subject of a client. Usernames cannot contain ':', so the two never collide."""
    return f"client:{client_id}"


# --- attribute values ---------------------------------------------------------------------------


def _s(item: Mapping[str, Any], name: str, default: str = "") -> str:
    value = item.get(name)
    return str(value["S"]) if value else default


def _n(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value else default


def _b(item: Mapping[str, Any], name: str) -> bool:
    value = item.get(name)
    return bool(value["BOOL"]) if value else False


def _names(item: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    names = json.loads(_s(item, name, "null"))
    return None if names is None else tuple(str(n) for n in names)


def _strings(item: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name)
    return tuple(v["S"] for v in value["L"]) if value else ()


def _numbers_by_name(item: Mapping[str, Any], name: str) -> dict[str, int]:
    value = item.get(name)
    return {key: int(number["N"]) for key, number in value["M"].items()} if value else {}


def S(value: str) -> dict[str, str]:  # noqa: N802 - DynamoDB's own type letter
    return {"S": value}


def N(value: int) -> dict[str, str]:  # noqa: N802
    return {"N": str(value)}


def L(values: tuple[str, ...] | list[str]) -> dict[str, list[dict[str, str]]]:  # noqa: N802
    return {"L": [S(value) for value in values]}


# --- entities -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    username: str
    tenant_id: str
    password_hash: str  # empty when read by a listing, which never reads the hashes
    roles: tuple[str, ...]
    status: str
    created_at: int = 0

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_item(self) -> Item:
        return {
            "pk": S(user_pk(self.username)),
            "username": S(self.username),
            "tenant_id": S(self.tenant_id),
            "password_hash": S(self.password_hash),
            "roles": L(self.roles),
            "status": S(self.status),
            "created_at": N(self.created_at),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> User:
        return cls(
            username=_s(item, "pk").removeprefix(USER_PREFIX) or _s(item, "username"),
            tenant_id=_s(item, "tenant_id"),
            password_hash=_s(item, "password_hash"),
            roles=_strings(item, "roles"),
            status=_s(item, "status", DISABLED),
            created_at=_n(item, "created_at"),
        )


@dataclass(frozen=True, slots=True)
class ModelPin:
    """The mapping attributes that select a model version (a new tenant, a publish, a rollback)."""

    model_key: str
    model_sha256: str
    model_format: str
    n_features: int
    classes: tuple[Any, ...]
    sklearn_version: str
    task: str = CLASSIFICATION
    feature_names: tuple[str, ...] | None = None
    accepts_missing: bool = False

    def to_item(self) -> Item:
        return {
            "model_key": S(self.model_key),
            "model_sha256": S(self.model_sha256),
            "model_format": S(self.model_format),
            "n_features": N(self.n_features),
            "classes_json": S(json.dumps(list(self.classes))),
            "sklearn_version": S(self.sklearn_version),
            "task": S(self.task),
            "feature_names_json": S(
                json.dumps(None if self.feature_names is None else list(self.feature_names))
            ),
            "accepts_missing": {"BOOL": self.accepts_missing},
        }


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str
    model_key: str
    model_sha256: str
    n_features: int
    max_batch: int
    classes: tuple[Any, ...]
    sklearn_version: str
    status: str
    tokens_not_before: int
    subjects_not_before: Mapping[str, int]
    # The API Gateway API key that meters the tenant on its tier's usage plan (the authorizer
    # returns it as usageIdentifierKey); empty for a tenant onboarded without one.
    api_key: str = ""
    usage_tier: str = ""
    # How the pinned bytes are served: "onnx" or "skops". Mappings written before formats
    # existed have none and pinned a pickle: they read as "pickle", which is never served.
    model_format: str = "pickle"
    api_key_id: str = ""
    updated_at: int = 0
    run_budget_ms: int = DEFAULT_RUN_BUDGET_MS
    # What the model is (`ModelPin`): a mapping written before these existed is a classifier's,
    # with positional rows only and no missing values.
    task: str = CLASSIFICATION
    feature_names: tuple[str, ...] | None = None
    accepts_missing: bool = False
    # When an operator last published (or rolled back to) a version with another interface
    # (registry/interface.py), with --allow-interface-change; 0: never.
    interface_changed_at: int = 0
    # Inference history (docs/history.md): whether records also hold rows and answers, and how
    # many days records are kept.
    capture: bool = False
    history_days: int = DEFAULT_HISTORY_DAYS

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def tokens_valid_from(self, subject: str) -> int:
        """The earliest `iat` accepted for `subject`: the tenant's cut-off or the subject's own."""
        return max(self.tokens_not_before, self.subjects_not_before.get(subject, 0))

    @property
    def model_version(self) -> str:
        """The short digest clients see: identifies the model without revealing where it lives."""
        return self.model_sha256[:12]

    @classmethod
    def new(cls, tenant_id: str, pin: ModelPin, max_batch: int, now: int) -> Tenant:
        """A new tenant's mapping: active, no token revoked yet, no API key yet."""
        return cls(
            tenant_id=tenant_id,
            model_key=pin.model_key,
            model_sha256=pin.model_sha256,
            n_features=pin.n_features,
            max_batch=max_batch,
            classes=pin.classes,
            sklearn_version=pin.sklearn_version,
            status=ACTIVE,
            tokens_not_before=0,
            subjects_not_before={},
            model_format=pin.model_format,
            updated_at=now,
            task=pin.task,
            feature_names=pin.feature_names,
            accepts_missing=pin.accepts_missing,
        )

    def to_item(self) -> Item:
        """The item a new tenant is created with (API keys and cut-offs are written by updates)."""
        pin = ModelPin(
            self.model_key,
            self.model_sha256,
            self.model_format,
            self.n_features,
            self.classes,
            self.sklearn_version,
            self.task,
            self.feature_names,
            self.accepts_missing,
        )
        return {
            "pk": S(tenant_pk(self.tenant_id)),
            "tenant_id": S(self.tenant_id),
            **pin.to_item(),
            "updated_at": N(self.updated_at),
            "max_batch": N(self.max_batch),
            "status": S(self.status),
            "tokens_not_before": N(self.tokens_not_before),
            "run_budget_ms": N(self.run_budget_ms),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Tenant:
        return cls(
            tenant_id=_s(item, "pk").removeprefix(TENANT_PREFIX) or _s(item, "tenant_id"),
            model_key=_s(item, "model_key"),
            model_sha256=_s(item, "model_sha256"),
            n_features=_n(item, "n_features"),
            max_batch=_n(item, "max_batch"),
            classes=tuple(json.loads(_s(item, "classes_json", "[]"))),
            sklearn_version=_s(item, "sklearn_version"),
            status=_s(item, "status", DISABLED),
            tokens_not_before=_n(item, "tokens_not_before"),
            subjects_not_before=_numbers_by_name(item, "subjects_not_before"),
            api_key=_s(item, "api_key"),
            usage_tier=_s(item, "usage_tier"),
            model_format=_s(item, "model_format", "pickle"),
            api_key_id=_s(item, "api_key_id"),
            updated_at=_n(item, "updated_at"),
            run_budget_ms=_n(item, "run_budget_ms", DEFAULT_RUN_BUDGET_MS),
            task=_s(item, "task", CLASSIFICATION),
            feature_names=_names(item, "feature_names_json"),
            accepts_missing=_b(item, "accepts_missing"),
            interface_changed_at=_n(item, "interface_changed_at"),
            capture=_b(item, "capture"),
            history_days=_n(item, "history_days", DEFAULT_HISTORY_DAYS),
        )


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The operator's KMS signing keys: `active` signs, every key in `verify` still verifies.

    `version` numbers the ring's writes (0: no item yet, the template's key signs and verifies
    alone), so two rotations cannot interleave; `rotated_at` is when the active key last changed.
    """

    active_key_id: str
    verify_key_ids: tuple[str, ...]
    version: int = 0
    rotated_at: int = 0

    @property
    def retiring(self) -> tuple[str, ...]:
        return tuple(key for key in self.verify_key_ids if key != self.active_key_id)

    @classmethod
    def single(cls, key_id: str) -> KeyRing:
        """The template's one key, until an operator first rotates."""
        return cls(key_id, (key_id,))

    def to_item(self, updated_at: int) -> Item:
        return {
            "pk": S(KEYRING_PK),
            "active_key_id": S(self.active_key_id),
            "verify_key_ids": L(self.verify_key_ids),
            "version": N(self.version),
            "rotated_at": N(self.rotated_at),
            "updated_at": N(updated_at),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> KeyRing:
        return cls(
            active_key_id=_s(item, "active_key_id"),
            verify_key_ids=_strings(item, "verify_key_ids"),
            version=_n(item, "version", 1),
            rotated_at=_n(item, "rotated_at"),
        )


@dataclass(frozen=True, slots=True)
class Client:
    """A machine client: authenticates with a secret of which only the SHA-256 is stored."""

    client_id: str
    tenant_id: str
    secret_sha256: str  # empty when read by a listing, which never reads the digests
    status: str
    created_at: int = 0
    roles: tuple[str, ...] = ("user",)  # its scopes (`model_runtime.roles`): `user` is "predict"

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_item(self) -> Item:
        return {
            "pk": S(client_pk(self.client_id)),
            "client_id": S(self.client_id),
            "tenant_id": S(self.tenant_id),
            "secret_sha256": S(self.secret_sha256),
            "status": S(self.status),
            "created_at": N(self.created_at),
            "roles": L(self.roles),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Client:
        return cls(
            client_id=_s(item, "pk").removeprefix(CLIENT_PREFIX) or _s(item, "client_id"),
            tenant_id=_s(item, "tenant_id"),
            secret_sha256=_s(item, "secret_sha256"),
            status=_s(item, "status", DISABLED),
            created_at=_n(item, "created_at"),
            roles=_strings(item, "roles") or ("user",),
        )


@dataclass(frozen=True, slots=True)
class Attempts:
    """A subject's failed-login counter: `failures` attempts counted until `expires_at` (epoch seconds)."""

    failures: int
    expires_at: int

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Attempts:
        return cls(len((item.get("attempt_ids") or {}).get("SS", ())), _n(item, "expires_at"))


@dataclass(frozen=True, slots=True)
class TenantChange:
    """What an operator's update of a tenant's mapping sets; None leaves an attribute as it is."""

    pin: ModelPin | None = None
    max_batch: int | None = None
    status: str | None = None
    tokens_not_before: int | None = None
    api_key_id: str | None = None
    api_key: str | None = None
    usage_tier: str | None = None
    run_budget_ms: int | None = None
    interface_changed_at: int | None = None
    capture: bool | None = None
    history_days: int | None = None

    def to_item(self, updated_at: int) -> Item:
        fields: Item = dict(self.pin.to_item()) if self.pin else {}
        if self.capture is not None:
            fields["capture"] = {"BOOL": self.capture}
        if self.history_days is not None:
            fields["history_days"] = N(self.history_days)
        for name, value in (
            ("max_batch", None if self.max_batch is None else N(self.max_batch)),
            ("status", None if self.status is None else S(self.status)),
            ("tokens_not_before", None if self.tokens_not_before is None else N(self.tokens_not_before)),
            ("api_key_id", None if self.api_key_id is None else S(self.api_key_id)),
            ("api_key", None if self.api_key is None else S(self.api_key)),
            ("usage_tier", None if self.usage_tier is None else S(self.usage_tier)),
            ("run_budget_ms", None if self.run_budget_ms is None else N(self.run_budget_ms)),
            (
                "interface_changed_at",
                None if self.interface_changed_at is None else N(self.interface_changed_at),
            ),
        ):
            if value is not None:
                fields[name] = value
        return {**fields, "updated_at": N(updated_at)}


# --- the repository ---------------------------------------------------------------------------------


class Table:
    """Reads and writes of the items above, on one table through one DynamoDB client."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def _get(self, pk: str, *, consistent: bool = False) -> Item | None:
        response = self.client.get_item(
            TableName=self.table_name, Key={"pk": S(pk)}, ConsistentRead=consistent
        )
        return response.get("Item")

    def _put_new(self, item: Item) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ItemExists() from None

    def _set(self, pk: str, fields: Item, *, tenant_id: str | None = None) -> None:
        """SET `fields` on an item that must already exist, and with `tenant_id`, belong to that
        tenant (`ItemMissing` otherwise): the check and the write are one conditional write."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        condition = "attribute_exists(pk)"
        if tenant_id is not None:
            names["#tenant"] = "tenant_id"
            values[":tenant"] = S(tenant_id)
            condition += " AND #tenant = :tenant"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": S(pk)},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ItemMissing() from None

    # --- the request path --------------------------------------------------------------------

    def get_user(self, username: str) -> User | None:
        item = self._get(user_pk(username))
        return None if item is None else User.from_item(item)

    def get_tenant(self, tenant_id: str, *, consistent: bool = False) -> Tenant | None:
        item = self._get(tenant_pk(tenant_id), consistent=consistent)
        return None if item is None else Tenant.from_item(item)

    def get_keyring(self, default_key_id: str, *, consistent: bool = False) -> KeyRing:
        """The key ring item, or the template's single key until an operator first rotates."""
        item = self._get(KEYRING_PK, consistent=consistent)
        return KeyRing.single(default_key_id) if item is None else KeyRing.from_item(item)

    def get_client(self, client_id: str) -> Client | None:
        item = self._get(client_pk(client_id))
        return None if item is None else Client.from_item(item)

    # --- failed-login counters (the policy is `model_runtime.access`) -------------------------

    def get_attempts(self, subject: str) -> Attempts | None:
        item = self._get(attempts_pk(subject), consistent=True)
        return None if item is None else Attempts.from_item(item)

    # Each attempt has its own id in a string set, so a write can be sent twice (a retry after a
    # timeout that DynamoDB applied anyway) and still count once, and an attempt can be taken back
    # whatever the order in which DynamoDB applies the two writes (`release_attempt`).

    def count_attempt(self, subject: str, attempt_id: str, now: int, expires_at: int, limit: int) -> bool:
        """Count attempt `attempt_id` and slide the counter's expiry, if the counter is absent, or
        live and below `limit` (or already counting it), and the attempt was not released; False
        (nothing written) otherwise. One conditional write: racing requests cannot all pass."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": S(attempts_pk(subject))},
                UpdateExpression="ADD attempt_ids :ids SET expires_at = :exp",
                ConditionExpression=(
                    "NOT contains(released_ids, :id) AND (attribute_not_exists(pk) OR (expires_at > :now"
                    " AND (attribute_not_exists(attempt_ids) OR size(attempt_ids) < :limit"
                    " OR contains(attempt_ids, :id))))"
                ),
                ExpressionAttributeValues={
                    ":ids": {"SS": [attempt_id]},
                    ":id": S(attempt_id),
                    ":exp": N(expires_at),
                    ":now": N(now),
                    ":limit": N(limit),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def restart_attempts(self, subject: str, attempt_id: str, now: int, expires_at: int) -> bool:
        """Restart an expired counter at this one attempt (DynamoDB's TTL deletes lazily); False if
        it is live. Releases older than the window are forgotten with it."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": S(attempts_pk(subject))},
                UpdateExpression="SET attempt_ids = :ids, expires_at = :exp REMOVE released_ids",
                ConditionExpression="expires_at <= :now AND NOT contains(released_ids, :id)",
                ExpressionAttributeValues={
                    ":ids": {"SS": [attempt_id]},
                    ":id": S(attempt_id),
                    ":exp": N(expires_at),
                    ":now": N(now),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_attempt(self, subject: str, attempt_id: str, expires_at: int) -> None:
        """Take attempt `attempt_id` back, and mark it released so that its counting write, if
        DynamoDB applies it only after this one, is refused. Unconditional and idempotent."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": S(attempts_pk(subject))},
            UpdateExpression=(
                "DELETE attempt_ids :ids ADD released_ids :ids"
                " SET expires_at = if_not_exists(expires_at, :exp)"
            ),
            ExpressionAttributeValues={":ids": {"SS": [attempt_id]}, ":exp": N(expires_at)},
        )

    def clear_attempts(self, subject: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key={"pk": S(attempts_pk(subject))})

    # --- the operator's writes (inferctl) ------------------------------------------------------

    def create_tenant(self, tenant: Tenant) -> None:
        self._put_new(tenant.to_item())

    def update_tenant(self, tenant_id: str, change: TenantChange, now: int) -> None:
        self._set(tenant_pk(tenant_id), change.to_item(now))

    def create_user(self, user: User) -> None:
        self._put_new(user.to_item())

    def set_user_status(
        self, username: str, status: str, *, tenant_id: str | None = None, other_admin: str | None = None
    ) -> None:
        """Set a user's status; with `tenant_id`, only if the user is that tenant's (`ItemMissing`
        otherwise, as for no user at all: a tenant admin cannot tell another tenant's user exists);
        with `other_admin`, only while that user is still an active admin of the same tenant
        (`AdminGone` otherwise), in one transaction."""
        self._set_user(username, {"status": S(status)}, tenant_id, other_admin)

    def set_user_roles(
        self,
        username: str,
        roles: tuple[str, ...],
        *,
        tenant_id: str | None = None,
        other_admin: str | None = None,
    ) -> None:
        """Set a user's roles; `tenant_id` and `other_admin` as for `set_user_status`."""
        self._set_user(username, {"roles": L(roles)}, tenant_id, other_admin)

    def _set_user(self, username: str, fields: Item, tenant_id: str | None, other_admin: str | None) -> None:
        if other_admin is None:
            self._set(user_pk(username), fields, tenant_id=tenant_id)
            return
        # Two admins demoting each other at once: each transaction checks the other's item, and
        # DynamoDB serializes them, so the second sees the first's change and is cancelled.
        names = {f"#f{i}": name for i, name in enumerate(fields)} | {"#tenant": "tenant_id"}
        values = {f":v{i}": value for i, value in enumerate(fields.values())} | {
            ":tenant": S(tenant_id or "")
        }
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"pk": S(user_pk(username))},
                            "UpdateExpression": "SET "
                            + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                            "ConditionExpression": "attribute_exists(pk) AND #tenant = :tenant",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": self.table_name,
                            "Key": {"pk": S(user_pk(other_admin))},
                            "ConditionExpression": (
                                "#tenant = :tenant AND #status = :active AND contains(#roles, :admin)"
                            ),
                            "ExpressionAttributeNames": {
                                "#tenant": "tenant_id",
                                "#status": "status",
                                "#roles": "roles",
                            },
                            "ExpressionAttributeValues": {
                                ":tenant": S(tenant_id or ""),
                                ":active": S(ACTIVE),
                                ":admin": S("admin"),
                            },
                        }
                    },
                ]
            )
        except self.client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons", [])
            codes = [reason.get("Code") for reason in reasons]
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise ItemMissing() from None
            if codes[1:2] == ["ConditionalCheckFailed"]:
                raise AdminGone() from None
            raise

    def create_client(self, client: Client) -> None:
        self._put_new(client.to_item())  # 96 random bits: a clash is a bug

    def revoke_client(self, client_id: str, now: int, *, tenant_id: str | None = None) -> None:
        """Revoke a client; `tenant_id` as for `set_user_status`."""
        self._set(client_pk(client_id), {"status": S(REVOKED), "revoked_at": N(now)}, tenant_id=tenant_id)

    def set_subject_not_before(self, tenant_id: str, subject: str, not_before: int) -> None:
        """Refuse `subject`'s tokens issued before `not_before` (one small write, whatever the map holds)."""
        key = {"pk": S(tenant_pk(tenant_id))}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET subjects_not_before = if_not_exists(subjects_not_before, :empty)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":empty": {"M": {}}},
            )
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET subjects_not_before.#s = :t, updated_at = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#s": subject},
                ExpressionAttributeValues={":t": N(not_before), ":now": N(not_before - 1)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ItemMissing() from None

    # DynamoDB refuses an expression longer than 4 KB. Removing every stale cut-off in the write
    # that set a new one failed past ~150 entries (200 made a 5,346-character expression), and
    # then every later revocation of the tenant failed. A chunk of 100 is a REMOVE of 895
    # characters and a condition of 1,885 (names go in placeholders, whatever their length).
    STALE_CUTOFFS_PER_WRITE = 100

    def drop_subject_cutoffs(self, tenant_id: str, subjects: tuple[str, ...], older_than: int) -> int:
        """Remove the cut-offs of `subjects`, in writes that fit DynamoDB's limits; returns how many.

        A chunk is removed only if each of its cut-offs is still before `older_than`: a subject
        revoked again since it was read keeps its new cut-off (that chunk waits for the next call).
        """
        removed = 0
        for start in range(0, len(subjects), self.STALE_CUTOFFS_PER_WRITE):
            chunk = subjects[start : start + self.STALE_CUTOFFS_PER_WRITE]
            names = {"#m": "subjects_not_before", **{f"#r{i}": name for i, name in enumerate(chunk)}}
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"pk": S(tenant_pk(tenant_id))},
                    UpdateExpression="REMOVE " + ", ".join(f"#m.#r{i}" for i in range(len(chunk))),
                    ConditionExpression=" AND ".join(f"#m.#r{i} < :old" for i in range(len(chunk))),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":old": N(older_than)},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
            removed += len(chunk)
        return removed

    def put_keyring(self, ring: KeyRing, previous_version: int, updated_at: int) -> None:
        """Write `ring` if the stored ring is still `previous_version` (0: no ring item yet)."""
        condition: Item = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous_version == 0
            else {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": N(previous_version)},
            }
        )
        try:
            self.client.put_item(TableName=self.table_name, Item=ring.to_item(updated_at), **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ItemMissing() from None

    def delete_tenant(self, tenant_id: str, usernames: list[str], client_ids: list[str]) -> None:
        """Erase a tenant's mapping, then its logins, machine clients and their attempt counters."""
        keys = [tenant_pk(tenant_id)]
        keys += [key for name in usernames for key in (user_pk(name), attempts_pk(name))]
        keys += [key for cid in client_ids for key in (client_pk(cid), attempts_pk(client_subject(cid)))]
        for key in keys:
            self.client.delete_item(TableName=self.table_name, Key={"pk": S(key)})

    # --- listings (never read a password hash, a secret digest or an API key) ------------------

    def _scan(self, prefix: str, attributes: tuple[str, ...]) -> Iterator[Item]:
        names = {f"#a{i}": name for i, name in enumerate(("pk", *attributes))}
        request: Item = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(pk, :prefix)",
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":prefix": S(prefix)},
        }
        while True:
            page = self.client.scan(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def tenants(self) -> list[Tenant]:
        attributes = (
            "tenant_id",
            "status",
            "model_key",
            "model_sha256",
            "n_features",
            "max_batch",
            "classes_json",
            "sklearn_version",
            "tokens_not_before",
            "model_format",
            "usage_tier",
            "updated_at",
            "capture",
            "history_days",
        )
        return [Tenant.from_item(item) for item in self._scan(TENANT_PREFIX, attributes)]

    def users(self) -> list[User]:
        attributes = ("username", "tenant_id", "status", "roles", "created_at")
        return [User.from_item(item) for item in self._scan(USER_PREFIX, attributes)]

    def clients(self) -> list[Client]:
        attributes = ("client_id", "tenant_id", "status", "created_at", "roles")
        return [Client.from_item(item) for item in self._scan(CLIENT_PREFIX, attributes)]

    # --- one tenant's users and clients, through `TENANT_INDEX` (the tenant-admin API) ----------

    def _of_tenant(self, tenant_id: str, prefix: str) -> Iterator[Item]:
        request: Item = {
            "TableName": self.table_name,
            "IndexName": TENANT_INDEX,
            "KeyConditionExpression": "tenant_id = :tenant AND begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":tenant": S(tenant_id), ":prefix": S(prefix)},
        }
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def users_of(self, tenant_id: str) -> list[User]:
        """The tenant's users (no password hash: the index does not hold them), by username."""
        return [User.from_item(item) for item in self._of_tenant(tenant_id, USER_PREFIX)]

    def clients_of(self, tenant_id: str) -> list[Client]:
        """The tenant's machine clients (no secret digest), by client id."""
        return [Client.from_item(item) for item in self._of_tenant(tenant_id, CLIENT_PREFIX)]


# --- the registration record beside each model version (S3, written by inferctl) ----------------


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """`models/<tenant>/<sha256>.json`: what a model version was registered as (`list-versions`,
    `rollback`). The probe compared the served model with the original: `probe_disagreements`
    of `probe_rows` rows from `probe_source` ("sample" or "generated")."""

    sha256: str
    model_format: str
    source_format: str
    n_features: int
    classes: tuple[Any, ...]
    sklearn_version: str
    has_probabilities: bool
    registered_at: int
    probe_rows: int = 0
    probe_disagreements: int = 0
    probe_source: str = ""
    task: str = CLASSIFICATION
    feature_names: tuple[str, ...] | None = None
    accepts_missing: bool = False
    # Published with --allow-interface-change: its interface differed from the one then served.
    interface_changed: bool = False
    # The registration time in nanoseconds since the epoch: orders two versions registered within
    # one second (`rollback` picks the one before the current). 0 in records written before it.
    registered_at_ns: int = 0

    def describe_probe(self) -> str:
        agree = self.probe_rows - self.probe_disagreements
        return f"{agree}/{self.probe_rows} {self.probe_source} rows agree"

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "format": self.model_format,
            "source_format": self.source_format,
            "n_features": self.n_features,
            "classes": list(self.classes),
            "sklearn_version": self.sklearn_version,
            "has_probabilities": self.has_probabilities,
            "task": self.task,
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "accepts_missing": self.accepts_missing,
            "interface_changed": self.interface_changed,
            "registered_at": self.registered_at,
            "registered_at_ns": self.registered_at_ns,
            "probe": {
                "rows": self.probe_rows,
                "disagreements": self.probe_disagreements,
                "source": self.probe_source,
            },
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> ModelRecord:
        probe = record.get("probe", {})
        names = record.get("feature_names")
        return cls(
            sha256=str(record["sha256"]),
            model_format=str(record["format"]),
            source_format=str(record.get("source_format", "")),
            n_features=int(record["n_features"]),
            classes=tuple(record["classes"]),
            sklearn_version=str(record.get("sklearn_version", "")),
            has_probabilities=bool(record.get("has_probabilities", False)),
            registered_at=int(record.get("registered_at", 0)),
            probe_rows=int(probe.get("rows", 0)),
            probe_disagreements=int(probe.get("disagreements", 0)),
            probe_source=str(probe.get("source", "")),
            task=str(record.get("task", CLASSIFICATION)),
            feature_names=None if names is None else tuple(str(n) for n in names),
            accepts_missing=bool(record.get("accepts_missing", False)),
            interface_changed=bool(record.get("interface_changed", False)),
            registered_at_ns=int(record.get("registered_at_ns", 0)),
        )


# --- the activity table: inference history (docs/history.md) ------------------------------------
#
# ActivityTable (template.yaml) has a sort key: pk `history#<tenant_id>#<sub>`, sk
# `<recorded_at>#<request_id>`, recorded_at being ISO 8601 UTC with milliseconds (fixed width, so
# the sort key orders by time). Subjects never hold '#' (usernames and client ids do not allow
# it), so the subject is whatever follows the last '#'; the tenant is also kept as `tenant_id`,
# because a tenant id may hold '#' and a key prefix alone would match tenant `a#b` for tenant `a`.

HISTORY_PREFIX: Final = "history#"
USER_CLIENT: Final = "user"
MACHINE_CLIENT: Final = "machine"


def history_pk(tenant_id: str, subject: str) -> str:
    return f"{HISTORY_PREFIX}{tenant_id}#{subject}"


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One served prediction. `capture_json` holds `{"request": ..., "response": ...}` for a tenant
    that captures; a capture too large for an item is in S3 instead (`capture_parts` objects)."""

    tenant_id: str
    subject: str
    request_id: str
    recorded_at: str
    client_kind: str
    model_version: str
    rows: int
    latency_ms: float
    probabilities: bool
    expires_at: int
    capture_json: str = ""
    capture_parts: int = 0
    capture_bytes: int = 0

    @property
    def sort_key(self) -> str:
        return f"{self.recorded_at}#{self.request_id}"

    def to_item(self) -> Item:
        item: Item = {
            "pk": S(history_pk(self.tenant_id, self.subject)),
            "sk": S(self.sort_key),
            "tenant_id": S(self.tenant_id),
            "sub": S(self.subject),
            "request_id": S(self.request_id),
            "recorded_at": S(self.recorded_at),
            "client_kind": S(self.client_kind),
            "model_version": S(self.model_version),
            "rows": N(self.rows),
            "latency_ms": {"N": repr(self.latency_ms)},
            "probabilities": {"BOOL": self.probabilities},
            "expires_at": N(self.expires_at),
        }
        if self.capture_json:
            item["capture_json"] = S(self.capture_json)
        if self.capture_parts:
            item["capture_parts"] = N(self.capture_parts)
            item["capture_bytes"] = N(self.capture_bytes)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> HistoryRecord:
        return cls(
            tenant_id=_s(item, "tenant_id"),
            subject=_s(item, "sub"),
            request_id=_s(item, "request_id"),
            recorded_at=_s(item, "recorded_at"),
            client_kind=_s(item, "client_kind"),
            model_version=_s(item, "model_version"),
            rows=_n(item, "rows"),
            latency_ms=float(item["latency_ms"]["N"]) if "latency_ms" in item else 0.0,
            probabilities=_b(item, "probabilities"),
            expires_at=_n(item, "expires_at"),
            capture_json=_s(item, "capture_json"),
            capture_parts=_n(item, "capture_parts"),
            capture_bytes=_n(item, "capture_bytes"),
        )


class HistoryStore:
    """Reads and writes of history items, on the activity table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def put_new(self, record: HistoryRecord) -> bool:
        """Write `record` unless its key exists (a redelivered log line); True if it was new."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=record.to_item(),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def page(
        self, tenant_id: str, subject: str, limit: int, after: str | None = None
    ) -> tuple[list[HistoryRecord], str | None]:
        """Up to `limit` of one caller's records, newest first, after sort key `after`; and the
        sort key to continue from (None: no more)."""
        request: Item = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": S(history_pk(tenant_id, subject))},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {"pk": S(history_pk(tenant_id, subject)), "sk": S(after)}
        response = self.client.query(**request)
        records = [HistoryRecord.from_item(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return records, _s(last, "sk") if last else None

    def find(self, tenant_id: str, subject: str, request_id: str) -> HistoryRecord | None:
        """The caller's record of `request_id`, or None (read through the caller's own items only)."""
        request: Item = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "request_id = :id",
            "ExpressionAttributeValues": {
                ":pk": S(history_pk(tenant_id, subject)),
                ":id": S(request_id),
            },
            "ScanIndexForward": False,
        }
        while True:
            response = self.client.query(**request)
            if response.get("Items"):
                return HistoryRecord.from_item(response["Items"][0])
            if "LastEvaluatedKey" not in response:
                return None
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _items(self, tenant_id: str, subject: str | None) -> Iterator[Item]:
        """Every history item of a tenant (or of one of its callers), for the operator."""
        values: Item = {":t": S(tenant_id)}
        if subject is not None:
            request: Item = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk",
                "FilterExpression": "tenant_id = :t",
                "ExpressionAttributeValues": {**values, ":pk": S(history_pk(tenant_id, subject))},
                "ScanIndexForward": False,
            }
            call = self.client.query
        else:
            request = {
                "TableName": self.table_name,
                "FilterExpression": "begins_with(pk, :prefix) AND tenant_id = :t",
                "ExpressionAttributeValues": {**values, ":prefix": S(history_pk(tenant_id, ""))},
            }
            call = self.client.scan  # type: ignore[assignment]
        while True:
            response = call(**request)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def records(self, tenant_id: str, subject: str | None = None) -> list[HistoryRecord]:
        found = [HistoryRecord.from_item(item) for item in self._items(tenant_id, subject)]
        return sorted(found, key=lambda record: record.sort_key, reverse=True)

    def delete(self, tenant_id: str, subject: str | None = None) -> list[HistoryRecord]:
        """Erase a tenant's (or one caller's) records; returns what was erased."""
        erased = self.records(tenant_id, subject)
        for record in erased:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": S(history_pk(record.tenant_id, record.subject)), "sk": S(record.sort_key)},
            )
        return erased


# --- the ActivityTable's audit trail (rules: `model_runtime.audit`) ---------------------------------

AUDIT_PREFIX: Final = "audit#"


def audit_pk(tenant_id: str) -> str:
    return f"{AUDIT_PREFIX}{tenant_id}"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action: `actor` (a token's subject, or the operator's AWS principal) did `action`
    to `acted_on` (a username, client id, version, or ""), `via` "api" or "cli", from `origin`
    (the caller's IP address, or "inferctl"), with `result` ("ok" or the refusal's code)."""

    tenant_id: str
    sort_key: str  # `<ISO 8601 UTC time, ms>Z#<16 hex>`: newest last, two in one ms kept apart
    actor: str
    via: str
    origin: str
    action: str
    acted_on: str
    result: str

    @property
    def time(self) -> str:
        return self.sort_key.partition("#")[0]

    def to_item(self, expires_at: int) -> Item:
        return {
            "pk": S(audit_pk(self.tenant_id)),
            "sk": S(self.sort_key),
            "actor": S(self.actor),
            "via": S(self.via),
            "origin": S(self.origin),
            "action": S(self.action),
            "acted_on": S(self.acted_on),
            "result": S(self.result),
            "expires_at": N(expires_at),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AuditEntry:
        return cls(
            tenant_id=_s(item, "pk").removeprefix(AUDIT_PREFIX),
            sort_key=_s(item, "sk"),
            actor=_s(item, "actor"),
            via=_s(item, "via"),
            origin=_s(item, "origin"),
            action=_s(item, "action"),
            acted_on=_s(item, "acted_on"),
            result=_s(item, "result"),
        )

    def to_json(self, *, for_tenant: bool = False) -> dict[str, str]:
        """What `inferctl audit --json` prints; `for_tenant`: what a tenant admin reads (GET
        /api/v1/admin/audit), where an operator's AWS principal (account id, IAM names) reads as
        "operator": the platform's identities are not the tenant's business."""
        operator = for_tenant and self.via == "cli"
        return {
            "id": self.sort_key,
            "time": self.time,
            "actor": "operator" if operator else self.actor,
            "via": self.via,
            "source": self.origin,
            "action": self.action,
            "target": self.acted_on,
            "outcome": self.result,
        }


class ActivityLog:
    """Appends and reads audit entries in the ActivityTable, through one DynamoDB client."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def append(self, entry: AuditEntry, expires_at: int) -> None:
        """A new item, never an overwrite: a retried write of the same entry is refused."""
        self.client.put_item(
            TableName=self.table_name,
            Item=entry.to_item(expires_at),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def newest(
        self, tenant_id: str, limit: int, after: str | None = None
    ) -> tuple[list[AuditEntry], str | None]:
        """`tenant_id`'s entries, newest first, at most `limit`, older than sort key `after`; and the
        sort key to pass as `after` for the next page (None: no more). The partition is always
        `tenant_id`'s, whatever `after` holds."""
        request: Item = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": S(audit_pk(tenant_id))},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after:
            request["ExclusiveStartKey"] = {"pk": S(audit_pk(tenant_id)), "sk": S(after)}
        page = self.client.query(**request)
        last = page.get("LastEvaluatedKey")
        entries = [AuditEntry.from_item(item) for item in page.get("Items", [])]
        return entries, (_s(last, "sk") if last else None)


# --- a tenant admin's model upload (functions/admin, functions/register) -------------------------
#
# InferenceTable item `upload#<tenant_id>#<upload_id>`: upload_tenant, status (`pending`: the form
# was handed out; `checking`: the registering function claimed the uploaded object; `registered`
# with model_version_sha256; `refused` with refusal_reason), upload_format, requested_by, created_at,
# updated_at, interface_change_allowed, expires_at (the TTL: a month after it was asked for). The
# tenant is part of the key: a lookup with another tenant's id finds nothing. Not `tenant_id`:
# the by-tenant index lists accounts, and an upload is none.

UPLOAD_PREFIX: Final = "upload#"
PENDING: Final = "pending"
CHECKING: Final = "checking"
REGISTERED: Final = "registered"
REFUSED: Final = "refused"


def upload_pk(tenant_id: str, upload_id: str) -> str:
    return f"{UPLOAD_PREFIX}{tenant_id}#{upload_id}"


@dataclass(frozen=True, slots=True)
class Upload:
    tenant_id: str
    upload_id: str
    status: str
    model_format: str
    requested_by: str
    created_at: int
    updated_at: int
    allow_interface_change: bool = False
    sha256: str = ""
    reason: str = ""

    def to_item(self, expires_at: int) -> Item:
        return {
            "pk": S(upload_pk(self.tenant_id, self.upload_id)),
            "upload_tenant": S(self.tenant_id),
            "status": S(self.status),
            "upload_format": S(self.model_format),
            "requested_by": S(self.requested_by),
            "created_at": N(self.created_at),
            "updated_at": N(self.updated_at),
            "interface_change_allowed": {"BOOL": self.allow_interface_change},
            "model_version_sha256": S(self.sha256),
            "refusal_reason": S(self.reason),
            "expires_at": N(expires_at),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Upload:
        return cls(
            tenant_id=_s(item, "upload_tenant"),
            upload_id=_s(item, "pk").rsplit("#", 1)[-1],
            status=_s(item, "status"),
            model_format=_s(item, "upload_format"),
            requested_by=_s(item, "requested_by"),
            created_at=_n(item, "created_at"),
            updated_at=_n(item, "updated_at"),
            allow_interface_change=_b(item, "interface_change_allowed"),
            sha256=_s(item, "model_version_sha256"),
            reason=_s(item, "refusal_reason"),
        )


class Uploads:
    """The upload items of the InferenceTable: created pending, claimed once, finished once."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def put_new(self, upload: Upload, expires_at: int) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item=upload.to_item(expires_at),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get(self, tenant_id: str, upload_id: str) -> Upload | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": S(upload_pk(tenant_id, upload_id))}, ConsistentRead=True
        ).get("Item")
        return None if item is None else Upload.from_item(item)

    def claim(self, tenant_id: str, upload_id: str, now: int) -> bool:
        """`pending` -> `checking`; False when there is no such upload of `tenant_id`, or it is
        not pending (a replayed form's second object, an upload already finished)."""
        return self._move(tenant_id, upload_id, PENDING, {"status": S(CHECKING), "updated_at": N(now)})

    def finish(self, tenant_id: str, upload_id: str, *, sha256: str, reason: str, now: int) -> bool:
        """`checking` -> `registered` (with the version's digest) or `refused` (with a reason)."""
        fields = {
            "status": S(REGISTERED if sha256 else REFUSED),
            "model_version_sha256": S(sha256),
            "refusal_reason": S(reason),
            "updated_at": N(now),
        }
        return self._move(tenant_id, upload_id, CHECKING, fields)

    def _move(self, tenant_id: str, upload_id: str, before: str, fields: Item) -> bool:
        """Set `fields` if the upload exists, is `tenant_id`'s and its status is `before`."""
        names = {f"#f{i}": name for i, name in enumerate(fields)} | {"#s": "status", "#t": "upload_tenant"}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        values |= {":before": S(before), ":tenant": S(tenant_id)}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": S(upload_pk(tenant_id, upload_id))},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ConditionExpression="attribute_exists(pk) AND #s = :before AND #t = :tenant",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
