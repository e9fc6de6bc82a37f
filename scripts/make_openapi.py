"""Writes openapi.json: the API's OpenAPI 3.1 description, generated from the code.

Routes and methods come from the two handlers' routers (`model_runtime.http.Router.routes`),
limits from the settings and validation modules, the security headers from
`model_runtime.http.SECURITY_HEADERS` (with the extra headers each error class sends), and the
error shape from `model_runtime.http.problem`.
Only the bodies' schemas are written here. `tests/unit/test_openapi.py` fails when the committed file
differs from a fresh generation, so the document cannot drift from the code.

Run: `python scripts/make_openapi.py` (or `--check` to compare without writing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT = REPO_ROOT / "openapi.json"

# Powertools reads these when the handler modules create their Logger/Metrics/Tracer at import.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "openapi")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "InferenceApi")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# The handlers check their required settings when imported; nothing here talks to AWS.
os.environ.setdefault("TABLE_NAME", "openapi-generation")
os.environ.setdefault("MODEL_BUCKET", "openapi-generation")
os.environ.setdefault("SIGNING_KEY_ID", "openapi-generation")
os.environ.setdefault("ACTIVITY_TABLE_NAME", "openapi-generation")
os.environ.setdefault("CURSOR_KEY_ID", "openapi-generation")

# After the environment above (E402): the modules the document is generated from, importable
# because `make venv` installs the project.
from model_runtime import errors, uploads  # noqa: E402

OAUTH_ERROR_CODES = frozenset(
    {"invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type"}
)  # RFC 6749 5.2, as model_runtime.oauth assigns them
from model_runtime.credentials import USERNAME_PATTERN  # noqa: E402
from model_runtime.http import SECURITY_HEADERS, Router, problem  # noqa: E402
from model_runtime.passwords import MAX_PASSWORD_CHARS  # noqa: E402
from model_runtime.roles import ROLES  # noqa: E402
from model_runtime.settings import Settings, read_settings  # noqa: E402
from model_runtime.table import AuditEntry  # noqa: E402
from model_runtime.tokens import ALGORITHM  # noqa: E402

from functions.admin import app as admin  # noqa: E402
from functions.history import app as history  # noqa: E402
from functions.login import app as login  # noqa: E402
from functions.predict import app as predict  # noqa: E402
from inferctl.onboarding import DEFAULT_MAX_BATCH  # noqa: E402

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BEARER = "bearerAuth"


def code_defaults() -> Settings:
    """The settings as the code defaults them (the template's defaults), whatever this shell has set."""
    saved = dict(os.environ)
    try:
        for name in ("MAX_BODY_BYTES", "TOKEN_TTL_SECONDS", "LOCKOUT_THRESHOLD", "LOCKOUT_SECONDS"):
            os.environ.pop(name, None)
        return read_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- errors: status, title and extra headers from the domain exceptions ----------------------


ErrorClass = type[errors.ProblemError]


def _error_classes(base: ErrorClass = errors.ProblemError) -> Iterator[ErrorClass]:
    yield base
    for sub in base.__subclasses__():
        yield from _error_classes(sub)


def _instance(cls: ErrorClass) -> errors.ProblemError:
    """An instance, to read the headers it sends; constructors differ in their arguments."""
    make: Callable[..., errors.ProblemError] = cls
    for args in ((), ("detail",), (1,)):
        try:
            instance = make(*args)
        except TypeError:
            continue
        return instance
    raise TypeError(f"cannot build {cls.__name__}")


def sends_retry_after(status: int) -> bool:
    """Whether some error of `status` tells the client when to retry (lockout, 503)."""
    return any("Retry-After" in _instance(cls).headers for cls in _error_classes() if cls.status == status)


def error_title(status: int) -> str:
    titles = {cls.title for cls in _error_classes() if cls.status == status}
    assert len(titles) == 1, f"status {status} has titles {titles}"
    return titles.pop()


def problem_shape() -> tuple[str, list[str]]:
    """The media type and field names `model_runtime.http.problem` writes."""
    response = problem(errors.BadRequest("x"))
    return response.headers["Content-Type"], list(json.loads(response.body))


# --- the routes the resolvers serve, and what we say about each ------------------------------


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    description: str
    ok: str  # schema name of the 200 body
    errors: tuple[int, ...]  # statuses the function answers with problem+json
    authenticated: bool = False
    request: dict[str, str] = field(default_factory=dict)  # media type -> schema name
    max_body_bytes: int = 0  # the function's cap on the request body, when it has a body
    notes: dict[int, str] = field(default_factory=dict)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    ok_status: int = 200
    path_parameters: tuple[str, ...] = ()
    query: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> schema


def operations(settings: Settings) -> dict[tuple[str, str], Operation]:
    max_body = settings.max_body_bytes
    return {
        ("post", "/api/v1/auth/token"): Operation(
            "issueToken",
            "Trade a username and password for an access token",
            "JSON or an OAuth2 password-grant form. Unknown user, wrong password and disabled "
            "accounts get one identical 401. After "
            f"{settings.lockout_threshold} failures a username (known or not) is locked for "
            f"{settings.lockout_seconds} s: 429 with Retry-After. Machine clients send "
            "`grant_type=client_credentials` with HTTP Basic client authentication (RFC 6749 4.4, "
            "2.3.1); a refused client is a 401 `invalid_client` with `WWW-Authenticate: Basic`. "
            "Every error of this endpoint carries RFC 6749 5.2's `error` member.",
            "TokenResponse",
            (400, 401, 413, 415, 429, 500, 503),
            request={JSON: "TokenRequest", FORM: "TokenRequestForm"},
            max_body_bytes=login.MAX_LOGIN_BODY_BYTES,
            notes={
                401: "Unknown user, wrong password, or disabled user or tenant.",
                415: "The Content-Type names a charset other than UTF-8.",
                429: "Too many failed logins on this username: locked for the cool-down (Retry-After).",
            },
        ),
        ("get", "/.well-known/jwks.json"): Operation(
            "getJwks",
            "The public keys that verify access tokens (RFC 7517)",
            "Select a key by the token header's `kid`. Keys are the operator's own; tokens are "
            f"{ALGORITHM} only.",
            "JwkSet",
            (500, 503),
        ),
        ("post", "/api/v1/predict"): Operation(
            "predict",
            "Predict with the caller's own model",
            "The model is chosen by the verified token alone. Steps, in order: body size cap "
            f"({max_body} bytes), bearer token, tenant mapping, payload against the tenant's model "
            "card, model, prediction.",
            "PredictResponse",
            (400, 401, 403, 413, 415, 422, 500, 502, 503),
            authenticated=True,
            request={JSON: "PredictRequest"},
            max_body_bytes=max_body,
            notes={
                400: "The body is not the tenant's shape (see GET /api/v1/model); nothing was run.",
                403: "The token's tenant has no active model.",
                502: "The tenant's model failed inside ONNX Runtime on these rows (docs/hostile-models.md).",
                503: "The model is unavailable, or took longer than the tenant's run budget allows.",
                413: f"The body exceeds {max_body} bytes.",
                415: "The body is not application/json in UTF-8, or is content-coded (gzip): never inflated.",
                422: "The model gave NaN or an infinity for these rows: no answer (never invalid JSON).",
            },
        ),
        ("get", "/api/v1/model"): Operation(
            "getModelCard",
            "The caller's model card",
            "What the caller's rows must look like; never where the model is stored.",
            "ModelCard",
            (401, 403, 500, 503),
            authenticated=True,
        ),
        ("get", "/api/v1/history"): Operation(
            "listHistory",
            "The caller's own served predictions, newest first",
            "Records of the calling user or machine client only (tenant and caller from the verified "
            "token). With data capture on for the tenant, records also hold the rows and the answers. "
            "Records are kept the tenant's history_days (default 30) (docs/history.md).",
            "HistoryPage",
            (400, 401, 403, 500, 503),
            authenticated=True,
            notes={400: "limit is not 1 to 100, or the cursor was not given to this caller by this API."},
            parameters=[
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "next_cursor of the previous page, as given (opaque, signed).",
                    "schema": {"type": "string"},
                },
            ],
        ),
        ("get", "/api/v1/history/{request_id}"): Operation(
            "getHistoryRecord",
            "One of the caller's own records, by the X-Request-Id predict answered with",
            "Another caller's request and a request that never was get the same 404.",
            "HistoryRecord",
            (401, 403, 404, 500, 503),
            authenticated=True,
            notes={404: "No such request in the caller's own history."},
            parameters=[{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        ),
        **admin_operations(),
    }


# The tenant-admin API (functions/admin): every route needs the `admin` role of the caller's tenant.
ADMIN_ERRORS = (400, 401, 403, 404, 409, 413, 415, 500, 503)
ADMIN_NOTES = {
    403: "The token lacks the tenant's `admin` role (one fixed body on every admin route), or "
    "the token's tenant has no active model.",
    404: "No such user or client in the caller's tenant (another tenant's is the same 404).",
    409: "The username is taken, or the change would leave the tenant without an active admin.",
}


def _admin(operation_id: str, summary: str, description: str, ok: str, **extra: Any) -> Operation:
    extra.setdefault("notes", ADMIN_NOTES)
    return Operation(
        operation_id,
        summary,
        description + " Acts on the verified token's tenant only; audited (GET /api/v1/admin/audit).",
        ok,
        ADMIN_ERRORS,
        authenticated=True,
        **extra,
    )


def admin_operations() -> dict[tuple[str, str], Operation]:
    body = {"request": {JSON: ""}, "max_body_bytes": admin.MAX_ADMIN_BODY_BYTES}
    user, client = ("username",), ("client_id",)
    return {
        ("get", "/api/v1/admin/users"): _admin(
            "listUsers", "The tenant's users", "Never a password hash.", "UserList"
        ),
        ("post", "/api/v1/admin/users"): _admin(
            "createUser",
            "Create a user of the tenant",
            "The password is given once, hashed (argon2id), never logged, audited or returned.",
            "User",
            ok_status=201,
            **body | {"request": {JSON: "NewUser"}},
        ),
        ("post", "/api/v1/admin/users/{username}/disable"): _admin(
            "disableUser",
            "Disable a user",
            "No new logins, and its tokens are refused within the mapping TTL. The tenant's last "
            "active admin cannot be disabled (409).",
            "User",
            path_parameters=user,
        ),
        ("post", "/api/v1/admin/users/{username}/enable"): _admin(
            "enableUser",
            "Enable a user",
            "Tokens from before the disable stay revoked.",
            "User",
            path_parameters=user,
        ),
        ("put", "/api/v1/admin/users/{username}/roles"): _admin(
            "setUserRoles",
            "Give a user exactly these roles",
            "Taking a role away revokes the user's tokens. The last active admin keeps `admin` (409).",
            "User",
            path_parameters=user,
            **body | {"request": {JSON: "Roles"}},
        ),
        ("get", "/api/v1/admin/clients"): _admin(
            "listClients", "The tenant's machine clients", "Never a secret.", "ClientList"
        ),
        ("post", "/api/v1/admin/clients"): _admin(
            "createClient",
            "Create a machine client",
            "The secret is in this answer only (256 bits; only its SHA-256 is kept). Roles are its "
            "scopes: `user` (predict) by default, `admin` only when asked for.",
            "NewClient",
            ok_status=201,
            **body | {"request": {JSON: "Roles"}},
        ),
        ("post", "/api/v1/admin/clients/{client_id}/revoke"): _admin(
            "revokeClient",
            "Revoke a machine client",
            "No new tokens, and its tokens are refused within the mapping TTL.",
            "RevokedClient",
            path_parameters=client,
        ),
        ("get", "/api/v1/admin/audit"): _admin(
            "readAudit",
            "The tenant's audit trail, newest first",
            "Every admin action, through this API or the operator's CLI: who, what, when, from where, "
            "outcome. Never a password, secret or model bytes.",
            "AuditPage",
            query={
                "limit": {"type": "string", "pattern": "^[0-9]+$", "description": "1 to 100 (default 50)"},
                "cursor": {"type": "string", "description": "The previous page's next_cursor."},
            },
        ),
        **model_operations(body),
    }


MODEL_NOTES = {
    **ADMIN_NOTES,
    404: "No such model version or upload in the caller's tenant (another tenant's is the same 404).",
    409: "The version is already active, changes the tenant's interface without "
    '`{"allow_interface_change": true}`, or its stored model is damaged.',
}


def model_operations(body: dict[str, Any]) -> dict[tuple[str, str], Operation]:
    """The model routes (docs/tenant-admin.md, Models): versions, rollback, ONNX uploads."""
    version, upload = ("version",), ("upload_id",)
    return {
        ("get", "/api/v1/admin/models/versions"): _admin(
            "listModelVersions",
            "The tenant's model versions, oldest first",
            "What `inferctl list-versions` shows: format, interface, registration time, probe; "
            "`current` marks the one served.",
            "ModelVersionList",
            notes=MODEL_NOTES,
        ),
        ("get", "/api/v1/admin/models/versions/{version}"): _admin(
            "getModelVersion",
            "One model version",
            "Named by 12 to 64 hex digits of its SHA-256 digest (the `model_version` clients see).",
            "ModelVersion",
            path_parameters=version,
            notes=MODEL_NOTES,
        ),
        ("post", "/api/v1/admin/models/versions/{version}/activate"): _admin(
            "activateModelVersion",
            "Serve this version (a rollback)",
            "Its bytes are hashed first; a version that changes the tenant's interface needs "
            '`{"allow_interface_change": true}`. Served within the mapping TTL.',
            "ModelVersion",
            path_parameters=version,
            notes=MODEL_NOTES,
            **body | {"request": {JSON: "Activation"}},
        ),
        ("post", "/api/v1/admin/models/uploads"): _admin(
            "startModelUpload",
            "A form to upload a new ONNX model version",
            "Answers a presigned S3 POST (`url`, `fields`: send them as multipart form fields, the "
            "file last as `file`) for one key of this upload, of at most `max_bytes`, valid "
            "`expires_in` seconds. The registering function then checks the file and publishes it; "
            "poll GET /api/v1/admin/models/uploads/{upload_id}. Pickles and joblib files are "
            "refused (400), and so are the formats only the operator registers (skops, XGBoost, "
            "LightGBM: convert them to ONNX first).",
            "UploadForm",
            ok_status=201,
            notes=MODEL_NOTES,
            **body | {"request": {JSON: "NewUpload"}},
        ),
        ("get", "/api/v1/admin/models/uploads/{upload_id}"): _admin(
            "getModelUpload",
            "An upload's status",
            "`pending` (no file yet), `checking`, `registered` (with `version`, now served) or "
            "`refused` (with a fixed `reason`).",
            "Upload",
            path_parameters=upload,
            notes=MODEL_NOTES,
        ),
    }


def model_schemas() -> dict[str, Any]:
    version = {
        "type": "object",
        "required": ["version", "sha256", "current", "format", "task", "n_features", "classes"],
        "properties": {
            "version": {"type": "string", "description": "The first 12 hex digits of sha256."},
            "sha256": {"type": "string"},
            "current": {"type": "boolean"},
            "format": {"enum": ["onnx", "skops"]},
            "source_format": {"type": "string"},
            "task": {"enum": ["classification", "regression"]},
            "n_features": {"type": "integer"},
            "classes": {"type": "array"},
            "feature_names": {"type": ["array", "null"], "items": {"type": "string"}},
            "accepts_missing": {"type": "boolean"},
            "has_probabilities": {"type": "boolean"},
            "interface_changed": {"type": "boolean"},
            "registered_at": {"type": "integer"},
            "probe": {"type": "string"},
        },
        "additionalProperties": False,
    }
    flag = {"type": "boolean", "default": False}
    return {
        "ModelVersion": version,
        "ModelVersionList": {
            "type": "object",
            "required": ["versions"],
            "properties": {"versions": {"type": "array", "items": version}},
            "additionalProperties": False,
        },
        "Activation": {
            "type": "object",
            "properties": {"allow_interface_change": flag},
            "additionalProperties": False,
        },
        "NewUpload": {
            "type": "object",
            "required": ["format"],
            "properties": {
                "format": {"enum": sorted(uploads.ACCEPTED_FORMATS)},
                "allow_interface_change": flag,
            },
            "additionalProperties": False,
        },
        "UploadForm": {
            "type": "object",
            "required": ["upload_id", "status", "url", "fields", "max_bytes", "expires_in"],
            "properties": {
                "upload_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "status": {"const": "pending"},
                "url": {"type": "string", "format": "uri"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "max_bytes": {"type": "integer"},
                "expires_in": {"type": "integer"},
            },
            "additionalProperties": False,
        },
        "Upload": {
            "type": "object",
            "required": ["upload_id", "status", "format"],
            "properties": {
                "upload_id": {"type": "string"},
                "status": {"enum": ["pending", "checking", "registered", "refused"]},
                "format": {"type": "string"},
                "version": {"type": "string"},
                "reason": {"type": "string"},
            },
            "additionalProperties": False,
        },
    }


def admin_schemas() -> dict[str, Any]:
    roles = {"type": "array", "items": {"enum": list(ROLES)}, "minItems": 1, "uniqueItems": True}
    status = {"type": "string", "enum": ["active", "disabled", "revoked"]}
    user = {
        "type": "object",
        "required": ["username", "roles", "status", "created_at"],
        "properties": {
            "username": {"type": "string"},
            "roles": roles,
            "status": status,
            "created_at": {"type": "integer"},
        },
        "additionalProperties": False,
    }
    client = {
        "type": "object",
        "required": ["client_id", "roles", "status", "created_at"],
        "properties": {
            "client_id": {"type": "string"},
            "roles": roles,
            "status": status,
            "created_at": {"type": "integer"},
        },
        "additionalProperties": False,
    }
    entry_fields = tuple(AuditEntry("t", "k", "", "", "", "", "", "").to_json())  # the fields it writes
    return model_schemas() | {
        "Roles": {"type": "object", "properties": {"roles": roles}, "additionalProperties": False},
        "NewUser": {
            "type": "object",
            "required": ["username", "password"],
            "properties": {
                "username": {"type": "string", "pattern": f"^(?:{USERNAME_PATTERN.pattern})$"},
                "password": {
                    "type": "string",
                    "minLength": 8,
                    "maxLength": MAX_PASSWORD_CHARS,
                    "writeOnly": True,
                },
                "roles": roles,
            },
            "additionalProperties": False,
        },
        "User": user,
        "UserList": {
            "type": "object",
            "required": ["users"],
            "properties": {"users": {"type": "array", "items": user}},
            "additionalProperties": False,
        },
        "ClientList": {
            "type": "object",
            "required": ["clients"],
            "properties": {"clients": {"type": "array", "items": client}},
            "additionalProperties": False,
        },
        "NewClient": {
            "type": "object",
            "required": ["client_id", "client_secret", "roles"],
            "properties": {
                "client_id": {"type": "string"},
                "client_secret": {"type": "string"},
                "roles": roles,
            },
            "additionalProperties": False,
        },
        "RevokedClient": {
            "type": "object",
            "required": ["client_id", "status"],
            "properties": {"client_id": {"type": "string"}, "status": {"const": "revoked"}},
            "additionalProperties": False,
        },
        "AuditPage": {
            "type": "object",
            "required": ["entries", "next_cursor"],
            "properties": {
                "entries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": list(entry_fields),
                        "properties": {name: {"type": "string"} for name in entry_fields},
                        "additionalProperties": False,
                    },
                },
                "next_cursor": {"type": ["string", "null"]},
            },
            "additionalProperties": False,
        },
    }


def served_routes(*routers: Router) -> list[tuple[str, str, Callable[..., Any]]]:
    """(method, path, handler) of every route the functions' routers dispatch, by path."""
    routes = [
        (method.lower(), path, handler)
        for router in routers
        for (method, path), handler in router.routes.items()
    ]
    return sorted(routes, key=lambda r: (r[1], r[0]))


# --- the document ----------------------------------------------------------------------------


def body_schemas(settings: Settings, problem_fields: list[str]) -> dict[str, Any]:
    username = {
        "type": "string",
        "pattern": f"^(?:{USERNAME_PATTERN.pattern})$",
        "maxLength": 64,
        "examples": ["someone@example.com"],
    }
    password = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_PASSWORD_CHARS,
        "writeOnly": True,
        "examples": ["correct horse battery staple"],
    }
    number = {"type": "number", "description": "A finite number (JSON int or float; not a bool)."}
    return {
        "TokenRequest": {
            "type": "object",
            "required": ["username", "password"],
            "properties": {"username": username, "password": password},
            "additionalProperties": False,
        },
        "TokenRequestForm": {
            "type": "object",
            "required": ["grant_type", "username", "password"],
            "properties": {
                "grant_type": {"const": "password"},
                "username": username,
                "password": password,
                "scope": {"type": "string"},
                "client_id": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "TokenResponse": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in"],
            "properties": {
                "access_token": {"type": "string", "description": f"A JWT signed {ALGORITHM}."},
                "token_type": {"const": "Bearer"},
                "expires_in": {"type": "integer", "minimum": 1, "examples": [settings.token_ttl_seconds]},
            },
            "additionalProperties": False,
        },
        "JwkSet": {
            "type": "object",
            "required": ["keys"],
            "properties": {
                "keys": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["kty", "kid", "use", "alg", "n", "e"],
                        "properties": {
                            "kty": {"const": "RSA"},
                            "kid": {"type": "string", "minLength": 1},
                            "use": {"const": "sig"},
                            "alg": {"const": ALGORITHM},
                            "n": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                            "e": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                        },
                    },
                }
            },
            "additionalProperties": False,
        },
        "PredictRequest": {
            "type": "object",
            "required": ["instances"],
            "properties": {
                "instances": {
                    "type": "array",
                    "description": "1 to the tenant's max_batch rows (GET /api/v1/model; default "
                    f"{DEFAULT_MAX_BATCH}), each exactly n_features finite numbers (null for a missing "
                    "value where the model card says accepts_missing), or an object keyed by exactly "
                    "the model card's feature_names.",
                    "minItems": 1,
                    "items": {
                        "oneOf": [
                            {"type": "array", "minItems": 1, "items": {"oneOf": [number, {"type": "null"}]}},
                            {"type": "object", "additionalProperties": {"oneOf": [number, {"type": "null"}]}},
                        ]
                    },
                },
                "parameters": {
                    "type": "object",
                    "description": "Optional. `probabilities: true` adds one row of class probabilities "
                    "per instance, columns in the order of the model card's `classes`.",
                    "properties": {"probabilities": {"type": "boolean"}},
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
            "examples": [
                {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
                {"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": {"probabilities": True}},
            ],
        },
        "PredictResponse": {
            "type": "object",
            "required": ["predictions", "model_version"],
            "properties": {
                "predictions": {
                    "type": "array",
                    "minItems": 1,
                    "description": "One class label (classification) or value (regression) per row, "
                    "in the row order; a list of values per row for a multi-output regressor.",
                    "items": {
                        "oneOf": [
                            {"type": ["integer", "number", "string", "boolean"]},
                            {"type": "array", "items": {"type": "number"}},
                        ]
                    },
                },
                "probabilities": {
                    "type": "array",
                    "description": "Only when asked for: per row, one probability per model card class.",
                    "items": {"type": "array", "items": {"type": "number"}},
                },
                "model_version": {"type": "string", "pattern": "^[0-9a-f]{12}$"},
            },
            "additionalProperties": False,
        },
        "HistoryRecord": {
            "type": "object",
            "required": [
                "request_id",
                "time",
                "sub",
                "client_kind",
                "model_version",
                "rows",
                "latency_ms",
                "probabilities",
            ],
            "properties": {
                "request_id": {"type": "string"},
                "time": {"type": "string", "format": "date-time", "description": "UTC, ISO 8601"},
                "sub": {"type": "string", "description": "The caller: a username or a machine client id."},
                "client_kind": {"enum": ["user", "machine"]},
                "model_version": {"type": "string"},
                "rows": {"type": "integer", "minimum": 1},
                "latency_ms": {"type": "number"},
                "probabilities": {"type": "boolean", "description": "Whether probabilities were asked for."},
                "instances": {"type": "array", "description": "With capture on: the rows sent."},
                "predictions": {"type": "array", "description": "With capture on: the answers given."},
                "probabilities_returned": {"type": "array", "description": "With capture on, if asked."},
                "capture": {
                    "type": "object",
                    "description": "With capture on, a capture too large for a record: kept for the "
                    "tenant's operators.",
                    "properties": {"stored_separately": {"type": "boolean"}, "bytes": {"type": "integer"}},
                },
            },
        },
        "HistoryPage": {
            "type": "object",
            "required": ["records"],
            "properties": {
                "records": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryRecord"}},
                "next_cursor": {"type": "string", "description": "Absent on the last page."},
            },
            "additionalProperties": False,
        },
        "ModelCard": {
            "type": "object",
            "required": ["n_features", "max_batch", "classes", "version", "format"],
            "properties": {
                "task": {"enum": ["classification", "regression"]},
                "n_features": {"type": "integer", "minimum": 1},
                "feature_names": {
                    "type": ["array", "null"],
                    "items": {"type": "string"},
                    "description": "The columns' names, in order: rows may be objects keyed by them.",
                },
                "accepts_missing": {
                    "type": "boolean",
                    "description": "Whether a row may hold null (a missing value), proven at registration.",
                },
                "max_batch": {"type": "integer", "minimum": 1},
                "classes": {
                    "type": ["array", "null"],
                    "items": {"type": ["integer", "number", "string", "boolean"]},
                    "description": "A classifier's labels, in the order of its probabilities; null "
                    "for a regressor.",
                },
                "version": {"type": "string", "pattern": "^[0-9a-f]{12}$"},
                "format": {"enum": ["onnx", "skops"], "description": "How the model is served."},
                "interface_changed_at": {
                    "type": ["integer", "null"],
                    "description": "When the operator last published (or rolled back to) a version "
                    "whose task, features, feature names, classes or probabilities differ from the "
                    "one before (epoch seconds); null if never. Clients may compare it with the value "
                    "they were written against.",
                },
                "sklearn_version": {
                    "type": "string",
                    "description": "Only for skops models: the scikit-learn that serves them.",
                },
            },
            "additionalProperties": False,
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details. `detail` is a fixed text for the client: "
            "never exception text, input, or a resource name.",
            "required": problem_fields,
            "properties": {
                "type": {"type": "string", "format": "uri"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "error": {
                    "type": "string",
                    "enum": sorted(OAUTH_ERROR_CODES),
                    "description": "Token endpoint only: the RFC 6749 5.2 code, for OAuth client libraries.",
                },
            },
            "additionalProperties": False,
        },
    }


def header_components() -> dict[str, Any]:
    headers: dict[str, Any] = {
        name: {
            "description": "Sent on every response, errors included.",
            "required": True,
            "schema": {"type": "string", "const": value},
        }
        for name, value in SECURITY_HEADERS.items()
    }
    headers["WWW-Authenticate"] = {
        "description": "The bearer challenge (RFC 6750).",
        "required": True,
        "schema": {"type": "string", "const": errors.Unauthorized().headers["WWW-Authenticate"]},
    }
    headers["WWW-Authenticate-Basic"] = {
        "description": "Sent as WWW-Authenticate: the token endpoint's challenge (RFC 9110 15.5.2).",
        "required": True,
        "schema": {"type": "string", "const": errors.InvalidCredentials().headers["WWW-Authenticate"]},
    }
    headers["Retry-After"] = {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
    return headers


REQUEST_ID_HEADER = {
    "X-Request-Id": {
        "description": "This request's id: its history record is GET /api/v1/history/{request_id}.",
        "required": True,
        "schema": {"type": "string"},
    }
}


def security_header_refs() -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in SECURITY_HEADERS}


GATEWAY_NOTES = {
    429: "The stage's throttling limits were exceeded (an API Gateway response, no Retry-After).",
    504: "The function did not answer in time (an API Gateway response).",
}


def error_response(status: int, problem_type: str, note: str, *, challenge: str | None) -> dict[str, Any]:
    headers = security_header_refs()
    if challenge:
        headers["WWW-Authenticate"] = {"$ref": f"#/components/headers/{challenge}"}
    if sends_retry_after(status):
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    schema = {
        "allOf": [{"$ref": "#/components/schemas/Problem"}, {"properties": {"status": {"const": status}}}]
    }
    return {
        "description": note or error_title(status),
        "headers": headers,
        "content": {problem_type: {"schema": schema}},
    }


def path_item(operation: Operation, problem_type: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(operation.ok_status): {
            "description": "Created" if operation.ok_status == 201 else "OK",
            "headers": security_header_refs(),
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{operation.ok}"}}},
        }
    }
    statuses = sorted({*operation.errors, *GATEWAY_NOTES})
    for status in statuses:
        note = " ".join(filter(None, (operation.notes.get(status), GATEWAY_NOTES.get(status))))
        # Predict's 401 is a bearer challenge; the token endpoint's names its Basic scheme.
        challenge = None
        if status == 401:
            challenge = "WWW-Authenticate" if operation.authenticated else "WWW-Authenticate-Basic"
        responses[str(status)] = error_response(status, problem_type, note, challenge=challenge)
    item: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
        "security": [{BEARER: []}] if operation.authenticated else [],
        "responses": responses,
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in operation.path_parameters
    ] + [{"name": name, "in": "query", "schema": schema} for name, schema in operation.query.items()]
    parameters += operation.parameters
    if parameters:
        item["parameters"] = parameters
    if operation.operation_id == "predict":
        responses["200"]["headers"] = {**responses["200"]["headers"], **REQUEST_ID_HEADER}
    if operation.request:
        item["requestBody"] = {
            "required": True,
            "content": {
                media: {"schema": {"$ref": f"#/components/schemas/{name}"}}
                for media, name in operation.request.items()
            },
            "x-max-body-bytes": operation.max_body_bytes,
        }
    return item


def build_document() -> dict[str, Any]:
    settings = code_defaults()
    problem_type, problem_fields = problem_shape()
    described = operations(settings)
    routes = served_routes(login.app, predict.app, history.app, admin.app)
    served = {(method, path) for method, path, _ in routes}
    if served != set(described):
        raise SystemExit(
            f"routes and descriptions differ: undescribed {sorted(served - set(described))}, "
            f"not served {sorted(set(described) - served)}"
        )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, _ in routes:
        paths.setdefault(path, {})[method] = path_item(described[(method, path)], problem_type)
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Multi-tenant inference API",
            "version": version,
            "description": "Each tenant's clients log in, then send rows to their own scikit-learn "
            "model. Generated by scripts/make_openapi.py from the handlers; do not edit.",
        },
        "servers": [
            {
                "url": "https://{apiId}.execute-api.{region}.amazonaws.com/{stage}",
                "variables": {
                    "apiId": {"default": "example"},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "live"},
                },
            },
            {"url": "http://127.0.0.1:3000", "description": "make serve"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from POST /api/v1/auth/token.",
                }
            },
            "headers": header_components(),
            "schemas": body_schemas(settings, problem_fields) | admin_schemas(),
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if openapi.json is out of date")
    args = parser.parse_args(argv)
    text = render(build_document())
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.name} is out of date: run python scripts/make_openapi.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
