"""Writes the `client#<client_id>` items `model_runtime.store.get_client` reads: machine clients
that trade their id and secret for a token (OAuth2 client credentials, RFC 6749 4.4).

The secret is generated here, shown to the operator once, and stored only as its SHA-256
(`model_runtime.oauth` says why a fast digest is enough for 256 random bits).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from model_runtime import aws
from model_runtime.oauth import client_secret_digest, new_client_id, new_client_secret, valid_client_id
from model_runtime.settings import get_settings
from model_runtime.store import ACTIVE, client_pk, get_client

from inferctl.onboarding import OnboardingError, _scan, _tenant_item, revoke_subject, validate_tenant_id

REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class NewClient:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"NewClient(client_id={self.client_id!r}, client_secret=***)"


@dataclass(frozen=True, slots=True)
class ClientRow:
    client_id: str
    tenant_id: str
    status: str
    created_at: int


def create_client(tenant_id: str, now: int | None = None) -> NewClient:
    validate_tenant_id(tenant_id)
    if _tenant_item(tenant_id) is None:
        raise OnboardingError(f"unknown tenant {tenant_id!r}")
    new = NewClient(new_client_id(), new_client_secret())
    aws.dynamodb().put_item(
        TableName=get_settings().table_name,
        Item={
            "pk": {"S": client_pk(new.client_id)},
            "client_id": {"S": new.client_id},
            "tenant_id": {"S": tenant_id},
            "secret_sha256": {"S": client_secret_digest(new.client_secret)},
            "status": {"S": ACTIVE},
            "created_at": {"N": str(int(time.time()) if now is None else now)},
        },
        ConditionExpression="attribute_not_exists(pk)",  # 96 random bits: a clash is a bug
    )
    return new


def revoke_client(client_id: str, now: int | None = None) -> None:
    """The client can no longer get tokens, and the tokens it holds are refused within the mapping
    TTL (its cut-off rides in the tenant's mapping, like a disabled user's)."""
    client = aws.dynamodb()
    if not valid_client_id(client_id):
        raise OnboardingError(f"unknown client {client_id!r}")
    try:
        client.update_item(
            TableName=get_settings().table_name,
            Key={"pk": {"S": client_pk(client_id)}},
            UpdateExpression="SET #s = :revoked, revoked_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":revoked": {"S": REVOKED}, ":now": {"N": str(int(time.time()))}},
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise OnboardingError(f"unknown client {client_id!r}") from None
    revoked = get_client(client_id)
    if revoked is not None:
        revoke_subject(revoked.tenant_id, client_id, (int(time.time()) if now is None else now) + 1)


def list_clients(tenant_id: str | None = None) -> list[ClientRow]:
    # The projection never names secret_sha256: the digests are not even read.
    items = _scan("client#", ("client_id", "tenant_id", "status", "created_at"))
    rows = [
        ClientRow(
            client_id=item["client_id"]["S"],
            tenant_id=item["tenant_id"]["S"],
            status=item["status"]["S"],
            created_at=int(item["created_at"]["N"]),
        )
        for item in items
    ]
    return sorted(
        (row for row in rows if tenant_id is None or row.tenant_id == tenant_id),
        key=lambda row: (row.tenant_id, row.client_id),
    )
