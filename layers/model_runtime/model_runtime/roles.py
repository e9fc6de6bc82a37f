"""Roles: what a token's subject may do within its tenant (docs/decisions/0014-roles-claim.md).

Two roles, tenant-scoped: `user` (predict and the model card) and `admin` (the tenant-admin API,
functions/admin). Predict and the model card accept any role of the tenant, so they check
nothing here; every admin route requires `admin`. A machine client's "scope" is the same thing:
`predict` when created is the role `user`, `admin` only when asked for.

Tokens carry them in the `roles` claim (RFC 9068 2.2.3.1): a JSON array of these names, checked
strictly when a token is verified (`model_runtime.tokens`): an unknown name, a string instead of
an array, an empty or repeated one is a forged or broken token, refused with a 401.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

USER: Final = "user"
ADMIN: Final = "admin"
ROLES: Final = (USER, ADMIN)

# Users created before roles meant anything were stored with the role "predict" (the CLI's old
# default), or none: both keep working as `user`, never as anything more.
_STORED_ALIASES: Final = {"predict": USER}


class UnknownRole(ValueError):
    """A role name outside `ROLES`."""


def stored_roles(stored: Iterable[str]) -> tuple[str, ...]:
    """The roles a token gets for what an item stores: known names in `ROLES` order, legacy names
    as their role, unknown names dropped; nothing at all is `user`."""
    names = {_STORED_ALIASES.get(name, name) for name in stored}
    return tuple(role for role in ROLES if role in names) or (USER,)


def requested_roles(requested: Iterable[str]) -> tuple[str, ...]:
    """Roles an operator or a tenant admin asks for, in `ROLES` order; `UnknownRole` otherwise.
    None asked for is `user`."""
    names = set(requested)
    unknown = names - set(ROLES)
    if unknown:
        raise UnknownRole(", ".join(sorted(unknown)))
    return tuple(role for role in ROLES if role in names) or (USER,)


# Every well-formed `roles` claim, as JSON decodes it (a list of distinct known names, any order),
# and what it grants: one dict lookup per verified token (0.2 us, against 2 us for checking name by
# name; either only on a verification cache miss, beside an RSA verify of ~100 us).
_CLAIMS: Final = {
    (USER,): (USER,),
    (ADMIN,): (ADMIN,),
    (USER, ADMIN): (USER, ADMIN),
    (ADMIN, USER): (USER, ADMIN),
}


def claim_roles(claim: object) -> tuple[str, ...] | None:
    """The roles of a verified token's `roles` claim, or None when the claim is malformed: not a
    list, empty, with a repeat or a name outside `ROLES`."""
    if type(claim) is not list:
        return None
    try:
        return _CLAIMS.get(tuple(claim))
    except TypeError:  # an unhashable element (a list, an object): not a role name
        return None
