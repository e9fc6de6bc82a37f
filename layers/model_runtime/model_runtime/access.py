"""The access rules on top of the table: which tenant a token reaches, and when a login is locked.

Storage is `model_runtime.table`; this module decides. Both take the container's `Runtime`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_runtime.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from model_runtime.runtime import Runtime
    from model_runtime.table import Tenant
    from model_runtime.tokens import Claims


def resolve_tenant(runtime: Runtime, claims: Claims) -> Tenant:
    """The caller's tenant, chosen by the verified token alone.

    No mapping, or a disabled one, is a 403 with the same body either way. A token issued before
    the tenant's `tokens_not_before`, or before its subject's entry in `subjects_not_before`, has
    been revoked: 401, like any other bad token.
    """
    tenant = runtime.tenants.get(claims.tenant_id)
    if tenant is None or not tenant.active:
        raise Forbidden()
    if claims.issued_at < tenant.tokens_valid_from(claims.subject):
        raise Unauthorized()
    return tenant


def reserve_login_attempt(runtime: Runtime, subject: str, now: int) -> int:
    """Count one attempt for `subject` *before* its secret is checked; 0 when it may go ahead.

    Otherwise the seconds until it may try again. The count and the check are one conditional
    write, so however many requests race, at most `lockout_threshold` secrets are evaluated per
    cool-down: a check-then-count would let every racing request through. Each counted attempt
    keeps the counter for the cool-down (the window slides); a success deletes it
    (`Table.clear_attempts`), so only failures remain counted.
    """
    settings, table = runtime.settings, runtime.table
    expires_at = now + settings.lockout_seconds
    for _ in range(3):  # a reset by a racing request can void both conditions once; then retry
        if table.count_attempt(subject, now, expires_at, settings.lockout_threshold):
            return 0
        if table.restart_attempts(subject, now, expires_at):
            return 0
        attempts = table.get_attempts(subject)
        if attempts is not None and attempts.failures >= settings.lockout_threshold:
            return max(1, attempts.expires_at - now)
    return settings.lockout_seconds
