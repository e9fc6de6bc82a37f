"""The tenant-admin API (functions/admin), roles in tokens, and the audit trail.

Each rule here is a threat: a plain user reaching an admin route, an admin reaching another
tenant, the last admin locked out, a secret landing in the audit trail or a log, a token whose
`roles` claim was edited or forged.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from model_runtime import accounts, uploads
from model_runtime.roles import ADMIN, USER, claim_roles, requested_roles, stored_roles

from functions.admin import app as admin_app
from functions.login import app as login_app
from functions.predict import app as predict_app
from inferctl.cli import main as inferctl
from tests.admin_models import publish_variant
from tests.forge import Attacker, assemble, b64url_json, fresh_claims, parts, signing_input
from tests.support import (
    REPO_ROOT,
    FakeLambdaContext,
    Stack,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    token_for,
)

# Secrets this module's tests use: none of them may reach an audit item or a log line.
ADA_PASSWORD = "ada-admin-" + uuid.uuid4().hex
NEW_USER_PASSWORD = "carol-" + uuid.uuid4().hex
BOB_ADMIN_PASSWORD = "berit-admin-" + uuid.uuid4().hex
ADMIN_ROUTE_PREFIX = "/api/v1/admin/"


# --- helpers ---------------------------------------------------------------------------------


def admin_event(
    method: str,
    resource: str,
    token: str | None,
    *,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway (REST, proxy) event for an admin route, as the gateway sends it."""
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", value)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "pathParameters": path_parameters,
        "queryStringParameters": query,
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {"requestId": uuid.uuid4().hex, "identity": {"sourceIp": "198.51.100.7"}},
    }


