"""The DynamoDB item design: one table, partition key `pk` (string), no sort key.

- `user#<username>`: a login. tenant_id, password_hash, roles (list), status, created_at.
- `tenant#<tenant_id>`: a tenant's mapping. model_key, model_sha256, model_format, n_features,
  max_batch, classes_json, sklearn_version, status, tokens_not_before, subjects_not_before,
  updated_at; api_key_id, api_key and usage_tier once the tenant has an API Gateway API key
  (inferctl).
- `attempts#<username>`: a failed-login counter. failures, expires_at (the table's TTL attribute).
- `keyring`: the signing keys. active_key_id, verify_key_ids (list).
- `client#<client_id>`: a machine client (OAuth2 client credentials). tenant_id, secret_sha256,
  status, created_at. Its attempt counter is `attempts#client:<client_id>`.

`status` is `active` or `disabled`. `classes_json` keeps the model's labels with their JSON types
(ints stay ints, strings stay strings). `tokens_not_before` is an epoch second: tokens issued
earlier are refused, which revokes every token of a tenant at once. `subjects_not_before` (a map,
subject -> epoch second) does the same for one user's tokens: disabling a user writes it here, in
the item predict already reads and caches, so cutting a user off costs the warm path nothing.
Attempt counters exist for any username tried, known or not, so lockout behaves the same for both.

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
    subjects_not_before: Mapping[str, int]
    # The API Gateway API key that meters the tenant on its tier's usage plan (the authorizer
    # returns it as usageIdentifierKey); empty for a tenant onboarded without one.
    api_key: str = ""
    usage_tier: str = ""
    # How the pinned bytes are served: "onnx" or "skops". Mappings written before formats
    # existed have none and pinned a pickle: they read as "pickle", which is never served.
    model_format: str = "pickle"

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


def _numbers_by_name(item: Mapping[str, Any], name: str) -> dict[str, int]:
    value = item.get(name)
    return {key: int(number["N"]) for key, number in value["M"].items()} if value else {}


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
        subjects_not_before=_numbers_by_name(item, "subjects_not_before"),
        api_key=_s(item, "api_key"),
        usage_tier=_s(item, "usage_tier"),
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


def reserve_login_attempt(username: str, now: int) -> int:
    """Count one attempt for `username` *before* its password is checked; 0 when it may go ahead.

    Otherwise the seconds until it may try again. The count and the check are one conditional
    write, so however many requests race, at most `lockout_threshold` passwords are evaluated per
    cool-down: a check-then-count would let every racing request through. Each counted attempt
    keeps the counter for the cool-down (the window slides); a success deletes it
    (`clear_login_failures`), so only failures remain counted.
    """
    settings = get_settings()
    client = aws.dynamodb()
    key = {"pk": {"S": attempts_pk(username)}}
    values = {
        ":one": {"N": "1"},
        ":exp": {"N": str(now + settings.lockout_seconds)},
        ":now": {"N": str(now)},
    }
    for _ in range(3):  # a reset by a racing request can void both conditions once; then retry
        try:
            client.update_item(
                TableName=settings.table_name,
                Key=key,
                UpdateExpression="ADD failures :one SET expires_at = :exp",
                ConditionExpression="attribute_not_exists(pk) OR (failures < :limit AND expires_at > :now)",
                ExpressionAttributeValues={**values, ":limit": {"N": str(settings.lockout_threshold)}},
            )
            return 0
        except client.exceptions.ConditionalCheckFailedException:
            pass
        try:
            # DynamoDB's TTL deletes lazily: an expired counter restarts at one, atomically.
            client.update_item(
                TableName=settings.table_name,
                Key=key,
                UpdateExpression="SET failures = :one, expires_at = :exp",
                ConditionExpression="expires_at <= :now",
                ExpressionAttributeValues=values,
            )
            return 0
        except client.exceptions.ConditionalCheckFailedException:
            pass
        item = _get(attempts_pk(username), consistent=True)
        if item is not None and _n(item, "failures") >= settings.lockout_threshold:
            return max(1, _n(item, "expires_at") - now)
    return settings.lockout_seconds


def clear_login_failures(username: str) -> None:
    aws.dynamodb().delete_item(TableName=get_settings().table_name, Key={"pk": {"S": attempts_pk(username)}})


# --- machine clients (OAuth2 client credentials) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Client:
    """A machine client: authenticates with a secret of which only the SHA-256 is stored."""

    client_id: str
    tenant_id: str
    secret_sha256: str
    status: str

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


def client_pk(client_id: str) -> str:
    return f"client#{client_id}"


def client_subject(client_id: str) -> str:
    """The lockout subject of a client. Usernames cannot contain ':', so the two never collide."""
    return f"client:{client_id}"


def get_client(client_id: str) -> Client | None:
    item = _get(client_pk(client_id))
    if item is None:
        return None
    return Client(
        client_id=client_id,
        tenant_id=_s(item, "tenant_id"),
        secret_sha256=_s(item, "secret_sha256"),
        status=_s(item, "status", DISABLED),
    )


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
    the tenant's `tokens_not_before`, or before its subject's entry in `subjects_not_before`, has
    been revoked: 401, like any other bad token.
    """
    tenant = tenants.get(claims.tenant_id)
    if tenant is None or not tenant.active:
        raise Forbidden()
    if claims.issued_at < tenant.tokens_valid_from(claims.subject):
        raise Unauthorized()
    return tenant
