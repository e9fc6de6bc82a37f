"""The tenant-admin API under attack, over HTTP (OWASP API1 and API5:2023: object- and
function-level authorization).

Every admin route is taken from openapi.json, so a route added there is attacked here too: a
plain user's token gets 403 on each, a token whose `roles` claim was edited or forged never gets
past 401, and a tenant admin naming another tenant's users, clients or tenant id (path, query,
body, headers) reaches nothing of that tenant.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.attack.kit import Account, Api, Caller, Operator
from tests.forge import Attacker, b64url_json, fresh_claims, parts
from tests.support import REPO_ROOT

pytestmark = pytest.mark.blackbox

ADMIN_PREFIX = "/api/v1/admin/"
NOT_ADMIN = "This route needs the tenant's admin role."


def admin_operations() -> list[tuple[str, str]]:
    document = json.loads((REPO_ROOT / "openapi.json").read_text())
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith(ADMIN_PREFIX)
        for method in item
    )


def concrete(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def body_for(method: str) -> dict[str, Any] | None:
    return {"roles": ["user"]} if method in ("PUT", "POST") else None


def test_the_suite_attacks_every_admin_route() -> None:
    assert len(admin_operations()) >= 9


@pytest.mark.parametrize(("method", "path"), admin_operations())
def test_a_plain_users_token_gets_the_fixed_403_on_every_admin_route(
    api: Api, caller_a: Caller, method: str, path: str
) -> None:
    # Given tenant 1's user, whose token carries the role `user` only
    # When it calls an admin route, naming itself as the target
    reply = api.request(
        method, concrete(path, caller_a.account.username), body_for(method), token=caller_a.token
    )
    # Then a 403 with the one fixed body of every admin route
    assert reply.status == 403, reply.body[:300]
    assert reply.json()["detail"] == NOT_ADMIN


@pytest.mark.parametrize(("method", "path"), admin_operations())
def test_an_edited_or_forged_roles_claim_never_gets_past_401(
    api: Api, caller_a: Caller, attacker: Attacker, method: str, path: str
) -> None:
    header, claims, _ = parts(caller_a.token)
    escalated = claims | {"roles": ["user", "admin"]}
    # Given the user's own signature over claims it edited, or claims signed by its own key
    edited = f"{b64url_json(header)}.{b64url_json(escalated)}.{caller_a.token.split('.')[2]}"
    forged = attacker.sign(header | {"kid": attacker.kid}, fresh_claims(escalated))
    for token in (edited, forged):
        reply = api.request(method, concrete(path, caller_a.account.username), body_for(method), token=token)
        # Then neither is a token at all
        assert reply.status == 401, reply.body[:300]


@pytest.mark.local_only
def test_a_genuinely_signed_token_with_an_unknown_role_is_refused(
    api: Api, caller_a: Caller, operator: Operator
) -> None:
    header, claims, _ = parts(caller_a.token)
    for roles in (["root"], "admin", [], ["admin", "admin"]):
        token = operator.sign(header, fresh_claims(claims, roles=roles))
        assert api.request("GET", "/api/v1/admin/users", token=token).status == 401
        assert api.request("GET", "/api/v1/model", token=token).status == 401


@pytest.mark.local_only
def test_a_tenant_admin_reaches_nothing_of_another_tenant_whatever_ids_it_sends(
    api: Api, caller_a: Caller, caller_b: Caller, operator: Operator
) -> None:
    # Given tenant 1's admin, and tenant 2's user name and tenant id
    admin: Account = operator.provisioned.tenant_admin
    token = api.login(admin)
    other_user, other_tenant = caller_b.account.username, caller_b.claims["tid"]
    assert api.request("GET", "/api/v1/admin/users", token=token).status == 200
    hostile_query = f"?tenant_id={other_tenant}&tenant={other_tenant}&username={other_user}"
    # When it acts on tenant 2's user, with tenant 2's id in the query, the body and a header
    for method, path in admin_operations():
        if "{" not in path:
            continue
        for body in (body_for(method), {"roles": ["user"], "tenant_id": other_tenant}):
            reply = api.request(
                method,
                concrete(path, other_user) + hostile_query,
                body,
                token=token,
                headers={"X-Tenant-Id": other_tenant},
            )
            # Then that user is as unknown as one that does not exist (or the body is refused)
            assert reply.status in (400, 404), (method, path, reply.status, reply.body[:300])
            assert other_user not in reply.body.decode()
    # And nothing listed names tenant 2's user or id
    for path in ("/api/v1/admin/users", "/api/v1/admin/clients"):
        text = api.request("GET", path + hostile_query, token=token).body.decode()
        assert other_user not in text and other_tenant not in text
    # And the admin's own trail records those attempts as refused, and never tenant 2's id
    audit = api.request("GET", "/api/v1/admin/audit?limit=100", token=token)
    assert other_tenant not in audit.body.decode()
    attempts = [e for e in audit.json()["entries"] if e["target"] == other_user]
    assert attempts and {e["outcome"] for e in attempts} <= {"not-found", "invalid"}
    # And tenant 2's user is still served
    assert api.request("GET", "/api/v1/model", token=api.login(caller_b.account)).status == 200