def call(event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = admin_app.lambda_handler(event, FakeLambdaContext())
    assert_security_headers(response)
    return response


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def login(username: str, password: str) -> str:
    event = load_event("login_success")
    event["body"] = json.dumps({"username": username, "password": password})
    response = login_app.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    token: str = json.loads(response["body"])["access_token"]
    return token


def client_login(client_id: str, client_secret: str) -> dict[str, Any]:
    encoded = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    response: dict[str, Any] = login_app.lambda_handler(
        load_event("token_client_credentials", client_basic=encoded), FakeLambdaContext()
    )
    return response


def claims_of(token: str) -> dict[str, Any]:
    return parts(token)[1]


def sign_with_service_key(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWS with a genuine signature by the stack's KMS key: only its contents can fail it."""
    signature = current_runtime().kms.sign(
        KeyId=current_runtime().settings.signing_key_id,
        Message=signing_input(header, claims),
        MessageType="RAW",
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )["Signature"]
    return assemble(header, claims, signature)


def predict_status(token: str) -> int:
    event = load_event("predict_alice", alice_token=token)
    status: int = predict_app.lambda_handler(event, FakeLambdaContext())["statusCode"]
    return status


def audit_items(stack: Stack) -> list[dict[str, Any]]:
    name = current_runtime().settings.activity_table_name
    items: list[dict[str, Any]] = current_runtime().dynamodb.scan(TableName=name)["Items"]
    return items


# A concrete request for every admin route: path parameters and a body that would succeed.
def route_requests(
    username: str, client_id: str, version: str = "0" * 12, upload_id: str = "0" * 32
) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        ("GET", "/api/v1/admin/users"): {},
        ("POST", "/api/v1/admin/users"): {
            "body": {"username": "x" + uuid.uuid4().hex[:8], "password": "p" * 12}
        },
        ("POST", "/api/v1/admin/users/{username}/disable"): {"path_parameters": {"username": username}},
        ("POST", "/api/v1/admin/users/{username}/enable"): {"path_parameters": {"username": username}},
        ("PUT", "/api/v1/admin/users/{username}/roles"): {
            "path_parameters": {"username": username},
            "body": {"roles": [USER, ADMIN]},
        },
        ("GET", "/api/v1/admin/clients"): {},
        ("POST", "/api/v1/admin/clients"): {"body": {"roles": [ADMIN]}},
        ("POST", "/api/v1/admin/clients/{client_id}/revoke"): {"path_parameters": {"client_id": client_id}},
        ("GET", "/api/v1/admin/audit"): {"query": {"limit": "10"}},
        ("GET", "/api/v1/admin/models/versions"): {},
        ("GET", "/api/v1/admin/models/versions/{version}"): {"path_parameters": {"version": version}},
        ("POST", "/api/v1/admin/models/versions/{version}/activate"): {
            "path_parameters": {"version": version},
            "body": {"allow_interface_change": False},
        },
        ("POST", "/api/v1/admin/models/uploads"): {"body": {"format": "onnx"}},
        ("GET", "/api/v1/admin/models/uploads/{upload_id}"): {"path_parameters": {"upload_id": upload_id}},
    }


@pytest.fixture
def admins(demo: Stack) -> Iterator[Stack]:
    """The demo tenants, each with an admin: ada (tenant-a), berit (tenant-b)."""
    runtime = current_runtime()
    accounts.create_user(runtime, "ada", ADA_PASSWORD, "tenant-a", (USER, ADMIN))
    accounts.create_user(runtime, "berit", BOB_ADMIN_PASSWORD, "tenant-b", (USER, ADMIN))
    yield demo


def ada_token() -> str:
    return login("ada", ADA_PASSWORD)


# --- roles in tokens ---------------------------------------------------------------------------


def test_login_puts_the_users_stored_roles_in_the_roles_claim(admins: Stack) -> None:
    # Given ada (admin) and alice (created by the CLI's default, stored as the legacy "predict")
    # When each logs in
    # Then ada's token carries both roles and alice's exactly `user`, in a JSON array
    assert claims_of(ada_token())["roles"] == [USER, ADMIN]
    assert claims_of(login("alice", "alice-local-demo"))["roles"] == [USER]
    assert current_runtime().tokens.verify(ada_token()).roles == (USER, ADMIN)


def test_predict_and_the_model_card_accept_any_role_of_the_tenant(admins: Stack) -> None:
    # Given tokens of tenant-a with each possible set of roles, and one issued before roles existed
    runtime = current_runtime()
    tokens = [
        runtime.tokens.issue("alice", "tenant-a", roles=roles).access_token for roles in ((USER,), (ADMIN,))
    ]
    legacy = fresh_claims(claims_of(tokens[0]), roles=None)
    tokens.append(sign_with_service_key(parts(tokens[0])[0], legacy))
    # Then every one of them predicts
    assert [predict_status(token) for token in tokens] == [200, 200, 200]


def test_a_token_issued_before_roles_existed_is_a_user_and_nothing_more(admins: Stack) -> None:
    token = token_for("alice", "tenant-a")
    header, claims, _ = parts(token)
    legacy = sign_with_service_key(header, fresh_claims(claims, roles=None))
    assert current_runtime().tokens.verify(legacy).roles == (USER,)
    response = call(admin_event("GET", "/api/v1/admin/users", legacy))
    assert_problem(response, 403)


@pytest.mark.parametrize(
    "roles",
    [
        ["root"],
        "admin",
        [],
        ["admin", "admin"],
        ["user", "admin", "root"],
        [None],
        [["admin"]],
        {"admin": True},
        "user admin",
    ],
    ids=repr,
)
def test_a_roles_claim_outside_the_strict_syntax_is_refused_even_when_genuinely_signed(
    admins: Stack, roles: Any
) -> None:
    # Given a token signed by the service's own key whose roles claim is malformed or unknown
    header, claims, _ = parts(ada_token())
    token = sign_with_service_key(header, fresh_claims(claims, roles=roles))
    # Then it is no token at all: 401 on predict and on the admin API
    assert predict_status(token) == 401
    assert_problem(call(admin_event("GET", "/api/v1/admin/users", token)), 401)


def test_role_escalation_by_editing_the_roles_claim_fails(admins: Stack) -> None:
    # Given alice's genuine `user` token
    token = login("alice", "alice-local-demo")
    header, claims, _ = parts(token)
    # When she edits its claims to carry admin and keeps the signature
    edited = f"{b64url_json(header)}.{b64url_json(claims | {'roles': [USER, ADMIN]})}.{token.split('.')[2]}"
    # Or signs the edited claims with a key of her own
    forged = Attacker.generate().sign(header, fresh_claims(claims, roles=[USER, ADMIN]))
    # Then neither reaches any admin route
    for bad in (edited, forged):
        assert_problem(call(admin_event("GET", "/api/v1/admin/users", bad)), 401)
        assert_problem(
            call(
                admin_event(
                    "POST",
                    "/api/v1/admin/users/{username}/disable",
                    bad,
                    path_parameters={"username": "alice"},
                )
            ),
            401,
        )
    # And her own token stays a user's: 403
    assert_problem(call(admin_event("GET", "/api/v1/admin/users", token)), 403)


def test_roles_vocabulary_reads_legacy_items_as_user_and_refuses_unknown_requests() -> None:
    assert stored_roles(()) == (USER,)
    assert stored_roles(("predict",)) == (USER,)
    assert stored_roles(("admin", "user", "predict")) == (USER, ADMIN)
    assert stored_roles(("root",)) == (USER,)  # an unknown stored name never grants anything
    assert requested_roles([ADMIN]) == (ADMIN,)
    with pytest.raises(ValueError, match="root"):
        requested_roles(["root", USER])
    assert claim_roles(["admin", "user"]) == (USER, ADMIN)
    assert claim_roles(("user",)) is None  # a tuple is not what JSON decodes: the type is exact


# --- every admin route needs `admin` -----------------------------------------------------------


def admin_routes() -> list[tuple[str, str]]:
    """Every route the admin function serves, from its router (a route added there is in here)."""
    return sorted(admin_app.app.routes)


def test_the_routes_under_test_are_exactly_the_documented_and_deployed_admin_routes() -> None:
    document = json.loads((REPO_ROOT / "openapi.json").read_text())
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith(ADMIN_ROUTE_PREFIX)
        for method in item
    }
    assert set(admin_routes()) == documented
    assert set(route_requests("u", "c")) == documented  # every route has a request in the tests below
    assert all(path.startswith(ADMIN_ROUTE_PREFIX) for _, path in admin_routes())


