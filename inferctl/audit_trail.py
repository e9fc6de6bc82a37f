"""The operator's admin actions in each tenant's audit trail (`model_runtime.audit`), and reading it.

Every command that changes a tenant, its users, clients or models is recorded in that tenant's
trail, as the tenant-admin API's actions are: the operator's AWS principal (STS
GetCallerIdentity: who ran it, not which laptop), `via` "cli", the action, its target and its
outcome. Never an argument's secret: the password (stdin or a prompt) and the model file are
not fields of an entry. The trail is the stack's ActivityTable (its output `ActivityTableName`,
or `ACTIVITY_TABLE_NAME`); without one the command still runs and says it was not recorded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import cache
from typing import Final, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from model_runtime import audit
from model_runtime.runtime import Runtime
from model_runtime.table import AuditEntry

from inferctl.onboarding import OnboardingError

# command -> the action it is recorded as (the API's names where the API does the same)
AUDITED_COMMANDS: Final = {
    "create-tenant": "tenant.create",
    "publish-model": "model.publish",
    "rollback": "model.activate",
    "create-user": "user.create",
    "disable-user": "user.disable",
    "enable-user": "user.enable",
    "set-roles": "user.set-roles",
    "disable-tenant": "tenant.disable",
    "enable-tenant": "tenant.enable",
    "set-run-budget": "tenant.set-run-budget",
    "revoke-tokens": "tenant.revoke-tokens",
    "set-tier": "tenant.set-tier",
    "create-client": "client.create",
    "revoke-client": "client.revoke",
    "set-capture": "tenant.set-capture",
    "purge-history": "history.purge",
    "delete-tenant": "tenant.delete",
}
SOURCE: Final = "inferctl"


def _tenant_of(runtime: Runtime, args: argparse.Namespace) -> str:
    """The tenant a command acted on: named, or the one its user or client belongs to."""
    named = getattr(args, "tenant_id", None) or getattr(args, "tenant", None)
    if named:
        return str(named)
    if getattr(args, "username", None):
        user = runtime.table.get_user(args.username)
        return user.tenant_id if user else ""
    if getattr(args, "client_id", None):
        client = runtime.table.get_client(args.client_id)
        return client.tenant_id if client else ""
    return ""


@cache
def _operator(runtime: Runtime) -> str:
    try:
        return str(runtime.client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError):
        return "unknown operator"


def audited(
    command: str, run: Callable[[], None], runtime: Runtime, args: argparse.Namespace, stderr: TextIO
) -> None:
    """Run `run` (the command) and record it in its tenant's trail, whatever the outcome."""
    action = AUDITED_COMMANDS.get(command)
    if action is None:
        run()
        return
    outcome = audit.FAILED
    try:
        run()
        outcome = audit.OK
    except OnboardingError:
        outcome = audit.INVALID
        raise
    finally:
        try:
            _record(runtime, args, action, outcome, stderr)
        except (BotoCoreError, ClientError) as error:
            # The command's own outcome stands (it is done, or it failed for its own reason): the
            # operator is told the trail missed it, in one line, and can record it by hand.
            code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
            print(
                f"warning: {action} was not recorded in the audit trail ({code or type(error).__name__})",
                file=stderr,
            )


def _record(runtime: Runtime, args: argparse.Namespace, action: str, outcome: str, stderr: TextIO) -> None:
    if not runtime.settings.activity_table_name:
        print(
            "note: not recorded in the audit trail: pass --stack NAME (output ActivityTableName) "
            "or set ACTIVITY_TABLE_NAME",
            file=stderr,
        )
        return
    tenant_id = _tenant_of(runtime, args)
    if not tenant_id:
        return  # no such tenant, user or client: nothing of any tenant's changed
    target = getattr(args, "username", None) or getattr(args, "client_id", None) or ""
    audit.record(
        runtime.activity,
        tenant_id,
        actor=_operator(runtime),
        via=audit.CLI,
        source=SOURCE,
        action=action,
        target=str(target),
        outcome=outcome,
    )


def entries(runtime: Runtime, tenant_id: str, limit: int) -> list[AuditEntry]:
    """The newest `limit` entries of `tenant_id`'s trail, newest first, across pages."""
    if not runtime.settings.activity_table_name:
        raise OnboardingError(
            "no audit trail: pass --stack NAME (output ActivityTableName) or set ACTIVITY_TABLE_NAME"
        )
    found: list[AuditEntry] = []
    cursor: str | None = None
    while len(found) < limit:
        page, cursor = audit.page(
            runtime.activity, tenant_id, min(audit.MAX_PAGE, limit - len(found)), cursor
        )
        found += page
        if cursor is None:
            break
    return found
