"""Machine clients (OAuth2 client credentials, RFC 6749 4.4) and the token endpoint's RFC 6749 5.2
errors: the login handler invoked with events against moto, and through a real OAuth client
library (authlib's `OAuth2Session`), whose HTTP calls a `requests` transport adapter hands to
the handler in-process (no socket is opened in these tests).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from model_runtime import table
from model_runtime.access import reserve_login_attempt
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from functions.login import app as login_app
from functions.predict import app as predict_app
from inferctl.cli import main as inferctl
from inferctl.onboarding import set_tenant_status
from tests.support import (
    FakeLambdaContext,
    Stack,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    response_header,
)

TOKEN_URL = "https://api.example/api/v1/auth/token"
LOCKOUT_THRESHOLD = 5


# --- helpers ---------------------------------------------------------------------------------


def create_client(tenant_id: str = "tenant-a") -> tuple[str, str]:
    out = io.StringIO()
    assert inferctl(["create-client", tenant_id, "--json"], stdout=out) == 0
    created = json.loads(out.getvalue())
    assert set(created) == {"client_id", "client_secret"}
    return created["client_id"], created["client_secret"]


def basic(client_id: str, client_secret: str) -> str:
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def token_event(body: str, authorization: str | None = None) -> dict[str, Any]:
    event = load_event("login_form_body")
    event["body"] = body
    if authorization is not None:
        event["headers"]["Authorization"] = authorization
        event["multiValueHeaders"]["Authorization"] = [authorization]
    return event


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = login_app.lambda_handler(event, FakeLambdaContext())
    assert_security_headers(response)
    return response


def client_token(client_id: str, client_secret: str) -> dict[str, Any]:
    """`events/token_client_credentials.json` with this client's HTTP Basic credentials."""
    encoded = basic(client_id, client_secret).removeprefix("Basic ")
    return invoke(load_event("token_client_credentials", client_basic=encoded))


@pytest.fixture
def machine(demo: Stack) -> tuple[str, str]:
    """A machine client of tenant-a: (client_id, client_secret)."""
    return create_client("tenant-a")


# --- issuing ---------------------------------------------------------------------------------


def test_create_client_stores_only_a_digest_of_a_high_entropy_secret(demo: Stack) -> None:
    # Given an operator who creates a machine client for tenant-a
    client_id, client_secret = create_client("tenant-a")
    # Then the secret is long and random (256 bits, URL-safe base64) and never stored as such
    assert len(client_secret) >= 43
    assert client_secret != create_client("tenant-a")[1]
    items = current_runtime().dynamodb.scan(TableName=demo.table_name)["Items"]
    assert client_secret not in json.dumps(items)
    stored = current_runtime().table.get_client(client_id)
    assert stored is not None and stored.tenant_id == "tenant-a" and stored.active
    assert len(stored.secret_sha256) == 64


def test_create_client_without_json_prints_id_and_secret_once(demo: Stack) -> None:
    out = io.StringIO()
    assert inferctl(["create-client", "tenant-b"], stdout=out) == 0
    text = out.getvalue()
    assert "client_id:" in text and "client_secret:" in text and "not shown again" in text


def test_create_client_for_an_unknown_tenant_is_refused(
    demo: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inferctl(["create-client", "tenant-zz"], stdout=io.StringIO()) == 1
    assert "unknown tenant" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["basic", "form"])
def test_client_credentials_issue_a_token_of_the_clients_tenant(machine: tuple[str, str], how: str) -> None:
    # Given a client authenticating with HTTP Basic (RFC 6749 2.3.1) or with form fields
    client_id, client_secret = machine
    if how == "basic":
        event = token_event("grant_type=client_credentials", basic(client_id, client_secret))
    else:
        event = token_event(
            f"grant_type=client_credentials&client_id={client_id}&client_secret={client_secret}"
        )
    # When it asks for a token
    response = invoke(event)
    # Then it gets the same kind of token as a user: sub is the client id, tid its tenant
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert set(body) == {"access_token", "token_type", "expires_in"} and body["token_type"] == "Bearer"
    claims = current_runtime().tokens.verify(body["access_token"])
    assert claims.subject == client_id and claims.tenant_id == "tenant-a"


# --- refusals: one invalid_client for every bad client ---------------------------------------


def assert_invalid_client(response: dict[str, Any]) -> None:
    assert_problem(response, 401, oauth_error="invalid_client")
    assert response_header(response, "WWW-Authenticate") == 'Basic realm="inference"'


def test_wrong_secret_unknown_and_revoked_clients_get_one_answer(
    machine: tuple[str, str], demo: Stack
) -> None:
    client_id, client_secret = machine
    wrong_secret = client_token(client_id, client_secret + "x")
    unknown = client_token("mc_" + "0" * 24, client_secret)
    revoked_id, revoked_secret = create_client("tenant-b")
    assert inferctl(["revoke-client", revoked_id], stdout=io.StringIO()) == 0
    revoked = client_token(revoked_id, revoked_secret)
    for response in (wrong_secret, unknown, revoked):
        assert_invalid_client(response)
        assert response["body"] == wrong_secret["body"]
        assert client_secret not in response["body"] and client_id not in response["body"]


