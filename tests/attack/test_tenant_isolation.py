"""Tenant isolation (OWASP API1:2023, broken object level authorization).

The model that answers is chosen by the verified token alone. A tenant id, model id or user name
anywhere else in the request (body, query, path, headers) never reaches another tenant's model:
the body refuses unknown fields, the query and headers are ignored, and no route takes a tenant
in its path. Tenant 2's id is read from its own token's `tid` claim, so the suite works on any
deployment without knowing its tenant names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.attack.kit import RUNNING_STACK_URL, Api, Caller, Operator

pytestmark = pytest.mark.blackbox

PREDICT = "/api/v1/predict"
MODEL = "/api/v1/model"


def predict(api: Api, who: Caller, body: Any, **kwargs: Any) -> Any:
    return api.request("POST", PREDICT, body, token=who.token, **kwargs)


def assert_answered_by_own_model(reply: Any, who: Caller, rows: int = 1) -> None:
    assert reply.status == 200, reply.body[:300]
    body = reply.json()
    assert body["model_version"] == who.card["version"]
    assert len(body["predictions"]) == rows


def test_each_token_is_answered_by_its_own_tenants_model(
    api: Api, caller_a: Caller, caller_b: Caller
) -> None:
    # Given two tenants' users, each with rows that fit their own model
    # When each predicts
    # Then each is answered by its own model version
    assert_answered_by_own_model(predict(api, caller_a, {"instances": caller_a.rows(2)}), caller_a, 2)
    assert_answered_by_own_model(predict(api, caller_b, {"instances": caller_b.rows(2)}), caller_b, 2)
    assert caller_a.claims["tid"] != caller_b.claims["tid"], "SMOKE users must belong to two tenants"


@pytest.mark.parametrize(
    "field", ["tenant_id", "tenant", "tid", "model_id", "model", "model_version", "user"]
)
def test_tenant_or_model_in_the_body_is_refused(
    api: Api, caller_a: Caller, caller_b: Caller, field: str
) -> None:
    # Given alice's rows plus a field naming bob's tenant (or model)
    value = caller_b.card["version"] if field.startswith("model") else caller_b.claims["tid"]
    reply = predict(api, caller_a, {"instances": caller_a.rows(), field: value})
    # Then the body is refused outright: 'instances' is the only field
    assert reply.status == 400


def test_tenant_or_model_in_the_query_is_ignored(api: Api, caller_a: Caller, caller_b: Caller) -> None:
    # Given alice's token and a query naming bob's tenant, model and user
    tid, version, user = caller_b.claims["tid"], caller_b.card["version"], caller_b.account.username
    query = f"tenant_id={tid}&tenant={tid}&tid={tid}&model_id={version}&model={version}&sub={user}"
    # Then alice's own model answers, and her own card is served
    reply = api.request("POST", f"{PREDICT}?{query}", {"instances": caller_a.rows()}, token=caller_a.token)
    assert_answered_by_own_model(reply, caller_a)
    card = api.request("GET", f"{MODEL}?{query}", token=caller_a.token)
    assert card.status == 200 and card.json() == caller_a.card


@pytest.mark.parametrize(
    "suffix",
    ["/{tid}", "/{tid}/", "/../../{tid}/predict", "/models/{tid}", "%2F{tid}"],
)
@pytest.mark.parametrize("route", [("POST", PREDICT), ("GET", MODEL)])
def test_tenant_in_the_path_is_not_a_route(
    api: Api, caller_a: Caller, caller_b: Caller, route: tuple[str, str], suffix: str
) -> None:
    # Given alice's token on a path that names bob's tenant
    method, path = route
    body = {"instances": caller_a.rows()} if method == "POST" else None
    reply = api.request(method, path + suffix.format(tid=caller_b.claims["tid"]), body, token=caller_a.token)
    # Then no function answers: the gateway's "no such route" (404, the template's
    # MISSING_AUTHENTICATION_TOKEN response, on AWS and `make serve`'s gateway alike;
    # `sam local start-api` keeps API Gateway's raw 403)
    assert reply.status == (403 if RUNNING_STACK_URL else 404), reply.body[:200]
    assert b"predictions" not in reply.body and b"n_features" not in reply.body


# {tid}, {user} and {version} are tenant 2's. X-Amz-Tenant-Id, the header Lambda's tenant isolation
# reads, has a test of its own (below): `sam local start-api` answers it with its own 400.
SPOOFING_HEADERS: dict[str, dict[str, str]] = {
    "x-tenant-id": {"X-Tenant-Id": "{tid}"},
    "x-model-id": {"X-Model-Id": "{version}"},
    "x-forwarded-user": {"X-Forwarded-User": "{user}"},
    "x-amzn-oidc-identity": {"X-Amzn-Oidc-Identity": "{user}"},
    "x-amzn-tenant-id": {"X-Amzn-Tenant-Id": "{tid}"},
    "x-amzn-requestcontext": {"X-Amzn-RequestContext": '{{"authorizer":{{"tenant_id":"{tid}"}}}}'},
    "x-user": {"X-User": "{user}", "X-Remote-User": "{user}"},
    "forwarded": {"Forwarded": "for=127.0.0.1;by={tid}", "X-Forwarded-For": "127.0.0.1"},
    "x-original-url": {"X-Original-URL": "/api/v1/predict/{tid}", "X-Rewrite-URL": "/api/v1/predict/{tid}"},
}


@pytest.mark.parametrize("case", list(SPOOFING_HEADERS))
def test_identity_headers_do_not_choose_the_model(
    api: Api, caller_a: Caller, caller_b: Caller, case: str
) -> None:
    # Given alice's token and headers naming bob, his tenant or his model
    other = {
        "tid": caller_b.claims["tid"],
        "user": caller_b.account.username,
        "version": caller_b.card["version"],
    }
    headers = {name: value.format(**other) for name, value in SPOOFING_HEADERS[case].items()}
    # Then alice's own model answers, and her own card is served
    reply = predict(api, caller_a, {"instances": caller_a.rows()}, headers=headers)
    assert_answered_by_own_model(reply, caller_a)
    card = api.request("GET", MODEL, token=caller_a.token, headers=headers)
    assert card.status == 200 and card.json() == caller_a.card


def test_rows_shaped_for_the_other_tenants_model_are_refused(
    api: Api, caller_a: Caller, caller_b: Caller
) -> None:
    # Given alice's token and rows shaped for bob's model
    reply = predict(api, caller_a, {"instances": caller_a.rows(2, width=caller_b.card["n_features"])})
    # Then alice's model card decides: a different width is a 400 before any model runs
    if caller_b.card["n_features"] != caller_a.card["n_features"]:
        assert reply.status == 400
    else:  # same width on this deployment: still only alice's model answers
        assert_answered_by_own_model(reply, caller_a, 2)


# --- tenants without an active mapping (needs the operator: local stack only) -----------------


@pytest.fixture(scope="module")
def orphans(api: Api, operator: Operator) -> dict[str, Caller]:
    """Two users with live tokens whose tenants then lose their mapping: one tenant disabled,
    one whose mapping item is deleted outright."""
    provisioned = operator.provisioned
    # Log in first (login reads the mapping itself), then take the mappings away. Predict must not
    # see these tenants before that, or its mapping cache (MAPPING_TTL_SECONDS) would keep them.
    iris = {"n_features": 4, "version": ""}  # model_user_a.pkl's card, known without asking predict
    callers = {
        "disabled": Caller(provisioned.disabled_user, api.login(provisioned.disabled_user), iris),
        "unmapped": Caller(provisioned.unmapped_user, api.login(provisioned.unmapped_user), iris),
    }
    table = operator.client("dynamodb")
    # What `inferctl disable-tenant` writes (inferctl.onboarding.set_tenant_status), without a
    # second CLI process and its scikit-learn import.
    table.update_item(
        TableName=operator.env["TABLE_NAME"],
        Key={"pk": {"S": f"tenant#{provisioned.disabled_tenant}"}},
        UpdateExpression="SET #status = :disabled",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":disabled": {"S": "disabled"}},
    )
    table.delete_item(
        TableName=operator.env["TABLE_NAME"], Key={"pk": {"S": f"tenant#{provisioned.unmapped_tenant}"}}
    )
    return callers


@pytest.mark.local_only
def test_disabled_and_unmapped_tenants_get_the_same_403(api: Api, orphans: dict[str, Caller]) -> None:
    # Given valid tokens whose tenants are disabled, or have no mapping at all
    replies = {
        name: (
            predict(api, who, {"instances": who.rows()}),
            api.request("GET", MODEL, token=who.token),
        )
        for name, who in orphans.items()
    }
    # Then every answer is the same 403: nothing tells the two cases apart
    bodies = {reply.body for pair in replies.values() for reply in pair}
    statuses = {reply.status for pair in replies.values() for reply in pair}
    assert statuses == {403}
    assert len(bodies) == 1, bodies


@pytest.mark.parametrize("route", [("POST", PREDICT), ("GET", MODEL)])
def test_a_clients_own_x_amz_tenant_id_header_changes_nothing(
    api: Api, caller_a: Caller, caller_b: Caller, route: tuple[str, str]
) -> None:
    # Given alice's token and the header Lambda's tenant isolation reads, naming bob's tenant
    method, path = route
    body = {"instances": caller_a.rows()} if method == "POST" else None
    claimed = {"X-Amz-Tenant-Id": caller_b.claims["tid"]}
    reply = api.request(
        method, path, body, token=caller_a.token, headers=claimed, check_headers=not RUNNING_STACK_URL
    )
    if RUNNING_STACK_URL:
        # `sam local start-api` (no TenancyConfig there) answers a client's X-Amz-Tenant-Id with
        # its own 400 before any function runs: nothing of either tenant is reached
        assert reply.status == 400 and b"predictions" not in reply.body and b"n_features" not in reply.body
        return
    # Then alice is answered by her own model, or card: API Gateway names the invocation's tenant
    # from the authorizer's verified tenant alone (template.yaml), and predict checks it is the
    # token's before it reads any mapping or model (decision 0017)
    if method == "POST":
        assert_answered_by_own_model(reply, caller_a)
    else:
        assert reply.status == 200 and reply.json() == caller_a.card
    # And bob, claiming alice's tenant, is answered by his
    reply = api.request(
        "POST", PREDICT, {"instances": caller_b.rows()}, token=caller_b.token,
        headers={"X-Amz-Tenant-Id": caller_a.claims["tid"]},
    )  # fmt: skip
    assert_answered_by_own_model(reply, caller_b)


# Where proxies and frameworks hand a function its caller's context (aws-serverless-express's
# x-apigateway-context/-event, an ALB's OIDC data, Lambda's request context): a client that sends
# them names an authorizer context of its own choosing.
SMUGGLED_CONTEXT_HEADERS = (
    "X-Apigateway-Context",
    "X-Apigateway-Event",
    "X-Amzn-Oidc-Data",
    "X-Amzn-RequestContext",
)


def test_an_authorizer_context_a_client_sends_naming_another_tenant_changes_nothing(
    api: Api, caller_a: Caller, caller_b: Caller
) -> None:
    # Given alice's token, and an authorizer context naming bob's tenant in every header a proxy
    # might read one from, and in the query
    other = caller_b.claims["tid"]
    context = json.dumps({"authorizer": {"tenant_id": other, "principalId": "bob"}, "tenant_id": other})
    headers = dict.fromkeys(SMUGGLED_CONTEXT_HEADERS, context)
    query = f"?requestContext.authorizer.tenant_id={other}&authorizer.tenant_id={other}"
    # When alice predicts and reads her model card with them
    replies = [
        predict(api, caller_a, {"instances": caller_a.rows()}, headers=headers),
        api.request("POST", PREDICT + query, {"instances": caller_a.rows()}, token=caller_a.token),
        api.request("GET", MODEL, None, token=caller_a.token, headers=headers),
    ]
    # Then only the context API Gateway writes counts: alice's own model answers, her card shows
    for reply in replies[:2]:
        assert_answered_by_own_model(reply, caller_a)
    assert replies[2].status == 200 and replies[2].json() == caller_a.card
    # And inside the body, the context is an unknown field: refused outright
    smuggled_body = {"instances": caller_a.rows(), "requestContext": {"authorizer": {"tenant_id": other}}}
    assert predict(api, caller_a, smuggled_body).status == 400