def test_a_user_token_gets_the_same_403_on_every_admin_route(admins: Stack) -> None:
    # Given alice's `user` token, and a machine client of tenant-a with the default scope
    created = accounts.create_client(current_runtime(), "tenant-a")
    client_token = json.loads(client_login(created.client_id, created.client_secret)["body"])["access_token"]
    requests = route_requests("ada", created.client_id)
    bodies = set()
    for token in (login("alice", "alice-local-demo"), client_token):
        # When either calls every route the admin function serves, each with a request that an admin's
        # token would have had done
        for method, resource in admin_routes():
            response = call(admin_event(method, resource, token, **requests[(method, resource)]))
            # Then each is a 403 problem+json
            problem = assert_problem(response, 403)
            bodies.add(response["body"])
            assert problem["detail"] == "This route needs the tenant's admin role."
    # And one fixed body for all of them, and nothing was done: ada is still an active admin
    assert len(bodies) == 1
    ada = current_runtime().table.get_user("ada")
    assert ada is not None and ada.active and ADMIN in ada.roles
    client = current_runtime().table.get_client(created.client_id)
    assert client is not None and client.active


def test_an_admin_token_reaches_every_admin_route(admins: Stack) -> None:
    # Given ada's admin token and a second admin, so the requests above can all succeed, a second
    # version of tenant-a's model (the first one can be activated again) and an upload of tenant-a
    accounts.create_user(current_runtime(), "ann", "ann-password-1", "tenant-a", (USER, ADMIN))
    created = accounts.create_client(current_runtime(), "tenant-a")
    first = admins.tenant("tenant-a").model_sha256
    publish_variant("tenant-a")
    upload, _ = uploads.start(current_runtime(), "tenant-a", "ada", "onnx", allow_interface_change=False)
    token = ada_token()
    requests = route_requests("ann", created.client_id, first[:12], upload.upload_id)
    # Then every admin route answers 2xx
    for method, resource in admin_routes():
        response = call(admin_event(method, resource, token, **requests[(method, resource)]))
        assert response["statusCode"] in (200, 201), (method, resource, response["body"])


def test_no_token_or_a_bad_one_is_a_401_on_the_admin_routes(admins: Stack) -> None:
    for token in (None, "not-a-token"):
        response = call(admin_event("GET", "/api/v1/admin/users", token))
        assert_problem(response, 401)


# --- users ---------------------------------------------------------------------------------------


