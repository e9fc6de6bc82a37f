"""The audit trail of admin actions: who did what, when, from where, and how it ended.

Every admin action, through the tenant-admin API (functions/admin) or the operator's CLI
(`inferctl`), is one `AuditEntry` (its item design is `model_runtime.table`) in the tenant's own
item collection of the ActivityTable (template.yaml): pk `audit#<tenant_id>`, newest last.

What goes in is a fixed set of fields, each chosen by this code or an identifier the service
already validated (a username, a client id, a version digest): never a request body, a
password, a client secret, a token or model bytes (tests/handler/test_tenant_admin.py greps
every item and log line for the secrets its tests used).

Append-only: each write is a conditional put of a new item, and the admin function's role may
only PutItem and Query items whose key starts `audit#` (template.yaml): no UpdateItem, no
DeleteItem, so a compromised admin function cannot rewrite what happened.

Kept `RETENTION_DAYS` (400): a year of audits plus a month's slack for the yearly review that
looks back over a whole year; DynamoDB's TTL then deletes them, at no write cost.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Final

from model_runtime.table import ActivityLog, AuditEntry

RETENTION_DAYS: Final = 400
MAX_PAGE: Final = 100

# Outcomes: the action was done, or why not.
OK: Final = "ok"
DENIED: Final = "denied"  # the caller is not the tenant's admin
INVALID: Final = "invalid"
NOT_FOUND: Final = "not-found"
CONFLICT: Final = "conflict"
LAST_ADMIN: Final = "last-admin"
FAILED: Final = "failed"  # a dependency or a bug: the action may not have been done

API: Final = "api"
CLI: Final = "cli"

# A cursor is the sort key of the last entry of a page: time, '#', 16 hex digits.
_SORT_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#[0-9a-f]{16}")


def valid_cursor(cursor: str) -> bool:
    return _SORT_KEY.fullmatch(cursor) is not None


def sort_key(now_ms: int) -> str:
    moment = datetime.fromtimestamp(now_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{now_ms % 1000:03d}Z#{secrets.token_hex(8)}"


def record(
    log: ActivityLog,
    tenant_id: str,
    *,
    actor: str,
    via: str,
    source: str,
    action: str,
    target: str,
    outcome: str,
    now_ms: int | None = None,
) -> AuditEntry:
    """Append one entry to `tenant_id`'s audit trail; it expires after `RETENTION_DAYS`."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    entry = AuditEntry(tenant_id, sort_key(now_ms), actor, via, source, action, target, outcome)
    log.append(entry, now_ms // 1000 + RETENTION_DAYS * 86400)
    return entry


def page(
    log: ActivityLog, tenant_id: str, limit: int = 50, cursor: str | None = None
) -> tuple[list[AuditEntry], str | None]:
    """A page of `tenant_id`'s trail, newest first; `cursor` (from the previous page) continues it."""
    return log.newest(tenant_id, max(1, min(limit, MAX_PAGE)), cursor)
