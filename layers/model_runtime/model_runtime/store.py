"""The DynamoDB item design: one table, partition key `pk` (string), no sort key.

- `user#<username>`: a login. tenant_id, password_hash, roles (list), status, created_at.
- `tenant#<tenant_id>`: a tenant's mapping. model_key, model_sha256, model_format, n_features,
  max_batch, classes_json, sklearn_version, status, tokens_not_before, updated_at.
- `attempts#<username>`: a failed-login counter. failures, expires_at (the table's TTL attribute).
- `keyring`: the signing keys. active_key_id, verify_key_ids (list).

`status` is `active` or `disabled`. `classes_json` keeps the model's labels with their JSON types
(ints stay ints, strings stay strings). `tokens_not_before` is an epoch second: tokens issued
earlier are refused, which revokes every token of a tenant at once. Attempt counters exist for any
username tried, known or not, so lockout behaves the same for both.

Reads that sit on the request path are cached per container for `MAPPING_TTL_SECONDS`, so an
operator's change (disable, new model version, key rotation) takes effect within that time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_runtime import aws
from model_runtime.errors import Forbidden, Unauthorized
from model_runtime.settings import get_settings

if TYPE_CHECKING:
    from model_runtime.tokens import Claims

ACTIVE = "active"
DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class User:
    username: str
    tenant_id: str
    password_hash: str
    roles: tuple[str, ...]
    status: str

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


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
    # How the pinned bytes are served: "onnx" or "skops". Mappings written before formats
    # existed have none and pinned a pickle: they read as "pickle", which is never served.
    model_format: str = "pickle"

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def model_version(self) -> str:
        """The short digest clients see: identifies the model without revealing where it lives."""
        return self.model_sha256[:12]


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The operator's KMS signing keys: `active` signs, every key in `verify` still verifies."""

    active_key_id: str
    verify_key_ids: tuple[str, ...]


def user_pk(username: str) -> str:
    return f"user#{username}"


def tenant_pk(tenant_id: str) -> str:
    return f"tenant#{tenant_id}"


def attempts_pk(username: str) -> str:
    return f"attempts#{username}"


KEYRING_PK = "keyring"


def _s(item: Mapping[str, Any], name: str, default: str = "") -> str:
    value = item.get(name)
    return str(value["S"]) if value else default


def _n(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value else default


def _strings(item: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name)
    return tuple(v["S"] for v in value["L"]) if value else ()


def _get(pk: str, *, consistent: bool = False) -> dict[str, Any] | None:
    response = aws.dynamodb().get_item(
        TableName=get_settings().table_name, Key={"pk": {"S": pk}}, ConsistentRead=consistent
    )
    return response.get("Item")


def get_user(username: str) -> User | None:
    item = _get(user_pk(username))
    if item is None:
        return None
    return User(
        username=username,
        tenant_id=_s(item, "tenant_id"),
        password_hash=_s(item, "password_hash"),
        roles=_strings(item, "roles"),
        status=_s(item, "status", DISABLED),
    )


def get_tenant(tenant_id: str) -> Tenant | None:
    item = _get(tenant_pk(tenant_id))
    if item is None:
        return None
    return Tenant(
        tenant_id=tenant_id,
        model_key=_s(item, "model_key"),
        model_sha256=_s(item, "model_sha256"),
        n_features=_n(item, "n_features"),
        max_batch=_n(item, "max_batch"),
        classes=tuple(json.loads(_s(item, "classes_json", "[]"))),
        sklearn_version=_s(item, "sklearn_version"),
        status=_s(item, "status", DISABLED),
        tokens_not_before=_n(item, "tokens_not_before"),
        model_format=_s(item, "model_format", "pickle"),
    )


def get_keyring() -> KeyRing:
    """The key ring item, or the template's single key until an operator first rotates."""
    item = _get(KEYRING_PK)
    if item is None:
        key_id = get_settings().signing_key_id
        return KeyRing(active_key_id=key_id, verify_key_ids=(key_id,))
    return KeyRing(
        active_key_id=_s(item, "active_key_id"),
        verify_key_ids=_strings(item, "verify_key_ids"),
    )


# --- failed-login counters -------------------------------------------------------------------


def lockout_remaining(username: str, now: int) -> int:
    """Seconds until `username` may try again; 0 when it is not locked out."""
    item = _get(attempts_pk(username), consistent=True)
    if item is None:
        return 0
    expires_at = _n(item, "expires_at")
    if _n(item, "failures") >= get_settings().lockout_threshold and expires_at > now:
        return expires_at - now
    return 0


def record_login_failure(username: str, now: int) -> None:
    """Count one failure. The window slides: each failure keeps the counter for the cool-down."""
    settings = get_settings()
    key = {"pk": {"S": attempts_pk(username)}}
    expires_at = {"N": str(now + settings.lockout_seconds)}
    client = aws.dynamodb()
    try:
        client.update_item(
            TableName=settings.table_name,
            Key=key,
            UpdateExpression="ADD failures :one SET expires_at = :exp",
            # DynamoDB's TTL deletes lazily: an expired counter must restart, not grow.
            ConditionExpression="attribute_not_exists(pk) OR expires_at > :now",
            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": expires_at, ":now": {"N": str(now)}},
        )
    except client.exceptions.ConditionalCheckFailedException:
        client.put_item(
            TableName=settings.table_name,
            Item={**key, "failures": {"N": "1"}, "expires_at": expires_at},
        )


def clear_login_failures(username: str) -> None:
    aws.dynamodb().delete_item(TableName=get_settings().table_name, Key={"pk": {"S": attempts_pk(username)}})


# --- per-container caches --------------------------------------------------------------------


class TtlCache[T]:
    """A small read-through cache whose entries live `ttl()` seconds. Negative results are cached
    too, so an unknown tenant cannot make every request reach DynamoDB."""

    def __init__(self, load: Callable[[str], T], ttl: Callable[[], int], max_entries: int = 4096):
        self._load = load
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, T]] = {}

    def get(self, key: str) -> T:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = self._load(key)
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (now + self._ttl(), value)
        return value

    def clear(self) -> None:
        self._entries.clear()


def _mapping_ttl() -> int:
    return get_settings().mapping_ttl_seconds


tenants: TtlCache[Tenant | None] = TtlCache(get_tenant, _mapping_ttl)
keyrings: TtlCache[KeyRing] = TtlCache(lambda _: get_keyring(), _mapping_ttl, max_entries=1)


def resolve_tenant(claims: Claims) -> Tenant:
    """The caller's tenant, chosen by the verified token alone.

    No mapping, or a disabled one, is a 403 with the same body either way. A token issued before
    the tenant's `tokens_not_before` has been revoked: 401, like any other bad token.
    """
    tenant = tenants.get(claims.tenant_id)
    if tenant is None or not tenant.active:
        raise Forbidden()
    if claims.issued_at < tenant.tokens_not_before:
        raise Unauthorized()
    return tenant