def test_an_admin_creates_a_user_whose_password_works_once_given(admins: Stack) -> None:
    token = ada_token()
    response = call(
        admin_event(
            "POST", "/api/v1/admin/users", token, body={"username": "carol", "password": NEW_USER_PASSWORD}
        )
    )
    assert response["statusCode"] == 201, response["body"]
    created = body_of(response)
    assert created["username"] == "carol" and created["roles"] == [USER] and created["status"] == "active"
    assert NEW_USER_PASSWORD not in response["body"]
    # The user is tenant-a's, whatever tenant the admin might have wished for, and logs in
    stored = current_runtime().table.get_user("carol")
    assert stored is not None and stored.tenant_id == "tenant-a"
    assert NEW_USER_PASSWORD not in stored.password_hash
    assert claims_of(login("carol", NEW_USER_PASSWORD))["tid"] == "tenant-a"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "carol"}, 400),
        ({"username": "carol", "password": "short"}, 400),
        ({"username": "mc_sneaky", "password": "long-enough-1"}, 400),
        ({"username": "carol", "password": "long-enough-1", "roles": ["root"]}, 400),
        ({"username": "carol", "password": "long-enough-1", "roles": "admin"}, 400),
        ({"username": "carol", "password": "long-enough-1", "tenant_id": "tenant-b"}, 400),
        ({"username": "bob", "password": "long-enough-1"}, 409),
        (["carol"], 400),
    ],
    ids=repr,
)
def test_a_bad_new_user_is_refused_with_a_fixed_message(admins: Stack, body: Any, status: int) -> None:
    response = call(admin_event("POST", "/api/v1/admin/users", ada_token(), body=body))
    problem = assert_problem(response, status)
    assert "long-enough-1" not in response["body"] and "sneaky" not in problem["detail"]
    assert current_runtime().table.get_user("carol") is None


def test_an_admin_lists_only_its_tenants_users_without_hashes(admins: Stack) -> None:
    response = call(admin_event("GET", "/api/v1/admin/users", ada_token()))
    users = body_of(response)["users"]
    assert [user["username"] for user in users] == ["ada", "alice"]
    assert {user["roles"][0] for user in users} == {USER}
    assert "argon2" not in response["body"] and "password" not in response["body"]


def test_disabling_a_user_stops_logins_and_revokes_its_tokens_and_enabling_restores_logins(
    admins: Stack,
) -> None:
    alice_token = login("alice", "alice-local-demo")
    token = ada_token()
    response = call(
        admin_event(
            "POST", "/api/v1/admin/users/{username}/disable", token, path_parameters={"username": "alice"}
        )
    )
    assert response["statusCode"] == 200 and body_of(response)["status"] == "disabled"
    current_runtime().tenants.clear()  # the mapping TTL passing
    assert predict_status(alice_token) == 401
    response = call(
        admin_event(
            "POST", "/api/v1/admin/users/{username}/enable", token, path_parameters={"username": "alice"}
        )
    )
    assert body_of(response)["status"] == "active"
    # A login works again; tokens from the second of the disable or before stay refused
    login("alice", "alice-local-demo")
    later = current_runtime().tokens.issue("alice", "tenant-a", now=int(time.time()) + 2).access_token
    assert predict_status(alice_token) == 401 and predict_status(later) == 200


def test_setting_roles_makes_an_admin_and_a_demotion_revokes_the_admins_tokens(admins: Stack) -> None:
    token = ada_token()
    event = admin_event(
        "PUT",
        "/api/v1/admin/users/{username}/roles",
        token,
        path_parameters={"username": "alice"},
        body={"roles": [USER, ADMIN]},
    )
    assert body_of(call(event))["roles"] == [USER, ADMIN]
    alice_admin = login("alice", "alice-local-demo")
    assert call(admin_event("GET", "/api/v1/admin/users", alice_admin))["statusCode"] == 200
    # When ada takes admin away again
    event["body"] = json.dumps({"roles": [USER]})
    event["requestContext"]["requestId"] = uuid.uuid4().hex
    assert body_of(call(event))["roles"] == [USER]
    current_runtime().tenants.clear()
    # Then alice's admin token no longer works anywhere, and a new one is a user's: 403
    assert_problem(call(admin_event("GET", "/api/v1/admin/users", alice_admin)), 401)
    assert claims_of(login("alice", "alice-local-demo"))["roles"] == [USER]
    later = current_runtime().tokens.issue("alice", "tenant-a", now=int(time.time()) + 2).access_token
    assert_problem(call(admin_event("GET", "/api/v1/admin/users", later)), 403)


