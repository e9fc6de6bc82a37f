"""Writes the machine client items (`model_runtime.table.Client`) login reads: machine clients
that trade their id and secret for a token (OAuth2 client credentials, RFC 6749 4.4).

The secret is generated here, shown to the operator once, and stored only as its SHA-256
(`model_runtime.oauth` says why a fast digest is enough for 256 random bits).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from model_runtime.oauth import client_secret_digest, new_client_id, new_client_secret, valid_client_id
from model_runtime.runtime import Runtime
from model_runtime.table import ACTIVE, Client, ItemMissing

from inferctl.onboarding import OnboardingError, existing_tenant, revoke_subject


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


def create_client(runtime: Runtime, tenant_id: str, now: int | None = None) -> NewClient:
    existing_tenant(runtime, tenant_id)
    new = NewClient(new_client_id(), new_client_secret())
    created_at = int(time.time()) if now is None else now
    runtime.table.create_client(
        Client(new.client_id, tenant_id, client_secret_digest(new.client_secret), ACTIVE, created_at)
    )
    return new


def revoke_client(runtime: Runtime, client_id: str, now: int | None = None) -> None:
    """The client can no longer get tokens, and the tokens it holds are refused within the mapping
    TTL (its cut-off rides in the tenant's mapping, like a disabled user's)."""
    if not valid_client_id(client_id):
        raise OnboardingError(f"unknown client {client_id!r}")
    try:
        runtime.table.revoke_client(client_id, int(time.time()))
    except ItemMissing:
        raise OnboardingError(f"unknown client {client_id!r}") from None
    revoked = runtime.table.get_client(client_id)
    if revoked is not None:
        revoke_subject(runtime, revoked.tenant_id, client_id, (int(time.time()) if now is None else now) + 1)


def list_clients(runtime: Runtime, tenant_id: str | None = None) -> list[ClientRow]:
    # The listing never reads secret_sha256 (`Table.clients`).
    rows = [
        ClientRow(client.client_id, client.tenant_id, client.status, client.created_at)
        for client in runtime.table.clients()
    ]
    return sorted(
        (row for row in rows if tenant_id is None or row.tenant_id == tenant_id),
        key=lambda row: (row.tenant_id, row.client_id),
    )
