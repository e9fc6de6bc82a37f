"""Runtime settings, read from the environment once per container.

Every value comes from `template.yaml` (`Globals` and per-function `Environment`); the defaults
here are the template's defaults, so a handler imported in a test behaves like the deployed one.
Tests change the environment and call `get_settings.cache_clear()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


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
    max_body_bytes: int
    model_cache_bytes: int


def _int(name: str, default: int) -> int:
    value = int(os.environ.get(name, default))
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", ""),
        model_bucket=os.environ.get("MODEL_BUCKET", ""),
        signing_key_id=os.environ.get("SIGNING_KEY_ID", ""),
        token_issuer=os.environ.get("TOKEN_ISSUER", "urn:inference:login"),
        token_audience=os.environ.get("TOKEN_AUDIENCE", "urn:inference:api"),
        token_ttl_seconds=_int("TOKEN_TTL_SECONDS", 900),
        token_leeway_seconds=_int("TOKEN_LEEWAY_SECONDS", 30),
        lockout_threshold=_int("LOCKOUT_THRESHOLD", 5),
        lockout_seconds=_int("LOCKOUT_SECONDS", 900),
        mapping_ttl_seconds=_int("MAPPING_TTL_SECONDS", 60),
        max_body_bytes=_int("MAX_BODY_BYTES", 1024 * 1024),
        model_cache_bytes=_int("MODEL_CACHE_BYTES", 256 * 1024 * 1024),
    )