def test_the_last_admin_can_be_neither_disabled_nor_demoted(admins: Stack) -> None:
    # Given ada, tenant-a's only admin
    token = ada_token()
    disable = admin_event(
        "POST", "/api/v1/admin/users/{username}/disable", token, path_parameters={"username": "ada"}
    )
    demote = admin_event(
        "PUT",
        "/api/v1/admin/users/{username}/roles",
        token,
        path_parameters={"username": "ada"},
        body={"roles": [USER]},
    )
    # Then neither disabling nor demoting her is done: 409
    for event in (disable, demote):
        assert_problem(call(event), 409)
    ada = current_runtime().table.get_user("ada")
    assert ada is not None and ada.active and ADMIN in ada.roles
    # And the operator's CLI keeps the same rule
    assert inferctl(["disable-user", "ada"], stdout=io.StringIO()) == 1
    # Given a second admin, a disabled one does not count, an active one does
    accounts.create_user(current_runtime(), "ann", "ann-password-1", "tenant-a", (USER, ADMIN))
    accounts.set_user_status(current_runtime(), "ann", active=False)
    assert_problem(call(disable), 409)
    accounts.set_user_status(current_runtime(), "ann", active=True)
    assert call(demote)["statusCode"] == 200


# --- machine clients ------------------------------------------------------------------------------


def test_an_admin_creates_clients_whose_secret_is_shown_once_with_the_scopes_asked_for(admins: Stack) -> None:
    token = ada_token()
    plain = call(admin_event("POST", "/api/v1/admin/clients", token))
    admin_scoped = call(admin_event("POST", "/api/v1/admin/clients", token, body={"roles": [ADMIN]}))
    assert plain["statusCode"] == admin_scoped["statusCode"] == 201
    plain_body, admin_body = body_of(plain), body_of(admin_scoped)
    assert plain_body["roles"] == [USER] and admin_body["roles"] == [ADMIN]
    # The secret is not stored, not listed; the client's token carries its scopes
    listing = call(admin_event("GET", "/api/v1/admin/clients", token))
    assert plain_body["client_secret"] not in listing["body"]
    assert {c["client_id"] for c in body_of(listing)["clients"]} == {
        plain_body["client_id"],
        admin_body["client_id"],
    }
    issued = client_login(admin_body["client_id"], admin_body["client_secret"])
    assert claims_of(json.loads(issued["body"])["access_token"])["roles"] == [ADMIN]
    issued = client_login(plain_body["client_id"], plain_body["client_secret"])
    assert claims_of(json.loads(issued["body"])["access_token"])["roles"] == [USER]


def test_a_revoked_client_gets_no_token_and_its_tokens_stop(admins: Stack) -> None:
    token = ada_token()
    created = body_of(call(admin_event("POST", "/api/v1/admin/clients", token)))
    client_token = json.loads(client_login(created["client_id"], created["client_secret"])["body"])[
        "access_token"
    ]
    response = call(
        admin_event(
            "POST",
            "/api/v1/admin/clients/{client_id}/revoke",
            token,
            path_parameters={"client_id": created["client_id"]},
        )
    )
    assert body_of(response) == {"client_id": created["client_id"], "status": "revoked"}
    current_runtime().tenants.clear()
    assert predict_status(client_token) == 401
    assert client_login(created["client_id"], created["client_secret"])["statusCode"] == 401


# --- tenant isolation: tenant-a's admin never reaches tenant-b ------------------------------------


def tenant_b_state(stack: Stack) -> str:
    """Everything of tenant-b in both tables, as one comparable text."""
    runtime = current_runtime()
    items = runtime.dynamodb.scan(TableName=stack.table_name)["Items"]
    of_b = [item for item in items if "tenant-b" in json.dumps(item) or "bob" in json.dumps(item)]
    audit_b = [item for item in audit_items(stack) if item["pk"]["S"] == "audit#tenant-b"]
    return json.dumps(
        sorted(of_b + audit_b, key=lambda item: json.dumps(item, sort_keys=True)), sort_keys=True
    )


def readable(body: str) -> str:
    """An answer without an upload form's policy and signature (base64 and hex: they could hold
    any short text by chance)."""
    document = json.loads(body)
    if isinstance(document, dict) and isinstance(document.get("fields"), dict):
        fields = document["fields"]
        document["fields"] = {k: v for k, v in fields.items() if k not in ("policy", "x-amz-signature")}
    return json.dumps(document)


