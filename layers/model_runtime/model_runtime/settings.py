"""Runtime settings, read from the environment once per container.

Every value comes from `template.yaml` (`Globals` and per-function `Environment`); the defaults
here are the template's defaults, so a handler imported in a test behaves like the deployed one.
Each function checks the settings it needs when it is imported, which is Lambda's init phase: a
missing or malformed one fails the cold start with a log line naming the variable, instead of a
function that starts and answers 503 to every request. `read_settings` reads the environment
each time it is called: a container reads it once, when it builds its state
(`model_runtime.runtime.Runtime`), and a test that changes the environment builds a new one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

PER_TENANT = "per-tenant"
SHARED = "shared"
AUTHORIZER = "authorizer"
FUNCTION = "function"


class SettingsError(Exception):
    """A setting is missing or malformed. Names the variable; never repeats its value."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    model_bucket: str
    signing_key_id: str
    token_issuer: str
    token_audience: str
    token_ttl_seconds: int
    token_leeway_seconds: int
    lockout_threshold: int
    lockout_seconds: int
    mapping_ttl_seconds: int
    stale_grace_seconds: int
    max_body_bytes: int
    model_cache_bytes: int
    # ActivityTable (template.yaml): the tenant-admin audit trail (model_runtime/audit.py).
    activity_table_name: str = ""
    # Tenant isolation (docs/decisions/0017-tenant-isolation.md). The template sets all four; unset,
    # predict runs as in a test or `sam local`: shared environments, its own credentials.
    tenant_isolation: str = SHARED  # PER_TENANT: an invocation must name the token's tenant
    tenant_data_credentials: str = FUNCTION  # AUTHORIZER: tenant data only with vended credentials
    tenant_data_role_arn: str = ""  # the authorizer assumes it for the caller's tenant
    predict_timeout_seconds: int = 10  # vended credentials outlive the cached answer plus this


def _int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, "must be a whole number") from None
    if value < minimum:
        raise SettingsError(name, f"must be at least {minimum}")
    return value


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip() or default
    if value not in allowed:
        raise SettingsError(name, f"must be one of {', '.join(allowed)}")
    return value


def read_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "").strip(),
        model_bucket=os.environ.get("MODEL_BUCKET", "").strip(),
        signing_key_id=os.environ.get("SIGNING_KEY_ID", "").strip(),
        token_issuer=os.environ.get("TOKEN_ISSUER", "").strip() or "urn:inference:login",
        token_audience=os.environ.get("TOKEN_AUDIENCE", "").strip() or "urn:inference:api",
        token_ttl_seconds=_int("TOKEN_TTL_SECONDS", 900, minimum=1),
        token_leeway_seconds=_int("TOKEN_LEEWAY_SECONDS", 30, minimum=0),
        lockout_threshold=_int("LOCKOUT_THRESHOLD", 5, minimum=1),
        lockout_seconds=_int("LOCKOUT_SECONDS", 900, minimum=1),
        mapping_ttl_seconds=_int("MAPPING_TTL_SECONDS", 60, minimum=0),
        # Last known good past the TTL while AWS fails (model_runtime/ttl_cache.py); 0: fail closed.
        stale_grace_seconds=_int("STALE_GRACE_SECONDS", 300, minimum=0),
        max_body_bytes=_int("MAX_BODY_BYTES", 1024 * 1024, minimum=1),
        model_cache_bytes=_int("MODEL_CACHE_BYTES", 256 * 1024 * 1024, minimum=0),
        activity_table_name=os.environ.get("ACTIVITY_TABLE_NAME", "").strip(),
        tenant_isolation=_choice("TENANT_ISOLATION", SHARED, (PER_TENANT, SHARED)),
        tenant_data_credentials=_choice("TENANT_DATA_CREDENTIALS", FUNCTION, (AUTHORIZER, FUNCTION)),
        tenant_data_role_arn=os.environ.get("TENANT_DATA_ROLE_ARN", "").strip(),
        predict_timeout_seconds=_int("PREDICT_TIMEOUT_SECONDS", 10, minimum=1),
    )


class _Logger(Protocol):
    def critical(self, msg: str, *, extra: dict[str, str]) -> None: ...


def require_settings(logger: _Logger, *required: str) -> Settings:
    """The settings, checked at cold start: every variable in `required` set, every number valid.

    On a fault, one critical log line names the variable and the problem (never the value), and
    `SettingsError` fails the function's init.
    """
    try:
        for name in required:
            if not os.environ.get(name, "").strip():
                raise SettingsError(name, "is required")
        return read_settings()
    except SettingsError as error:
        logger.critical("invalid configuration", extra={"variable": error.variable, "problem": error.problem})
        raise
