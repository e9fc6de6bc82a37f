"""Tenant admin: a tenant's own admins manage its users and machine clients, and read its audit trail.

GET  /api/v1/admin/users                          the tenant's users (never a password hash)
POST /api/v1/admin/users                          {"username", "password", "roles"?} -> 201
POST /api/v1/admin/users/{username}/disable       no new logins; its tokens are revoked
POST /api/v1/admin/users/{username}/enable
PUT  /api/v1/admin/users/{username}/roles         {"roles": ["user", "admin"]}
GET  /api/v1/admin/clients                        the tenant's machine clients (never a secret)
POST /api/v1/admin/clients                        {"roles"?} -> 201 with the secret, shown once
POST /api/v1/admin/clients/{client_id}/revoke
GET  /api/v1/admin/audit?limit=&cursor=           the tenant's audit trail, newest first
GET  /api/v1/admin/models/versions                the tenant's model versions (`inferctl list-versions`)
GET  /api/v1/admin/models/versions/{version}      one of them (12 to 64 hex digits of its digest)
POST /api/v1/admin/models/versions/{version}/activate  {"allow_interface_change"?} (a rollback)
POST /api/v1/admin/models/uploads                 {"format": "onnx", "allow_interface_change"?} -> 201
                                                  with a presigned S3 POST (model_runtime/uploads.py)
GET  /api/v1/admin/models/uploads/{upload_id}     pending, checking, registered or refused

Every route reads like the same request path, and `admin_route` makes it so for each of them:
1. the bearer token is verified (401 otherwise), and its tenant must be the authorizer's;
2. the tenant comes from the verified token alone (`access.resolve_tenant`): no tenant id in the
   path, query or body is ever read, and every account write is conditional on the account
   being that tenant's, so another tenant's user or client is a 404 like a missing one;
3. the token must carry `admin` (docs/decisions/0014-roles-claim.md): 403, one fixed body;
4. the action, then one audit entry for it, whatever its outcome (`model_runtime.audit`).
Passwords and client secrets are never logged, audited or echoed (a secret is returned once).
"""

from __future__ import annotations

import gc

gc.disable()  # no collection while init imports; `end_init` (last line) resumes it

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_runtime import accounts, audit, uploads, versions
from model_runtime.access import resolve_tenant, verified_caller
from model_runtime.errors import (
    BadRequest,
    Conflict,
    NotAdmin,
    NotFound,
    ProblemError,
    UnsupportedMediaType,
)
from model_runtime.http import (
    Event,
    Response,
    Router,
    json_response,
    media_type,
    raw_body,
    utf8_or_unspecified,
)
from model_runtime.roles import ADMIN
from model_runtime.runtime import Runtime, end_init
from model_runtime.settings import require_settings
from model_runtime.strict_json import parse_json
from model_runtime.table import Client, User

MAX_ADMIN_BODY_BYTES = 16 * 1024  # a username, a password and two roles fit many times over
ADMIN_PREFIX = "/api/v1/admin/"

logger = Logger()
metrics = Metrics()
app = Router(logger, metrics)
# This container's state, built at init; a missing setting fails the init, naming the variable.
runtime = Runtime(
    require_settings(logger, "TABLE_NAME", "SIGNING_KEY_ID", "ACTIVITY_TABLE_NAME", "MODEL_BUCKET")
)


@dataclass
class Action:
    """One admin request: who asks, for which tenant (the verified token's), and what it acts on
    (`target`, set by the route once known: a new client's id, say)."""

    tenant_id: str
    subject: str
    source: str
    target: str = ""


AdminHandler = Callable[[Event, Action], Response]


def admin_caller(event: Event) -> Action:
    """Steps 1-3: the verified caller, its tenant from the token only, and its `admin` role."""
    claims = verified_caller(runtime, event)
    tenant = resolve_tenant(runtime, claims)
    identity = (event.get("requestContext") or {}).get("identity") or {}
    action = Action(tenant.tenant_id, claims.subject, str(identity.get("sourceIp") or ""))
    if ADMIN not in claims.roles:
        raise _Denied(action)
    return action


class _Denied(NotAdmin):
    """`NotAdmin`, with the caller it refused (audited: a user probing admin routes is news)."""

    def __init__(self, action: Action) -> None:
        super().__init__()
        self.action = action


