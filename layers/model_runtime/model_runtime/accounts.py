"""A tenant's accounts: users and machine clients, created, listed, disabled, revoked, given roles.

One implementation for both doors: the operator's CLI (`inferctl`, across tenants: `tenant_id`
None where the account names its tenant) and a tenant's own admins (functions/admin: always the
caller's verified tenant, passed as `tenant_id`, and every write conditional on the account being
that tenant's, so another tenant's user or client is exactly as unknown as a missing one).

Rules that hold through either door:
- A user's password is hashed here (argon2id) and never kept or returned; a client's secret is
  returned once, and only its SHA-256 is stored (`model_runtime.oauth`).
- Disabling a user, revoking a client, or taking a role away also revokes the tokens the subject
  holds (a cut-off in the tenant's mapping, `revoke_subject`): a demoted admin's token stops
  working within the mapping TTL instead of carrying `admin` until it expires.
- A tenant keeps at least one active admin once it has one: the last one can be neither
  disabled nor demoted (`LastAdmin`). The write is one transaction with a check that another
  admin still is one, so two admins demoting each other at the same instant cannot both pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_runtime.credentials import valid_username
from model_runtime.oauth import (
    CLIENT_ID_PREFIX,
    client_secret_digest,
    new_client_id,
    new_client_secret,
    valid_client_id,
)
from model_runtime.passwords import MAX_PASSWORD_CHARS, hash_password
from model_runtime.roles import ADMIN, USER, UnknownRole, requested_roles, stored_roles
from model_runtime.table import ACTIVE, DISABLED, AdminGone, Client, ItemExists, ItemMissing, User

if TYPE_CHECKING:
    from model_runtime.runtime import Runtime

MIN_PASSWORD_CHARS = 8
# A subject's cut-off matters only while a token issued before it can still be alive: at most the
# longest lifetime the template allows (TokenTtlSeconds' MaxValue, 3600 s) plus leeway. Older
# entries are dropped on the next write, so the map stays as small as the recent disables.
SUBJECT_CUTOFF_KEPT_SECONDS = 2 * 3600


class AccountError(Exception):
    """A refused account operation. The message is one line for the operator or the tenant admin;
    it names only what the caller itself sent (a username, a client id, a tenant id)."""


class InvalidAccount(AccountError):
    """The request is malformed (a bad username, password or role)."""


class UnknownAccount(AccountError):
    """No such user, client or tenant, or not the caller's tenant's: the same answer."""


class AccountExists(AccountError):
    """The username is taken (by any tenant: usernames are global, they log in without a tenant)."""


class LastAdmin(AccountError):
    """The change would leave the tenant without an active admin."""


@dataclass(frozen=True, slots=True)
class NewClient:
    client_id: str
    client_secret: str
    roles: tuple[str, ...]

    def __repr__(self) -> str:  # keep the secret out of any log line or traceback
        return f"NewClient(client_id={self.client_id!r}, client_secret=***, roles={self.roles!r})"


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def _roles(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    try:
        return requested_roles(roles)
    except UnknownRole as error:
        raise InvalidAccount(f"unknown role(s) {error}: roles are {USER} and {ADMIN}") from None


def _tenant_must_exist(runtime: Runtime, tenant_id: str) -> None:
    if runtime.table.get_tenant(tenant_id, consistent=True) is None:
        raise UnknownAccount(f"unknown tenant {tenant_id!r}")


# --- users -------------------------------------------------------------------------------------


def create_user(
    runtime: Runtime,
    username: str,
    password: str,
    tenant_id: str,
    roles: tuple[str, ...] | list[str] = (USER,),
    *,
    now: int | None = None,
) -> User:
    """A new active user of `tenant_id` with `roles`; the returned `User` has no password hash."""
    if not valid_username(username):
        raise InvalidAccount(
            "usernames are 1-64 letters, digits or . _ @ + - (starting with a letter or digit)"
        )
    # A user's and a machine client's ids are both token subjects, and cut-offs are per subject
    # and tenant: a user named like a client would be revoked with it, and it with them.
    if username.casefold().startswith(CLIENT_ID_PREFIX):
        raise InvalidAccount(f"usernames starting with {CLIENT_ID_PREFIX!r} are reserved for machine clients")
    if not isinstance(password, str) or not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidAccount(f"passwords are {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidAccount("passwords must be valid Unicode text") from None
    chosen = _roles(roles)
    _tenant_must_exist(runtime, tenant_id)
    user = User(username, tenant_id, hash_password(password), chosen, ACTIVE, _now(now))
    try:
        runtime.table.create_user(user)
    except ItemExists:
        raise AccountExists(f"user {username!r} already exists") from None
    return User(username, tenant_id, "", chosen, ACTIVE, user.created_at)


def _user(runtime: Runtime, username: str, tenant_id: str | None) -> User:
    user = runtime.table.get_user(username) if valid_username(username) else None
    if user is None or (tenant_id is not None and user.tenant_id != tenant_id):
        raise UnknownAccount(f"unknown user {username!r}")
    return user


def _is_admin(user: User) -> bool:
    return user.active and ADMIN in stored_roles(user.roles)


def _other_admins(runtime: Runtime, user: User) -> list[str]:
    """The tenant's other active admins, as the index says (it may lag: the write's transaction
    checks the one it relies on, on its item)."""
    return [
        other.username
        for other in runtime.table.users_of(user.tenant_id)
        if other.username != user.username and _is_admin(other)
    ]


def _change_user(
    runtime: Runtime, user: User, *, status: str | None = None, roles: tuple[str, ...] | None = None
) -> None:
    """Write `status` or `roles` on a user of its own tenant. When the change leaves the user no
    active admin, it is written only together with a check that another admin still is one
    (`Table.set_user_*` with `other_admin`); with none left, `LastAdmin`."""
    stays_admin = (status or user.status) == ACTIVE and ADMIN in stored_roles(
        roles if roles is not None else user.roles
    )
    candidates: list[str | None] = (
        [None] if stays_admin or not _is_admin(user) else [*_other_admins(runtime, user)]
    )
    for other_admin in candidates:
        try:
            if status is not None:
                runtime.table.set_user_status(
                    user.username, status, tenant_id=user.tenant_id, other_admin=other_admin
                )
            else:
                runtime.table.set_user_roles(
                    user.username, roles or (), tenant_id=user.tenant_id, other_admin=other_admin
                )
        except ItemMissing:
            raise UnknownAccount(f"unknown user {user.username!r}") from None
        except AdminGone:
            continue  # that one was demoted or disabled meanwhile: rely on another
        return
    raise LastAdmin(
        f"{user.username!r} is tenant {user.tenant_id!r}'s last active admin: make another user admin first"
    )


def set_user_status(
    runtime: Runtime, username: str, *, active: bool, tenant_id: str | None = None, now: int | None = None
) -> User:
    """Enable or disable a login (of `tenant_id` only, when given).

    Disabling also revokes the user's tokens issued so far, in the tenant's mapping, so predict
    refuses them within the mapping TTL. Enabling leaves that cut-off in place: the user logs in
    again and only new tokens work.
    """
    user = _user(runtime, username, tenant_id)
    _change_user(runtime, user, status=ACTIVE if active else DISABLED)
    if not active:
        revoke_subject(runtime, user.tenant_id, username, _now(now) + 1)
    return User(username, user.tenant_id, "", user.roles, ACTIVE if active else DISABLED, user.created_at)


def set_user_roles(
    runtime: Runtime,
    username: str,
    roles: tuple[str, ...] | list[str],
    *,
    tenant_id: str | None = None,
    now: int | None = None,
) -> User:
    """Give a user exactly `roles`. Taking a role away revokes the user's tokens (they carry it)."""
    chosen = _roles(roles)
    user = _user(runtime, username, tenant_id)
    before = stored_roles(user.roles)
    _change_user(runtime, user, roles=chosen)
    if set(before) - set(chosen):
        revoke_subject(runtime, user.tenant_id, username, _now(now) + 1)
    return User(username, user.tenant_id, "", chosen, user.status, user.created_at)


