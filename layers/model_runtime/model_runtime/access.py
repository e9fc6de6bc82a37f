"""The access rules on top of the table: who calls, which tenant a token reaches, and when a login
is locked.

Storage is `model_runtime.table`; this module decides. Both take the container's `Runtime`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from model_runtime.deadlines import DEPENDENCY_ERRORS, DeadlineExceeded, describe_failure
from model_runtime.errors import Forbidden, Unauthorized
from model_runtime.http import header
from model_runtime.tokens import bearer_token

if TYPE_CHECKING:
    from model_runtime.runtime import Runtime
    from model_runtime.table import Tenant
    from model_runtime.tokens import Claims

logger = Logger(child=True)


def verified_caller(runtime: Runtime, event: Mapping[str, Any]) -> Claims:
    """The bearer token's verified claims: the first check of every tenant route.

    Behind the API's REQUEST authorizer (functions/authorizer) the gateway metered the request as
    the tenant the authorizer named; a token of another tenant is refused (401) with a security
    log line. Without an authorizer (a direct invoke, `sam local`) there is no context to compare.
    """
    claims = runtime.tokens.verify(bearer_token(header(event, "Authorization")))
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    if "tenant_id" in authorizer and authorizer["tenant_id"] != claims.tenant_id:
        logger.warning("authorizer tenant is not the token's", extra={"security_event": "tenant_mismatch"})
        raise Unauthorized()
    return claims


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


def new_attempt_id() -> str:
    """One login attempt's id in its subject's counter (`Table.count_attempt`)."""
    return secrets.token_hex(8)


def reserve_login_attempt(runtime: Runtime, subject: str, now: int, attempt_id: str = "") -> int:
    """Count one attempt for `subject` *before* its secret is checked; 0 when it may go ahead.

    Otherwise the seconds until it may try again. The count and the check are one conditional
    write, so however many requests race, at most `lockout_threshold` secrets are evaluated per
    cool-down: a check-then-count would let every racing request through. Each counted attempt
    keeps the counter for the cool-down (the window slides); a success deletes it
    (`Table.clear_attempts`), so only failures remain counted, and an attempt that ended in a
    dependency failure is taken back (`released_on_dependency_failure`).
    """
    settings, table = runtime.settings, runtime.table
    attempt_id = attempt_id or new_attempt_id()
    expires_at = now + settings.lockout_seconds
    for _ in range(3):  # a reset by a racing request can void both conditions once; then retry
        if table.count_attempt(subject, attempt_id, now, expires_at, settings.lockout_threshold):
            return 0
        if table.restart_attempts(subject, attempt_id, now, expires_at):
            return 0
        attempts = table.get_attempts(subject)
        if attempts is not None and attempts.failures >= settings.lockout_threshold:
            return max(1, attempts.expires_at - now)
    return settings.lockout_seconds


@contextmanager
def released_on_dependency_failure(
    runtime: Runtime, subject: str, attempt_id: str, now: int
) -> Iterator[None]:
    """An attempt that ends in a dependency failure (a 503) is taken back: the caller learnt
    nothing about its secret, whether or not it was checked, so it is no failed guess.

    Without this, a stall locks users out: DynamoDB (or moto, resumed) applies the counting
    writes the functions had given up on, and nothing takes them back (docs/fault-drill.md
    measured 36 of 38 right passwords refused with 429 after a 25 s stall). The release is one
    attempt, best effort: if it fails too, the attempt stays counted (fail closed), and either
    order in which DynamoDB applies the two writes ends with the attempt not counted.
    """
    try:
        yield
    except DEPENDENCY_ERRORS:
        try:
            if runtime.deadline.remaining() < runtime.deadline.attempt_seconds:
                raise DeadlineExceeded() from None  # checked here too: no send is even prepared
            with runtime.deadline.single_attempt():
                runtime.table.release_attempt(subject, attempt_id, now + runtime.settings.lockout_seconds)
        except DEPENDENCY_ERRORS as error:
            logger.warning("login attempt not released", extra=describe_failure(error))
        raise