# What an account refusal is for the client: fixed bodies that never repeat what was sent.
_REFUSALS: Mapping[type[accounts.AccountError], tuple[Callable[[], ProblemError], str]] = {
    accounts.InvalidAccount: (
        lambda: BadRequest(
            "Usernames are 1-64 letters, digits or . _ @ + - (not starting with mc_), passwords 8 to "
            "1024 characters, roles 'user' and 'admin'."
        ),
        audit.INVALID,
    ),
    accounts.UnknownAccount: (lambda: NotFound("No such user or client in this tenant."), audit.NOT_FOUND),
    accounts.AccountExists: (lambda: Conflict("That username is taken."), audit.CONFLICT),
    accounts.LastAdmin: (
        lambda: Conflict(
            "This would leave the tenant without an active admin: make another user admin first."
        ),
        audit.LAST_ADMIN,
    ),
}


# A version refusal for the client: fixed bodies (the errors' own messages name the CLI's flags).
_VERSION_REFUSALS: Mapping[type[versions.VersionError], tuple[Callable[[], ProblemError], str]] = {
    versions.UnknownTenant: (lambda: NotFound("No such model version in this tenant."), audit.NOT_FOUND),
    versions.NoSuchVersion: (lambda: NotFound("No such model version in this tenant."), audit.NOT_FOUND),
    versions.AlreadyCurrent: (lambda: Conflict("That version is already the active one."), audit.CONFLICT),
    versions.InterfaceChanged: (
        lambda: Conflict(
            "That version changes the tenant's interface (task, features, classes or probabilities): "
            'send {"allow_interface_change": true} once every client is ready for it.'
        ),
        audit.CONFLICT,
    ),
    versions.DamagedVersion: (
        lambda: Conflict("That version's stored model is damaged: ask the operator."),
        audit.CONFLICT,
    ),
}


def admin_route(method: str, resource: str, name: str) -> Callable[[AdminHandler], AdminHandler]:
    """Register an admin route: every one of them passes `admin_caller` first and is audited as
    `name`. The only way routes are added here (tests/handler/test_tenant_admin.py checks each)."""
    if not resource.startswith(ADMIN_PREFIX):
        raise ValueError(f"admin routes live under {ADMIN_PREFIX}")

    def register(handler: AdminHandler) -> AdminHandler:
        def guarded(event: Event) -> Response:
            try:
                action = admin_caller(event)
            except _Denied as denied:
                _audit(denied.action, name, audit.DENIED)
                raise
            action.target = _path_target(event)
            try:
                response = handler(event, action)
            except accounts.AccountError as error:
                refusal, outcome = _REFUSALS[type(error)]
                _audit(action, name, outcome)
                raise refusal() from None
            except versions.VersionError as error:
                refusal, outcome = _VERSION_REFUSALS[type(error)]
                _audit(action, name, outcome)
                raise refusal() from None
            except ProblemError as error:
                _audit(action, name, audit.INVALID if error.status < 500 else audit.FAILED)
                raise
            except Exception:
                _audit_best_effort(action, name)
                raise
            _audit(action, name, audit.OK)
            return response

        app.route(method, resource)(guarded)
        return handler

    return register


def _path_target(event: Event) -> str:
    parameters = event.get("pathParameters") or {}
    return str(
        parameters.get("username")
        or parameters.get("client_id")
        or parameters.get("version")
        or parameters.get("upload_id")
        or ""
    )


def _audit(action: Action, name: str, outcome: str) -> None:
    # The log line first: if the audit write fails, the action is still on record (and a 503 says so).
    logger.info(
        "admin action",
        extra={
            "tenant_id": action.tenant_id,
            "subject": action.subject,
            "admin_action": name,
            "outcome": outcome,
        },
    )
    audit.record(
        runtime.activity,
        action.tenant_id,
        actor=action.subject,
        via=audit.API,
        source=action.source,
        action=name,
        target=action.target,
        outcome=outcome,
    )
    metrics.add_metric(name="AdminAction", unit=MetricUnit.Count, value=1)


def _audit_best_effort(action: Action, name: str) -> None:
    """A failed action is audited as `failed` if the trail can still be written; the failure that
    stopped the action is what the client gets (the Router turns it into a 5xx)."""
    try:
        _audit(action, name, audit.FAILED)
    except Exception:  # the original failure matters more; the log line below records both
        logger.warning(
            "admin action not audited", extra={"tenant_id": action.tenant_id, "admin_action": name}
        )