def test_a_disabled_tenants_client_is_refused(machine: tuple[str, str]) -> None:
    client_id, client_secret = machine
    set_tenant_status(current_runtime(), "tenant-a", active=False)
    assert_invalid_client(client_token(client_id, client_secret))


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode()],
    ids=["none", "bearer", "bad-base64", "no-colon"],
)
def test_missing_or_malformed_client_authentication_is_invalid_client(
    demo: Stack, authorization: str | None
) -> None:
    assert_invalid_client(invoke(token_event("grant_type=client_credentials", authorization)))


def test_two_client_authentication_methods_at_once_are_invalid_request(machine: tuple[str, str]) -> None:
    client_id, client_secret = machine
    event = token_event(
        f"grant_type=client_credentials&client_secret={client_secret}", basic(client_id, client_secret)
    )
    assert_problem(invoke(event), 400, oauth_error="invalid_request")


@pytest.mark.parametrize(
    "grant", ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
)
def test_unknown_grant_is_unsupported_grant_type(demo: Stack, grant: str) -> None:
    problem = assert_problem(
        invoke(token_event(f"grant_type={grant}")), 400, oauth_error="unsupported_grant_type"
    )
    assert grant not in json.dumps(problem)


def test_unknown_form_field_in_client_credentials_is_invalid_request(machine: tuple[str, str]) -> None:
    client_id, client_secret = machine
    event = token_event("grant_type=client_credentials&tenant_id=tenant-b", basic(client_id, client_secret))
    assert_problem(invoke(event), 400, oauth_error="invalid_request")


# --- lockout ---------------------------------------------------------------------------------


def test_client_authentication_locks_out_like_logins(machine: tuple[str, str]) -> None:
    # Given as many wrong secrets for a client as the threshold allows
    client_id, client_secret = machine
    for _ in range(LOCKOUT_THRESHOLD):
        assert client_token(client_id, "wrong-secret")["statusCode"] == 401
    # When it then sends its right secret
    response = client_token(client_id, client_secret)
    # Then it must wait: 429 with Retry-After, still an invalid_client for OAuth clients
    assert_problem(response, 429, oauth_error="invalid_client")
    retry_after = response_header(response, "Retry-After")
    assert retry_after is not None and 1 <= int(retry_after) <= current_runtime().settings.lockout_seconds
    # And the counter lives in the client namespace, so a username cannot be locked through it
    assert table.attempts_pk(table.client_subject(client_id)) == f"attempts#client:{client_id}"


def test_success_clears_the_clients_failures(machine: tuple[str, str]) -> None:
    client_id, client_secret = machine
    for _ in range(LOCKOUT_THRESHOLD - 1):
        client_token(client_id, "wrong-secret")
    assert client_token(client_id, client_secret)["statusCode"] == 200
    for _ in range(LOCKOUT_THRESHOLD - 1):
        client_token(client_id, "wrong-secret")
    assert client_token(client_id, client_secret)["statusCode"] == 200


def test_reserve_login_attempt_counts_before_the_check_and_restarts_after_the_window(demo: Stack) -> None:
    now = 1_800_000_000
    seconds = current_runtime().settings.lockout_seconds
    # Given the threshold of reserved attempts, each allowed
    assert [reserve_login_attempt(current_runtime(), "client:x", now) for _ in range(LOCKOUT_THRESHOLD)] == [
        0
    ] * 5
    # Then the next one waits for the rest of the window
    assert reserve_login_attempt(current_runtime(), "client:x", now + 10) == seconds - 10
    # And once the window has passed (the counter not yet deleted by TTL), counting restarts
    assert reserve_login_attempt(current_runtime(), "client:x", now + seconds) == 0
    assert reserve_login_attempt(current_runtime(), "client:x", now + seconds + 1) == 0