def test_an_admin_of_tenant_a_never_sees_or_changes_tenant_b_whatever_ids_it_sends(admins: Stack) -> None:
    # Given tenant-b's user bob, its admin berit, a client of tenant-b, two model versions of
    # tenant-b, an upload of tenant-b, and some audit of tenant-b
    runtime = current_runtime()
    b_client = accounts.create_client(runtime, "tenant-b")
    b_first = admins.tenant("tenant-b").model_sha256
    publish_variant("tenant-b")
    b_upload, _ = uploads.start(runtime, "tenant-b", "berit", "onnx", allow_interface_change=False)
    berit = login("berit", BOB_ADMIN_PASSWORD)
    call(admin_event("GET", "/api/v1/admin/users", berit))
    before = tenant_b_state(admins)
    token = ada_token()
    b_ids = ("bob", "berit", b_client.client_id, "tenant-b", b_first[:12], b_upload.upload_id)
    hostile_query = {"tenant_id": "tenant-b", "tenant": "tenant-b", "username": "bob", "limit": "100"}
    hostile_headers = {"X-Tenant-Id": "tenant-b"}
    # When ada calls every admin route with tenant-b's ids in the path, the query, the body and headers
    for method, resource in admin_routes():
        for username, client_id in (("bob", b_client.client_id), ("berit", b_client.client_id)):
            request = route_requests(username, client_id, b_first[:12], b_upload.upload_id)[
                (method, resource)
            ]
            body = request.get("body")
            if isinstance(body, dict):
                body = body | {"tenant_id": "tenant-b"}
            for variant in (request, request | {"body": body}):
                event = admin_event(
                    method,
                    resource,
                    token,
                    query=hostile_query,
                    headers=hostile_headers,
                    **{k: v for k, v in variant.items() if k != "query"},
                )
                response = call(event)
                # Then no answer names anything of tenant-b
                assert not any(value in readable(response["body"]) for value in b_ids), (
                    method,
                    resource,
                    response["body"],
                )
                assert response["statusCode"] in (200, 201, 400, 404), (method, resource, response["body"])
    # And nothing of tenant-b changed: its users, clients, mapping and audit trail are as they were
    assert tenant_b_state(admins) == before
    bob = runtime.table.get_user("bob")
    assert bob is not None and bob.active and bob.tenant_id == "tenant-b"


def test_an_admin_cannot_disable_another_tenants_user_even_knowing_its_name(admins: Stack) -> None:
    response = call(
        admin_event(
            "POST", "/api/v1/admin/users/{username}/disable", ada_token(), path_parameters={"username": "bob"}
        )
    )
    missing = call(
        admin_event(
            "POST",
            "/api/v1/admin/users/{username}/disable",
            ada_token(),
            path_parameters={"username": "nobody"},
        )
    )
    # The same 404 as for a user that does not exist: tenant-b's users are not even confirmed
    assert assert_problem(response, 404) == assert_problem(missing, 404)
    bob = current_runtime().table.get_user("bob")
    assert bob is not None and bob.active


def test_the_conditional_write_refuses_another_tenants_account_even_past_the_read(admins: Stack) -> None:
    # The table's own condition is the last line: a write naming tenant-a never touches bob
    from model_runtime.table import ItemMissing  # noqa: PLC0415

    bob_before = current_runtime().table.get_user("bob")
    assert bob_before is not None and bob_before.tenant_id == "tenant-b"
    with pytest.raises(ItemMissing):
        current_runtime().table.set_user_status("bob", "disabled", tenant_id="tenant-a")
    with pytest.raises(ItemMissing):
        current_runtime().table.set_user_roles("bob", (ADMIN,), tenant_id="tenant-a")
    assert current_runtime().table.get_user("bob") == bob_before


# --- the audit trail ------------------------------------------------------------------------------


