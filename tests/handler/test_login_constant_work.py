"""Login does the same work whatever is wrong, and the decoys guard nothing.

- An item without a password hash or secret digest (read as "") is compared against the decoy,
  like an unknown user, and never matches, not even the decoy's own phrase.
- The tenant is read on every path, so a right password on a disabled account costs the same
  DynamoDB reads as a wrong one: timing does not tell a correct guess.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from model_runtime import oauth, passwords, table
from model_runtime.passwords import hash_password

from functions.login import app as login_app
from inferctl.onboarding import set_tenant_status, set_user_status
from tests.support import FakeLambdaContext, Stack, current_runtime, load_event

DECOY_CLIENT_SECRET = "no client has this secret"  # the phrase oauth._DECOY_DIGEST is the hash of


def password_login(username: str, password: str) -> dict[str, Any]:
    event = load_event("login_success")
    event["body"] = json.dumps({"username": username, "password": password})
    response: dict[str, Any] = login_app.lambda_handler(event, FakeLambdaContext())
    return response


def client_login(client_id: str, client_secret: str) -> dict[str, Any]:
    event = load_event("login_success")
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    event["headers"] = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"Basic {basic}",
    }
    event["multiValueHeaders"] = {key: [value] for key, value in event["headers"].items()}
    event["body"] = "grant_type=client_credentials"
    response: dict[str, Any] = login_app.lambda_handler(event, FakeLambdaContext())
    return response


def remove_attribute(stack: Stack, pk: str, attribute: str) -> None:
    current_runtime().dynamodb.update_item(
        TableName=stack.table_name,
        Key={"pk": {"S": pk}},
        UpdateExpression="REMOVE #a",
        ExpressionAttributeNames={"#a": attribute},
    )


# --- an empty stored secret ----------------------------------------------------------------------


def test_an_empty_stored_secret_never_matches_the_decoy() -> None:
    # The decoy digest is of a phrase written in the source: an empty stored digest must not
    # fall back to it and then count as a match
    assert oauth.verify_client_secret(oauth._DECOY_DIGEST, DECOY_CLIENT_SECRET)  # the decoy's phrase
    assert not oauth.verify_client_secret("", DECOY_CLIENT_SECRET)
    assert not oauth.verify_client_secret(None, DECOY_CLIENT_SECRET)


def test_an_empty_stored_password_hash_never_matches_the_decoy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a decoy hash whose phrase is known (the real one's phrase is a throwaway)
    monkeypatch.setattr(passwords, "_DECOY_HASH", hash_password("decoy phrase"))
    # Then an empty stored hash does not match it, nor does a missing one
    assert not passwords.verify_password("", "decoy phrase")
    assert not passwords.verify_password(None, "decoy phrase")
    assert passwords.verify_password(hash_password("decoy phrase"), "decoy phrase")


def test_a_client_item_without_a_digest_is_refused_for_the_decoy_phrase(demo: Stack) -> None:
    # Given a machine client whose item lost its secret digest (read as "")
    client_id = oauth.new_client_id()
    current_runtime().table.create_client(table.Client(client_id, "tenant-a", "unused", table.ACTIVE, 0))
    remove_attribute(demo, table.client_pk(client_id), "secret_sha256")
    # When someone authenticates as it with the decoy's phrase / Then it is refused
    response = client_login(client_id, DECOY_CLIENT_SECRET)
    assert response["statusCode"] == 401, response["body"]
    assert "access_token" not in response["body"]


def test_a_user_item_without_a_hash_is_refused_for_the_decoy_phrase(
    demo: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given alice's item lost its password hash, and a decoy whose phrase is known
    monkeypatch.setattr(passwords, "_DECOY_HASH", hash_password("decoy phrase"))
    remove_attribute(demo, table.user_pk("alice"), "password_hash")
    # When someone logs in as alice with the decoy's phrase / Then it is refused
    response = password_login("alice", "decoy phrase")
    assert response["statusCode"] == 401, response["body"]


# --- the same reads on every path ----------------------------------------------------------------


@pytest.fixture
def get_items(demo: Stack) -> list[str]:
    """The key of every DynamoDB GetItem the login function makes."""
    keys: list[str] = []
    current_runtime().dynamodb.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda params, **_: keys.append(params["Key"]["pk"]["S"])
    )
    return keys


def reads(keys: list[str], attempt: Any) -> int:
    keys.clear()
    attempt()
    return len(keys)


def test_a_right_password_on_a_disabled_account_costs_the_reads_of_a_wrong_one(
    demo: Stack, get_items: list[str]
) -> None:
    # Given alice's tenant is disabled, then bob's user is disabled
    set_tenant_status(current_runtime(), "tenant-a", active=False)
    set_user_status(current_runtime(), "bob", active=False)
    # When the right and a wrong password are tried on each, and an unknown user too
    right_a = reads(get_items, lambda: password_login("alice", "alice-local-demo"))
    wrong_a = reads(get_items, lambda: password_login("alice", "wrong-guess"))
    right_b = reads(get_items, lambda: password_login("bob", "bob-local-demo"))
    wrong_b = reads(get_items, lambda: password_login("bob", "wrong-guess"))
    unknown = reads(get_items, lambda: password_login("nobody", "wrong-guess"))
    # Then every attempt made the same number of reads, the tenant's among them
    assert right_a == wrong_a == right_b == wrong_b == unknown
    assert any(key.startswith(table.TENANT_PREFIX) for key in get_items)


def test_a_right_secret_of_a_disabled_tenants_client_costs_the_reads_of_a_wrong_one(
    demo: Stack, get_items: list[str]
) -> None:
    # Given a machine client of a tenant that is then disabled
    secret = oauth.new_client_secret()
    client_id = oauth.new_client_id()
    digest = oauth.client_secret_digest(secret)
    current_runtime().table.create_client(table.Client(client_id, "tenant-a", digest, table.ACTIVE, 0))
    set_tenant_status(current_runtime(), "tenant-a", active=False)
    # When its right and a wrong secret are tried, and an unknown client / Then the reads are equal
    right = reads(get_items, lambda: client_login(client_id, secret))
    wrong = reads(get_items, lambda: client_login(client_id, "wrong-secret"))
    unknown = reads(get_items, lambda: client_login(oauth.new_client_id(), "wrong-secret"))
    assert right == wrong == unknown