def test_the_lockout_decision_is_made_by_conditional_writes_not_by_a_read(
    demo: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given every read of the counter answering "no counter": what a check-then-write design sees
    # when parallel attempts all read before any of them writes
    monkeypatch.setattr(current_runtime().table, "get_attempts", lambda *_, **__: None)
    now = 1_800_000_000
    # When more attempts than the threshold arrive
    waits = [
        reserve_login_attempt(current_runtime(), "client:raced", now) for _ in range(LOCKOUT_THRESHOLD + 2)
    ]
    # Then only the threshold goes ahead: the conditional UpdateItem / PutItem refuse the rest
    assert waits[:LOCKOUT_THRESHOLD] == [0] * LOCKOUT_THRESHOLD
    assert all(wait > 0 for wait in waits[LOCKOUT_THRESHOLD:])


# --- a real OAuth client library ---------------------------------------------------------------


class LoginAdapter(BaseAdapter):
    """A `requests` transport that hands each request to the login handler as API Gateway would."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        super().__init__()
        self.handler = handler

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        event = load_event("login_form_body")
        headers = {name: value for name, value in request.headers.items()}
        path = urlsplit(request.url or "").path
        event.update(
            httpMethod=request.method,
            path=path,
            resource=path,
            headers=headers,
            multiValueHeaders={name: [value] for name, value in headers.items()},
            body=request.body.decode() if isinstance(request.body, bytes) else request.body,
            isBase64Encoded=False,
        )
        result = self.handler(event, FakeLambdaContext())
        response = requests.Response()
        response.status_code = result["statusCode"]
        response.headers = CaseInsensitiveDict(result["headers"])
        response._content = result["body"].encode()
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def oauth_session(**kwargs: Any) -> OAuth2Session:
    session = OAuth2Session(**kwargs)
    session.mount("https://", LoginAdapter(login_app.lambda_handler))
    return session


def test_authlib_gets_a_client_credentials_token(machine: tuple[str, str]) -> None:
    client_id, client_secret = machine
    session = oauth_session(
        client_id=client_id, client_secret=client_secret, token_endpoint_auth_method="client_secret_basic"
    )
    token = session.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert current_runtime().tokens.verify(token["access_token"]).tenant_id == "tenant-a"


def test_authlib_gets_a_password_token(demo: Stack) -> None:
    token = oauth_session().fetch_token(TOKEN_URL, username="alice", password="alice-local-demo")
    assert current_runtime().tokens.verify(token["access_token"]).subject == "alice"


def lock_out(username: str) -> None:
    for _ in range(LOCKOUT_THRESHOLD):
        invoke(token_event(f"grant_type=password&username={username}&password=wrong-guess"))


TOKEN_ERRORS: dict[str, tuple[Callable[[tuple[str, str]], OAuth2Session], dict[str, str], str]] = {
    # case: (session for the machine client, fetch_token arguments, the error authlib must raise)
    "password-wrong": (
        lambda m: oauth_session(),
        {"username": "alice", "password": "nope-nope"},
        "invalid_grant",
    ),
    "password-unknown-user": (
        lambda m: oauth_session(),
        {"username": "mallory", "password": "nope-nope"},
        "invalid_grant",
    ),
    "password-locked-out": (
        lambda m: oauth_session(),
        {"username": "locked", "password": "x"},
        "invalid_grant",
    ),
    "password-malformed": (
        lambda m: oauth_session(),
        {"username": "bad user name", "password": "x"},
        "invalid_request",
    ),
    "client-wrong-secret": (
        lambda m: oauth_session(client_id=m[0], client_secret="wrong-secret"),
        {"grant_type": "client_credentials"},
        "invalid_client",
    ),
    "client-unknown": (
        lambda m: oauth_session(client_id="mc_" + "f" * 24, client_secret=m[1]),
        {"grant_type": "client_credentials"},
        "invalid_client",
    ),
    "client-secret-post-wrong": (
        lambda m: oauth_session(
            client_id=m[0], client_secret="wrong-secret", token_endpoint_auth_method="client_secret_post"
        ),
        {"grant_type": "client_credentials"},
        "invalid_client",
    ),
    "client-no-authentication": (
        lambda m: oauth_session(client_id=m[0], token_endpoint_auth_method="none"),
        {"grant_type": "client_credentials"},
        "invalid_client",
    ),
    "unknown-grant": (
        lambda m: oauth_session(client_id=m[0], client_secret=m[1]),
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"},
        "unsupported_grant_type",
    ),
    "unsupported-grant": (
        lambda m: oauth_session(client_id=m[0], client_secret=m[1]),
        {"grant_type": "refresh_token", "refresh_token": "x"},
        "unsupported_grant_type",
    ),
}


@pytest.mark.parametrize("case", sorted(TOKEN_ERRORS))
def test_authlib_raises_on_every_token_endpoint_error(machine: tuple[str, str], case: str) -> None:
    # Given a token request the endpoint refuses
    make_session, arguments, expected = TOKEN_ERRORS[case]
    if case == "password-locked-out":
        lock_out("locked")
    # When a real OAuth client library asks for the token
    with pytest.raises(OAuthError) as raised:
        make_session(machine).fetch_token(TOKEN_URL, **arguments)
    # Then it raises, with the RFC 6749 5.2 code, instead of storing the error as a token
    assert raised.value.error == expected


def test_revoking_a_client_cuts_its_issued_tokens(
    machine: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a machine client's token, issued a few seconds ago and served by predict
    client_id, client_secret = machine
    token = json.loads(client_token(client_id, client_secret)["body"])["access_token"]
    event = load_event("predict_alice", alice_token=token)
    assert predict_app.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200
    # When the operator revokes the client, and the mapping TTL passes (the cached mapping expires)
    assert inferctl(["revoke-client", client_id], stdout=io.StringIO()) == 0
    current_runtime().tenants.clear()
    # Then predict refuses the token it still holds
    response = predict_app.lambda_handler(event, FakeLambdaContext())
    assert_problem(response, 401)
    assert response_header(response, "WWW-Authenticate") == 'Bearer realm="inference"'