@pytest.fixture
def function_logs() -> Iterator[io.StringIO]:
    """What the admin and login functions log (Powertools writes to the stdout it found at import)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(admin_app.logger.registered_formatter)
    for module in (admin_app, login_app):
        module.logger.addHandler(handler)
    yield stream
    for module in (admin_app, login_app):
        module.logger.removeHandler(handler)


def test_the_audit_trail_has_every_action_and_no_secret(
    admins: Stack,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    function_logs: io.StringIO,
) -> None:
    caplog.set_level(logging.DEBUG)  # botocore's too: the requests it sends
    token = ada_token()
    # Given ada doing one of every admin action, through the API
    created = body_of(
        call(
            admin_event(
                "POST",
                "/api/v1/admin/users",
                token,
                body={"username": "carol", "password": NEW_USER_PASSWORD},
            )
        )
    )
    client = body_of(call(admin_event("POST", "/api/v1/admin/clients", token)))
    for method, resource in admin_routes():
        call(
            admin_event(
                method, resource, token, **route_requests("carol", client["client_id"])[(method, resource)]
            )
        )
    # And a refused one (a user's 403), and the operator acting through the CLI
    call(admin_event("GET", "/api/v1/admin/users", login("alice", "alice-local-demo")))
    stdin = io.StringIO(BOB_ADMIN_PASSWORD + "\n")
    assert (
        inferctl(
            ["create-user", "dave", "--tenant", "tenant-a", "--password-stdin"],
            stdin=stdin,
            stdout=io.StringIO(),
        )
        == 0
    )
    out = io.StringIO()
    assert inferctl(["create-client", "tenant-a", "--json", "--role", "admin"], stdout=out) == 0
    cli_secret = json.loads(out.getvalue())["client_secret"]
    # When ada reads the trail
    page = body_of(call(admin_event("GET", "/api/v1/admin/audit", token, query={"limit": "100"})))
    entries = page["entries"]
    # Then every action is there, with who, how, where, target and outcome
    api_actions = {(e["action"], e["outcome"]) for e in entries if e["via"] == "api"}
    assert {
        (name, "ok")
        for name in (
            "user.create",
            "user.list",
            "user.disable",
            "user.enable",
            "user.set-roles",
            "client.create",
            "client.list",
            "client.revoke",
            "audit.read",
        )
    } <= api_actions
    assert ("user.list", "denied") in api_actions
    assert {e["action"] for e in entries if e["via"] == "cli"} >= {"user.create", "client.create"}
    ada_creates = [e for e in entries if e["action"] == "user.create" and e["via"] == "api"]
    assert ada_creates[-1]["actor"] == "ada" and ada_creates[-1]["target"] == created["username"]
    assert ada_creates[-1]["source"] == "198.51.100.7"
    # The operator's AWS principal is the operator's to read (the CLI), not the tenant's
    cli_entry = next(e for e in entries if e["via"] == "cli")
    assert cli_entry["actor"] == "operator" and cli_entry["source"] == "inferctl"
    out = io.StringIO()
    assert inferctl(["audit", "--tenant", "tenant-a", "--json"], stdout=out) == 0
    assert any(e["via"] == "cli" and e["actor"].startswith("arn:aws:") for e in json.loads(out.getvalue()))
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)  # newest first
    # And no audit item, response or log line holds a password, a secret or a token
    secrets = [
        ADA_PASSWORD,
        NEW_USER_PASSWORD,
        BOB_ADMIN_PASSWORD,
        client["client_secret"],
        cli_secret,
        token,
    ]
    items = json.dumps(audit_items(admins))
    logs = caplog.text + "".join(capsys.readouterr()) + function_logs.getvalue()
    assert '"admin action"' in logs and "user.create" in logs  # the admin log lines are in what is searched
    for secret in secrets:
        assert secret not in items
        assert secret not in logs
    # And every item expires (the TTL attribute), a bounded time from now
    assert all("expires_at" in item for item in audit_items(admins))


def test_the_audit_trail_pages_with_a_cursor_and_refuses_a_forged_one(admins: Stack) -> None:
    token = ada_token()
    for _ in range(3):
        call(admin_event("GET", "/api/v1/admin/users", token))
    first = body_of(call(admin_event("GET", "/api/v1/admin/audit", token, query={"limit": "2"})))
    assert len(first["entries"]) == 2 and first["next_cursor"]
    second = body_of(
        call(
            admin_event(
                "GET", "/api/v1/admin/audit", token, query={"limit": "2", "cursor": first["next_cursor"]}
            )
        )
    )
    assert {e["id"] for e in second["entries"]}.isdisjoint({e["id"] for e in first["entries"]})
    for bad in ({"cursor": "audit#tenant-b"}, {"limit": "0"}, {"limit": "1000"}, {"limit": "x"}):
        assert_problem(call(admin_event("GET", "/api/v1/admin/audit", token, query=bad)), 400)


def test_tenant_b_s_admin_reads_none_of_tenant_a_s_audit(admins: Stack) -> None:
    call(admin_event("GET", "/api/v1/admin/users", ada_token()))
    entries = body_of(call(admin_event("GET", "/api/v1/admin/audit", login("berit", BOB_ADMIN_PASSWORD))))[
        "entries"
    ]
    assert entries == [] or all(e["actor"] != "ada" for e in entries)


def test_operators_read_a_tenants_trail_with_the_cli(admins: Stack) -> None:
    call(admin_event("GET", "/api/v1/admin/users", ada_token()))
    out = io.StringIO()
    assert inferctl(["audit", "--tenant", "tenant-a", "--json"], stdout=out) == 0
    entries = json.loads(out.getvalue())
    assert any(e["actor"] == "ada" and e["action"] == "user.list" for e in entries)
    out = io.StringIO()
    assert inferctl(["audit", "--tenant", "tenant-b"], stdout=out) == 0
    assert "ada" not in out.getvalue()


# --- the operator's CLI -------------------------------------------------------------------------


def test_create_user_with_the_admin_role_and_set_roles_from_the_cli(admins: Stack) -> None:
    stdin = io.StringIO("erin-password-1\n")
    assert (
        inferctl(
            ["create-user", "erin", "--tenant", "tenant-a", "--role", "admin", "--password-stdin"],
            stdin=stdin,
            stdout=io.StringIO(),
        )
        == 0
    )
    assert claims_of(login("erin", "erin-password-1"))["roles"] == [ADMIN]
    assert inferctl(["set-roles", "erin", "user"], stdout=io.StringIO()) == 0
    assert claims_of(login("erin", "erin-password-1"))["roles"] == [USER]
    with pytest.raises(SystemExit):  # argparse refuses an unknown role before anything runs
        inferctl(["set-roles", "erin", "root"], stdout=io.StringIO())


def test_create_tenant_creates_the_tenants_first_admin(stack: Stack) -> None:
    stdin = io.StringIO("zed-password-1\n")
    model = str(REPO_ROOT / "models" / "model_user_a.pkl")
    argv = [
        "create-tenant",
        "tenant-c",
        "--model",
        model,
        "--trust-pickle",
        "--admin",
        "zed",
        "--password-stdin",
    ]
    out = io.StringIO()
    assert inferctl(argv, stdin=stdin, stdout=out) == 0
    assert "first admin" in out.getvalue() and "zed-password-1" not in out.getvalue()
    token = login("zed", "zed-password-1")
    assert claims_of(token)["roles"] == [USER, ADMIN] and claims_of(token)["tid"] == "tenant-c"
    assert call(admin_event("GET", "/api/v1/admin/users", token))["statusCode"] == 200


def test_a_cli_command_whose_audit_write_fails_is_done_and_says_so_in_one_line(
    admins: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an activity table that is not there
    monkeypatch.setenv("ACTIVITY_TABLE_NAME", "no-such-table")
    # When the operator creates a client
    out = io.StringIO()
    assert inferctl(["create-client", "tenant-a", "--json"], stdout=out) == 0
    # Then the client exists (the secret was shown), and one warning line says the trail missed it
    assert current_runtime().table.get_client(json.loads(out.getvalue())["client_id"]) is not None
    err = capsys.readouterr().err
    assert (
        err.strip()
        == "warning: client.create was not recorded in the audit trail (ResourceNotFoundException)"
    )


def test_without_an_activity_table_the_cli_acts_and_notes_it_was_not_recorded(
    admins: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACTIVITY_TABLE_NAME")
    assert inferctl(["revoke-tokens", "tenant-a"], stdout=io.StringIO()) == 0
    assert "not recorded in the audit trail" in capsys.readouterr().err
    assert audit_items(admins) == []


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ada and ann, tenant-a's two admins
    runtime = current_runtime()
    accounts.create_user(runtime, "ann", "ann-password-1", "tenant-a", (USER, ADMIN))
    found_before = accounts._other_admins

    def ann_demoted_meanwhile(runtime_: Any, user: Any) -> list[str]:
        others = found_before(runtime_, user)  # ada's request sees ann as an admin...
        runtime.table.set_user_roles("ann", (USER,))  # ...and ann's own demotion lands first
        return others

    monkeypatch.setattr(accounts, "_other_admins", ann_demoted_meanwhile)
    # When ada's demotion is written after ann's
    with pytest.raises(accounts.LastAdmin):
        accounts.set_user_roles(runtime, "ada", [USER], tenant_id="tenant-a")
    # Then the transaction saw it: ada is still an admin, and the tenant still has one
    ada = runtime.table.get_user("ada")
    assert ada is not None and ADMIN in ada.roles and ada.active