def json_body(
    event: Event, allowed: frozenset[str], required: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The request's JSON object, with only `allowed` fields and every `required` one."""
    body = raw_body(event, MAX_ADMIN_BODY_BYTES)
    if body and (media_type(event) != "application/json" or not utf8_or_unspecified(event)):
        raise UnsupportedMediaType("Send application/json in UTF-8.")
    document = parse_json(body) if body else {}
    if not isinstance(document, dict) or not set(document) <= allowed or not required <= set(document):
        fields = ", ".join(sorted(allowed))
        raise BadRequest(f"The body must be a JSON object with only these fields: {fields}.")
    return document


def roles_field(document: Mapping[str, Any]) -> list[str]:
    roles = document.get("roles", ["user"])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise BadRequest("'roles' must be a list of 'user' and 'admin'.")
    return roles


def user_json(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "roles": list(user.roles),
        "status": user.status,
        "created_at": user.created_at,
    }


def client_json(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "roles": list(client.roles),
        "status": client.status,
        "created_at": client.created_at,
    }


def path_parameter(event: Event, name: str) -> str:
    return str((event.get("pathParameters") or {}).get(name) or "")


# --- users -------------------------------------------------------------------------------------


@admin_route("GET", "/api/v1/admin/users", "user.list")
def list_users(_: Event, action: Action) -> Response:
    return json_response(
        200, {"users": [user_json(user) for user in accounts.users_of(runtime, action.tenant_id)]}
    )


@admin_route("POST", "/api/v1/admin/users", "user.create")
def create_user(event: Event, action: Action) -> Response:
    document = json_body(
        event, frozenset({"username", "password", "roles"}), frozenset({"username", "password"})
    )
    username, password = document["username"], document["password"]
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("'username' and 'password' must be strings.")
    user = accounts.create_user(runtime, username, password, action.tenant_id, roles_field(document))
    action.target = user.username
    return json_response(201, user_json(user))


@admin_route("POST", "/api/v1/admin/users/{username}/disable", "user.disable")
def disable_user(event: Event, action: Action) -> Response:
    user = accounts.set_user_status(
        runtime, path_parameter(event, "username"), active=False, tenant_id=action.tenant_id
    )
    return json_response(200, user_json(user))


@admin_route("POST", "/api/v1/admin/users/{username}/enable", "user.enable")
def enable_user(event: Event, action: Action) -> Response:
    user = accounts.set_user_status(
        runtime, path_parameter(event, "username"), active=True, tenant_id=action.tenant_id
    )
    return json_response(200, user_json(user))


@admin_route("PUT", "/api/v1/admin/users/{username}/roles", "user.set-roles")
def set_user_roles(event: Event, action: Action) -> Response:
    document = json_body(event, frozenset({"roles"}), frozenset({"roles"}))
    user = accounts.set_user_roles(
        runtime, path_parameter(event, "username"), roles_field(document), tenant_id=action.tenant_id
    )
    return json_response(200, user_json(user))


# --- machine clients ---------------------------------------------------------------------------


@admin_route("GET", "/api/v1/admin/clients", "client.list")
def list_clients(_: Event, action: Action) -> Response:
    clients = accounts.clients_of(runtime, action.tenant_id)
    return json_response(200, {"clients": [client_json(client) for client in clients]})


@admin_route("POST", "/api/v1/admin/clients", "client.create")
def create_client(event: Event, action: Action) -> Response:
    document = json_body(event, frozenset({"roles"}))
    new = accounts.create_client(runtime, action.tenant_id, roles_field(document))
    action.target = new.client_id
    # The secret is in this answer and nowhere else: only its SHA-256 is stored.
    return json_response(
        201, {"client_id": new.client_id, "client_secret": new.client_secret, "roles": list(new.roles)}
    )


@admin_route("POST", "/api/v1/admin/clients/{client_id}/revoke", "client.revoke")
def revoke_client(event: Event, action: Action) -> Response:
    client = accounts.revoke_client(runtime, path_parameter(event, "client_id"), tenant_id=action.tenant_id)
    return json_response(200, {"client_id": client.client_id, "status": "revoked"})


# --- the audit trail ---------------------------------------------------------------------------


@admin_route("GET", "/api/v1/admin/audit", "audit.read")
def read_audit(event: Event, action: Action) -> Response:
    query = event.get("queryStringParameters") or {}
    raw_limit, cursor = str(query.get("limit") or "50"), query.get("cursor")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= audit.MAX_PAGE:
        raise BadRequest(f"'limit' must be a whole number from 1 to {audit.MAX_PAGE}.")
    if cursor is not None and not audit.valid_cursor(str(cursor)):
        raise BadRequest("'cursor' must be the next_cursor of a previous page.")
    entries, next_cursor = audit.page(runtime.activity, action.tenant_id, int(raw_limit), cursor)
    return json_response(
        200, {"entries": [entry.to_json(for_tenant=True) for entry in entries], "next_cursor": next_cursor}
    )


# --- models -------------------------------------------------------------------------------------


def version_json(version: versions.VersionRow) -> dict[str, Any]:
    """What `inferctl list-versions` shows, for the tenant: no key, bucket or path."""
    return {
        "version": version.sha256[:12],
        "sha256": version.sha256,
        "current": version.current,
        "format": version.model_format,
        "source_format": version.source_format,
        "task": version.task,
        "n_features": version.n_features,
        "classes": version.classes,
        "feature_names": None if version.feature_names is None else list(version.feature_names),
        "accepts_missing": version.accepts_missing,
        "has_probabilities": version.has_probabilities,
        "interface_changed": version.interface_changed,
        "registered_at": version.registered_at,
        "probe": version.probe,
    }


def version_parameter(event: Event) -> str:
    version = path_parameter(event, "version")
    if not versions.is_digest_prefix(version):
        raise BadRequest("Name a version by 12 to 64 lower-case hex digits of its digest.")
    return version


def interface_flag(document: Mapping[str, Any]) -> bool:
    flag = document.get("allow_interface_change", False)
    if not isinstance(flag, bool):
        raise BadRequest("'allow_interface_change' must be true or false.")
    return flag


@admin_route("GET", "/api/v1/admin/models/versions", "model.list")
def list_model_versions(_: Event, action: Action) -> Response:
    rows = versions.list_versions(runtime, action.tenant_id)
    return json_response(200, {"versions": [version_json(row) for row in rows]})


@admin_route("GET", "/api/v1/admin/models/versions/{version}", "model.get")
def get_model_version(event: Event, action: Action) -> Response:
    rows = versions.list_versions(runtime, action.tenant_id)
    return json_response(
        200, version_json(versions.find_version(rows, action.tenant_id, version_parameter(event)))
    )


@admin_route("POST", "/api/v1/admin/models/versions/{version}/activate", "model.activate")
def activate_model_version(event: Event, action: Action) -> Response:
    version = version_parameter(event)
    document = json_body(event, frozenset({"allow_interface_change"}))
    done = versions.rollback(
        runtime, action.tenant_id, version, allow_interface_change=interface_flag(document)
    )
    action.target = done.version.sha256[:12]
    return json_response(
        200,
        {**version_json(done.version), "current": True, "interface_changed": bool(done.interface_changes)},
    )


PICKLE_REFUSED = (
    "Pickles (and joblib files) are never accepted over the API: loading one runs any code it "
    "holds. Export the model to ONNX (skl2onnx or onnxmltools) and upload the .onnx file."
)


@admin_route("POST", "/api/v1/admin/models/uploads", "model.upload")
def start_model_upload(event: Event, action: Action) -> Response:
    document = json_body(event, frozenset({"format", "allow_interface_change"}), frozenset({"format"}))
    model_format = document["format"]
    if not isinstance(model_format, str):
        raise BadRequest("'format' must be \"onnx\".")
    if model_format.lower() in uploads.PICKLE_FORMATS:
        raise BadRequest(PICKLE_REFUSED)
    if model_format in uploads.OPERATOR_ONLY_FORMATS:
        raise BadRequest(
            "Only ONNX models are registered over the API: convert this model to ONNX on your "
            "machine (skl2onnx for scikit-learn, onnxmltools for XGBoost and LightGBM) and upload "
            "the .onnx file, or ask the operator to register it."
        )
    if model_format not in uploads.ACCEPTED_FORMATS:
        raise BadRequest("'format' must be \"onnx\".")
    upload, form = uploads.start(
        runtime,
        action.tenant_id,
        action.subject,
        model_format,
        allow_interface_change=interface_flag(document),
    )
    action.target = upload.upload_id
    return json_response(
        201,
        {
            "upload_id": upload.upload_id,
            "status": upload.status,
            "url": form["url"],
            "fields": form["fields"],
            "max_bytes": uploads.max_bytes(),
            "expires_in": uploads.form_seconds(),
        },
    )


@admin_route("GET", "/api/v1/admin/models/uploads/{upload_id}", "model.upload-status")
def model_upload_status(event: Event, action: Action) -> Response:
    upload_id = path_parameter(event, "upload_id")
    # The tenant is part of the item's key: another tenant's upload id finds nothing here.
    found = (
        uploads.uploads(runtime).get(action.tenant_id, upload_id)
        if uploads.valid_upload_id(upload_id)
        else None
    )
    if found is None:
        raise NotFound("No such upload in this tenant.")
    answer: dict[str, Any] = {
        "upload_id": found.upload_id,
        "status": found.status,
        "format": found.model_format,
    }
    if found.sha256:
        answer["version"] = found.sha256[:12]
    if found.reason:
        answer["reason"] = found.reason
    return json_response(200, answer)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime.deadline.begin(context, event)  # every AWS call of this request fits in its time left
    return app.resolve(event)


end_init()  # the last line of init (model_runtime/runtime.py)