def users_of(runtime: Runtime, tenant_id: str) -> list[User]:
    """The tenant's users, by username (never a password hash)."""
    return sorted(runtime.table.users_of(tenant_id), key=lambda user: user.username)


# --- machine clients ---------------------------------------------------------------------------


def create_client(
    runtime: Runtime, tenant_id: str, roles: tuple[str, ...] | list[str] = (USER,), now: int | None = None
) -> NewClient:
    """A new machine client of `tenant_id`: its secret is in the answer and nowhere else."""
    chosen = _roles(roles)
    _tenant_must_exist(runtime, tenant_id)
    new = NewClient(new_client_id(), new_client_secret(), chosen)
    runtime.table.create_client(
        Client(new.client_id, tenant_id, client_secret_digest(new.client_secret), ACTIVE, _now(now), chosen)
    )
    return new


def revoke_client(
    runtime: Runtime, client_id: str, *, tenant_id: str | None = None, now: int | None = None
) -> Client:
    """The client can no longer get tokens, and the tokens it holds are refused within the mapping
    TTL (its cut-off rides in the tenant's mapping, like a disabled user's)."""
    client = runtime.table.get_client(client_id) if valid_client_id(client_id) else None
    if client is None or (tenant_id is not None and client.tenant_id != tenant_id):
        raise UnknownAccount(f"unknown client {client_id!r}")
    try:
        runtime.table.revoke_client(client_id, _now(now), tenant_id=client.tenant_id)
    except ItemMissing:
        raise UnknownAccount(f"unknown client {client_id!r}") from None
    revoke_subject(runtime, client.tenant_id, client_id, _now(now) + 1)
    return client


def clients_of(runtime: Runtime, tenant_id: str) -> list[Client]:
    """The tenant's machine clients, by client id (never a secret digest)."""
    return sorted(runtime.table.clients_of(tenant_id), key=lambda client: client.client_id)


# --- revocation --------------------------------------------------------------------------------


def revoke_subject(runtime: Runtime, tenant_id: str, subject: str, not_before: int) -> None:
    """Refuse `subject`'s (a user's or a machine client's) tokens issued before `not_before`
    (tokens carry whole seconds: the caller passes the next second), within the mapping TTL.

    The cut-off is set first, in a write of its own; stale cut-offs are removed after it, in
    chunks (`Table.drop_subject_cutoffs`), so however many there are, the revocation holds.
    """
    tenant = runtime.table.get_tenant(tenant_id)
    if tenant is None:
        return  # no mapping: predict already refuses every token of this tenant
    try:
        runtime.table.set_subject_not_before(tenant_id, subject, not_before)
    except ItemMissing:
        return  # deleted meanwhile: predict refuses every token of this tenant
    older_than = not_before - SUBJECT_CUTOFF_KEPT_SECONDS
    stale = tuple(
        name for name, cutoff in tenant.subjects_not_before.items() if cutoff < older_than and name != subject
    )
    runtime.table.drop_subject_cutoffs(tenant_id, stale, older_than)
