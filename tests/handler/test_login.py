"""Login function acceptance: `events/` files through `lambda_handler`, AWS in moto.

Every response in this file goes through `invoke`, which also checks the README's six security
headers, so each case proves the headers on its own status code too.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import argon2
import boto3
import jwt
import pytest
from botocore.exceptions import ClientError
from model_runtime import table
from moto.dynamodb.models import DynamoDBBackend
from samcli.yamlhelper import yaml_parse

from functions.login import app as login_app
from tests.support import (
    TEMPLATE,
    FakeLambdaContext,
    Stack,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    response_header,
    use_runtime,
)

ALICE_PASSWORD = "alice-local-demo"
ISSUER, AUDIENCE = "urn:inference:login", "urn:inference:api"  # the template's defaults
TOKEN_TTL_SECONDS = 900
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 900
MAX_LOGIN_BODY_BYTES = 256 * 1024
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


# --- helpers and fixtures --------------------------------------------------------------------


def invoke(event: dict[str, Any], context: FakeLambdaContext) -> dict[str, Any]:
    """Call the login handler as API Gateway does; every response must carry the security headers."""
    response: dict[str, Any] = login_app.lambda_handler(event, context)
    assert_security_headers(response)
    return response


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def login_event(
    body: str, content_type: str = "application/json", *, base64_body: bool = False
) -> dict[str, Any]:
    """The token route's event from `events/`, with another body."""
    event = load_event("login_success")
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]
    event["body"] = b64(body.encode()) if base64_body else body
    event["isBase64Encoded"] = base64_body
    return event


def login(context: FakeLambdaContext, username: str, password: str) -> dict[str, Any]:
    return invoke(login_event(json.dumps({"username": username, "password": password})), context)


def route_event(method: str, path: str) -> dict[str, Any]:
    event = load_event("jwks")
    event.update(httpMethod=method, path=path, resource=path)
    event["requestContext"].update(httpMethod=method, resourcePath=path, path=f"/live{path}")
    return event


def attempts_item(username: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        current_runtime()
        .dynamodb.get_item(
            TableName=current_runtime().settings.table_name,
            Key={"pk": {"S": table.attempts_pk(username)}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return item


def argon2_parameters(encoded_hash: str) -> str:
    """`$argon2id$v=19$m=19456,t=2,p=1` of an encoded hash: what decides the work it costs."""
    return "$".join(encoded_hash.split("$")[:4])


@pytest.fixture
def argon2_calls(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The encoded hash of every argon2 verification the test makes, in order.

    Patched on the class, so it sees the calls whichever `PasswordHasher` instance makes them.
    Depends on `demo` so that onboarding's own hashing is not counted.
    """
    calls: list[str] = []
    real_verify = argon2.PasswordHasher.verify
    real_hash = argon2.PasswordHasher.hash

    def verify(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.append(hash if isinstance(hash, str) else hash.decode())
        return real_verify(self, hash, password)

    def hash_(self: argon2.PasswordHasher, password: str | bytes, *, salt: bytes | None = None) -> str:
        calls.append("hash")
        return real_hash(self, password, salt=salt)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    monkeypatch.setattr(argon2.PasswordHasher, "hash", hash_)
    return calls


@pytest.fixture
def dynamodb_calls(demo: Stack) -> list[str]:
    """Every DynamoDB operation the code under test makes, by name."""
    calls: list[str] = []
    current_runtime().dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    return calls


@dataclass
class Clock:
    now: float

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The login module's clock, and only its clock: botocore and moto keep real time."""
    fake = Clock(float(int(time.time())))
    monkeypatch.setattr(login_app, "time", fake)
    return fake


def verify_with_jwks(access_token: str, context: FakeLambdaContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a token the way a relying party would: the key comes from the JWKS endpoint by `kid`."""
    jwks = invoke(load_event("jwks"), context)
    assert jwks["statusCode"] == 200
    header = jwt.get_unverified_header(access_token)
    keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(json.loads(jwks["body"])).keys}
    claims = jwt.decode(
        access_token,
        keys[header["kid"]].key,
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["iss", "aud", "sub", "tid", "iat", "exp", "jti"], "strict_aud": True},
    )
    return header, claims


# --- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event_name", ["login_success", "login_form_body", "login_base64_body"])
def test_login_returns_token_verifiable_with_jwks(
    demo: Stack, context: FakeLambdaContext, event_name: str
) -> None:
    # Given alice's right password as JSON, as an OAuth2 form, or as a base64-encoded JSON body
    event = load_event(event_name)
    before = int(time.time())
    # When she logs in
    response = invoke(event, context)
    after = int(time.time())
    # Then she gets exactly the token response
    assert response["statusCode"] == 200
    assert response_header(response, "Content-Type") == "application/json"
    body = json.loads(response["body"])
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == TOKEN_TTL_SECONDS
    # And the token verifies with the JWKS key its kid names, RS256 pinned, our iss and aud
    header, claims = verify_with_jwks(body["access_token"], context)
    assert header["alg"] == "RS256"
    assert isinstance(header["kid"], str) and header["kid"]
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["sub"] == "alice"
    assert claims["tid"] == "tenant-a"
    for name in ("iat", "exp"):
        assert type(claims[name]) is int
    assert before <= claims["iat"] <= after
    assert claims["exp"] - claims["iat"] == TOKEN_TTL_SECONDS
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16


def test_each_token_has_its_own_jti(demo: Stack, context: FakeLambdaContext) -> None:
    # Given two logins by the same user
    first = json.loads(invoke(load_event("login_success"), context)["body"])["access_token"]
    second = json.loads(invoke(load_event("login_success"), context)["body"])["access_token"]
    # When their claims are read
    jtis = {verify_with_jwks(token, context)[1]["jti"] for token in (first, second)}
    # Then the ids differ, so a token can be told apart (and revoked) on its own
    assert len(jtis) == 2


def test_token_ttl_comes_from_settings(
    demo: Stack, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator who set TokenTtlSeconds to 120
    monkeypatch.setenv("TOKEN_TTL_SECONDS", "120")
    use_runtime()
    # When alice logs in
    body = json.loads(invoke(load_event("login_success"), context)["body"])
    # Then both the response and the token say 120 seconds
    _, claims = verify_with_jwks(body["access_token"], context)
    assert body["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120


# --- one answer for every bad credential -----------------------------------------------------


def test_wrong_password_and_unknown_user_are_indistinguishable(
    demo: Stack, context: FakeLambdaContext, argon2_calls: list[str]
) -> None:
    # Given a wrong password for a real user, and a password for a user that does not exist
    # When both try to log in
    wrong_password = invoke(load_event("login_wrong_password"), context)
    unknown_user = invoke(load_event("login_unknown_user"), context)
    # Then both get a 401 problem, byte for byte and header for header the same
    assert_problem(wrong_password, 401, oauth_error="invalid_grant")
    assert wrong_password["body"] == unknown_user["body"]
    assert wrong_password == unknown_user
    assert "alice" not in wrong_password["body"] and "mallory" not in unknown_user["body"]
    # And, as every 401 must (RFC 9110 15.5.2), each carries a challenge
    assert response_header(wrong_password, "WWW-Authenticate") == 'Basic realm="inference", charset="UTF-8"'
    # And both paths ran one argon2 verification with the same cost parameters: the unknown
    # user's against a decoy hash, so the time taken does not reveal which usernames exist
    alice = current_runtime().table.get_user("alice")
    assert alice is not None
    assert len(argon2_calls) == 2
    assert argon2_calls[0] == alice.password_hash
    assert argon2_calls[1] not in ("hash", alice.password_hash)
    assert argon2_parameters(argon2_calls[1]) == argon2_parameters(alice.password_hash)


@pytest.mark.parametrize("pk", ["user#alice", "tenant#tenant-a"])
def test_disabled_user_or_tenant_gets_the_wrong_password_answer(
    demo: Stack, context: FakeLambdaContext, argon2_calls: list[str], pk: str
) -> None:
    # Given the answer to a wrong password, then alice's user or tenant item disabled by an operator
    wrong_password = invoke(load_event("login_wrong_password"), context)
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=demo.table_name,
        Key={"pk": {"S": pk}},
        UpdateExpression="SET #s = :disabled",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":disabled": {"S": "disabled"}},
    )
    # When alice logs in with her right password
    response = invoke(load_event("login_success"), context)
    # Then she gets exactly the wrong-password 401, after the same hash work
    assert response["statusCode"] == 401
    assert response["body"] == wrong_password["body"]
    assert response == wrong_password
    assert len(argon2_calls) == 2


# --- lockout ---------------------------------------------------------------------------------


def assert_locked_out(response: dict[str, Any], max_wait: int = LOCKOUT_SECONDS) -> int:
    """A 429 problem with a Retry-After of 1..max_wait seconds; returns the wait."""
    problem = assert_problem(response, 429, oauth_error="invalid_grant")
    retry_after = response_header(response, "Retry-After")
    assert retry_after is not None and retry_after.isdigit()
    assert 1 <= int(retry_after) <= max_wait
    assert "alice" not in response["body"] and "mallory" not in response["body"]
    assert problem["title"] == "Too Many Requests"
    return int(retry_after)


def test_defaults_match_the_template_parameters() -> None:
    # Given no lockout, TTL, issuer or audience settings in the environment
    settings = current_runtime().settings
    parameters = yaml_parse(TEMPLATE.read_text())["Parameters"]
    # Then the defaults are the template's, and the ones the rest of this file relies on
    assert settings.lockout_threshold == parameters["LockoutThreshold"]["Default"] == LOCKOUT_THRESHOLD
    assert settings.lockout_seconds == parameters["LockoutSeconds"]["Default"] == LOCKOUT_SECONDS
    assert settings.token_ttl_seconds == parameters["TokenTtlSeconds"]["Default"] == TOKEN_TTL_SECONDS
    assert settings.token_issuer == parameters["TokenIssuer"]["Default"] == ISSUER
    assert settings.token_audience == parameters["TokenAudience"]["Default"] == AUDIENCE


def test_lockout_refuses_even_the_right_password(
    demo: Stack, context: FakeLambdaContext, argon2_calls: list[str]
) -> None:
    # Given as many wrong passwords for alice as the threshold allows, each a 401
    for _ in range(LOCKOUT_THRESHOLD):
        assert login(context, "alice", "wrong-guess")["statusCode"] == 401
    # When she then sends her right password
    response = login(context, "alice", ALICE_PASSWORD)
    # Then she is told to wait, with a problem body and a Retry-After
    assert_locked_out(response)
    # And a locked account costs no hash work, so lockout also sheds argon2 load
    assert len(argon2_calls) == LOCKOUT_THRESHOLD


def test_lockout_applies_to_unknown_usernames_identically(
    demo: Stack, context: FakeLambdaContext, clock: Clock
) -> None:
    # Given the threshold of failures for a real user and for a username that does not exist
    for username in ("alice", "mallory"):
        for _ in range(LOCKOUT_THRESHOLD):
            assert login(context, username, "wrong-guess")["statusCode"] == 401
    # When each tries again (alice with her right password) at the same moment
    alice = login(context, "alice", ALICE_PASSWORD)
    mallory = login(context, "mallory", "another-guess")
    # Then both are locked out with the same answer, so lockout does not reveal real usernames
    assert_locked_out(alice)
    assert alice == mallory


def test_success_resets_the_failure_count(demo: Stack, context: FakeLambdaContext) -> None:
    # Given one failure short of the threshold, then a successful login
    for _ in range(LOCKOUT_THRESHOLD - 1):
        assert login(context, "alice", "wrong-guess")["statusCode"] == 401
    assert login(context, "alice", ALICE_PASSWORD)["statusCode"] == 200
    # When she again fails one short of the threshold
    statuses = [login(context, "alice", "wrong-guess")["statusCode"] for _ in range(LOCKOUT_THRESHOLD - 1)]
    # Then every failure is still a 401 and her right password still works: the count restarted
    assert statuses == [401] * (LOCKOUT_THRESHOLD - 1)
    assert login(context, "alice", ALICE_PASSWORD)["statusCode"] == 200


def test_lockout_ends_after_the_cool_down(demo: Stack, context: FakeLambdaContext, clock: Clock) -> None:
    # Given alice locked out at time T
    for _ in range(LOCKOUT_THRESHOLD):
        login(context, "alice", "wrong-guess")
    # When 100 seconds pass, Retry-After counts down; one second before the end she is still locked
    clock.now += 100
    assert assert_locked_out(login(context, "alice", ALICE_PASSWORD)) == LOCKOUT_SECONDS - 100
    clock.now += LOCKOUT_SECONDS - 101
    assert assert_locked_out(login(context, "alice", ALICE_PASSWORD)) == 1
    # Then, once the cool-down has passed, her right password works again
    clock.now += 1
    assert login(context, "alice", ALICE_PASSWORD)["statusCode"] == 200


def test_lockout_threshold_and_cool_down_come_from_settings(
    demo: Stack, context: FakeLambdaContext, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator who set LockoutThreshold=2 and LockoutSeconds=60
    monkeypatch.setenv("LOCKOUT_THRESHOLD", "2")
    monkeypatch.setenv("LOCKOUT_SECONDS", "60")
    use_runtime()
    # When bob fails twice
    assert [login(context, "bob", "wrong-guess")["statusCode"] for _ in range(2)] == [401, 401]
    # Then the third attempt is locked for at most 60 seconds, and after 60 seconds it works
    assert_locked_out(login(context, "bob", "bob-local-demo"), max_wait=60)
    clock.now += 60
    assert login(context, "bob", "bob-local-demo")["statusCode"] == 200


def test_expired_counter_restarts_from_one(demo: Stack, context: FakeLambdaContext, clock: Clock) -> None:
    # Given alice locked out, and the cool-down over, but DynamoDB's TTL has not deleted the
    # counter yet (it deletes lazily, up to days late)
    for _ in range(LOCKOUT_THRESHOLD):
        login(context, "alice", "wrong-guess")
    clock.now += LOCKOUT_SECONDS
    stale = attempts_item("alice")
    assert stale is not None and len(stale["attempt_ids"]["SS"]) == LOCKOUT_THRESHOLD
    # When she fails once more
    assert login(context, "alice", "wrong-guess")["statusCode"] == 401
    # Then the counter starts again at 1 with a fresh expiry, instead of growing past the threshold
    item = attempts_item("alice")
    assert item is not None
    assert len(item["attempt_ids"]["SS"]) == 1
    assert item["expires_at"] == {"N": str(int(clock.now) + LOCKOUT_SECONDS)}
    # And her right password is not locked out
    assert login(context, "alice", ALICE_PASSWORD)["statusCode"] == 200


@pytest.fixture
def atomic_moto_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each single-item write atomically; moto in-process does not under threads.

    One lock around each of moto's item operations restores DynamoDB's guarantee, and only it:
    a check in one call and a write in another can still interleave, as on AWS.
    """
    lock = threading.Lock()
    for name in ("get_item", "put_item", "update_item", "delete_item"):
        operation = getattr(DynamoDBBackend, name)

        def atomic(*args: Any, _operation: Callable[..., Any] = operation, **kwargs: Any) -> Any:
            with lock:
                return _operation(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


@pytest.mark.usefixtures("atomic_moto_items")
def test_concurrent_guesses_cannot_pass_the_threshold(
    demo: Stack, context: FakeLambdaContext, argon2_calls: list[str]
) -> None:
    # Given 12 wrong guesses for alice released at once, as from 12 concurrent Lambda containers
    guesses = [f"wrong-guess-{i}" for i in range(12)]
    start = threading.Barrier(len(guesses))

    def attempt(password: str) -> int:
        event = login_event(json.dumps({"username": "alice", "password": password}))
        start.wait()
        # The routes without the per-invocation decorators: Powertools' Metrics flush is per
        # container, which serves one request at a time, and is not made for threads.
        return int(login_app.app.resolve(event)["statusCode"])

    # When they race
    with ThreadPoolExecutor(max_workers=len(guesses)) as pool:
        statuses = list(pool.map(attempt, guesses))
    # Then exactly the threshold of passwords was evaluated, each a 401, and the rest were 429s
    assert len(argon2_calls) == LOCKOUT_THRESHOLD
    assert sorted(statuses) == [401] * LOCKOUT_THRESHOLD + [429] * (len(guesses) - LOCKOUT_THRESHOLD)
    # And her right password, sent next, is locked out without being evaluated
    assert_locked_out(login(context, "alice", ALICE_PASSWORD))
    assert len(argon2_calls) == LOCKOUT_THRESHOLD


# --- bad requests: 400, no echo, no work -----------------------------------------------------


def json_login(username: object, password: object, **extra: object) -> dict[str, Any]:
    return login_event(json.dumps({"username": username, "password": password, **extra}))


def form_login(body: str) -> dict[str, Any]:
    return login_event(body, "application/x-www-form-urlencoded")


BAD_REQUESTS: dict[str, tuple[Callable[[], dict[str, Any]], tuple[str, ...]]] = {
    # name: (event, strings the client sent that must not come back)
    "malformed-json": (lambda: load_event("login_malformed_body"), ("alice",)),
    "text-plain": (lambda: load_event("login_wrong_content_type"), ("alice", ALICE_PASSWORD)),
    "oversized-password": (lambda: load_event("login_oversized_password"), ("alice", "x" * 16)),
    "missing-password": (lambda: load_event("login_missing_field"), ("alice",)),
    "extra-field": (lambda: json_login("alice", "canary-pw", tenant_id="canary-tenant"), ("canary",)),
    "top-level-array": (lambda: login_event('["canary-user", "canary-pw"]'), ("canary",)),
    "deeply-nested": (lambda: login_event("[" * 100_000), ()),
    "invalid-utf8": (
        lambda: {
            **load_event("login_base64_body"),
            "body": b64(b'{"username":"alice","password":"\xed\xb3\xbf"}'),
        },
        ("alice",),
    ),
    "password-lone-surrogate": (lambda: login_event('{"username":"alice","password":"\\ud800"}'), ("alice",)),
    "empty-body": (lambda: login_event(""), ()),
    "password-number": (lambda: json_login("alice", 918273645), ("918273645",)),
    "password-null": (lambda: json_login("canary-user", None), ("canary",)),
    "password-list": (lambda: json_login("alice", ["canary-in-list"]), ("canary",)),
    "password-object": (lambda: json_login("alice", {"canary-key": "canary-value"}), ("canary",)),
    "password-bool": (lambda: json_login("canary-user", True), ("canary",)),
    "password-empty": (lambda: json_login("canary-user", ""), ("canary",)),
    "username-number": (lambda: json_login(918273645, "canary-pw"), ("918273645", "canary")),
    "username-null": (lambda: json_login(None, "canary-pw"), ("canary",)),
    "username-list": (lambda: json_login(["canary-user"], "canary-pw"), ("canary",)),
    "username-object": (lambda: json_login({"canary-key": "x"}, "canary-pw"), ("canary",)),
    "username-injection": (lambda: json_login("canary'; DROP TABLE--", "canary-pw"), ("canary", "DROP")),
    "username-path": (lambda: json_login("../../canary", "canary-pw"), ("canary", "../")),
    "username-nul": (lambda: json_login("canary\u0000x", "canary-pw"), ("canary",)),
    "username-space": (lambda: json_login("canary user", "canary-pw"), ("canary",)),
    "username-markup": (lambda: json_login("canary<script>", "canary-pw"), ("canary", "<script>")),
    "username-leading-dot": (lambda: json_login(".canary", "canary-pw"), ("canary",)),
    "username-empty": (lambda: json_login("", "canary-pw"), ("canary",)),
    "username-65-chars": (lambda: json_login("c" * 65, "canary-pw"), ("c" * 16, "canary")),
    "form-repeated-field": (
        lambda: form_login("grant_type=password&username=alice&username=canary-two&password=canary-pw"),
        ("canary", "alice"),
    ),
    "form-unknown-field": (
        lambda: form_login("grant_type=password&username=alice&password=canary-pw&tenant_id=canary-t"),
        ("canary", "alice"),
    ),
    "form-wrong-grant-type": (
        lambda: form_login("grant_type=canary_grant&username=alice&password=canary-pw"),
        ("canary", "alice"),
    ),
    "form-missing-grant-type": (lambda: form_login("username=alice&password=canary-pw"), ("canary", "alice")),
    "form-malformed": (lambda: form_login("grant_type=password&&username=alice&canary"), ("canary", "alice")),
    "invalid-base64": (
        lambda: {**load_event("login_base64_body"), "body": "canary!!not*base64"},
        ("canary", "not*base64"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_is_400_without_echo_or_work(
    demo: Stack,
    context: FakeLambdaContext,
    argon2_calls: list[str],
    dynamodb_calls: list[str],
    case: str,
) -> None:
    # Given a login request that is not a well-formed username and password
    make_event, sent = BAD_REQUESTS[case]
    # When it reaches the login function
    response = invoke(make_event(), context)
    # Then it is a 400 problem that repeats nothing the client sent, with its RFC 6749 code
    code = "unsupported_grant_type" if case == "form-wrong-grant-type" else "invalid_request"
    assert_problem(response, 400, oauth_error=code)
    for value in sent:
        assert value not in response["body"]
    # And it was refused before any user lookup, lockout counter or argon2 run
    assert argon2_calls == []
    assert dynamodb_calls == []


@pytest.mark.parametrize("base64_body", [False, True])
def test_body_over_256_kib_is_413(
    demo: Stack,
    context: FakeLambdaContext,
    argon2_calls: list[str],
    dynamodb_calls: list[str],
    base64_body: bool,
) -> None:
    # Given a JSON login body one byte over 256 KiB, sent plain or base64-encoded
    envelope = json.dumps({"username": "alice", "password": ""})
    body = json.dumps({"username": "alice", "password": "y" * (MAX_LOGIN_BODY_BYTES + 1 - len(envelope))})
    assert len(body) == MAX_LOGIN_BODY_BYTES + 1
    # When it reaches the login function
    response = invoke(login_event(body, base64_body=base64_body), context)
    # Then it is refused as too large, before parsing, lookup or hashing
    assert_problem(response, 413, oauth_error="invalid_request")
    assert "alice" not in response["body"] and "yyyy" not in response["body"]
    assert argon2_calls == [] and dynamodb_calls == []


def test_body_of_exactly_256_kib_is_parsed(demo: Stack, context: FakeLambdaContext) -> None:
    # Given a JSON login body of exactly 256 KiB (its password far over the length limit)
    envelope = json.dumps({"username": "alice", "password": ""})
    body = json.dumps({"username": "alice", "password": "y" * (MAX_LOGIN_BODY_BYTES - len(envelope))})
    # When it reaches the login function
    response = invoke(login_event(body), context)
    # Then the size cap lets it through and the credential rules refuse it: the cap is 256 KiB
    assert_problem(response, 400, oauth_error="invalid_request")


# --- JWKS ------------------------------------------------------------------------------------


def test_jwks_serves_public_rsa_keys_only(demo: Stack, context: FakeLambdaContext) -> None:
    # Given the deployed signing key
    # When a relying party fetches the JWKS
    response = invoke(load_event("jwks"), context)
    # Then it gets an RFC 7517 JWK Set of RS256 signature keys
    assert response["statusCode"] == 200
    assert response_header(response, "Content-Type") == "application/json"
    document = json.loads(response["body"])
    assert set(document) == {"keys"}
    assert len(document["keys"]) >= 1
    for key in document["keys"]:
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert key["alg"] == "RS256"
        assert isinstance(key["kid"], str) and key["kid"]
        assert isinstance(key["e"], str) and isinstance(key["n"], str)
        modulus = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
        assert len(modulus) * 8 == 2048  # the template's RSA_2048 key
        # And no private key member is ever published
        assert not PRIVATE_JWK_MEMBERS & set(key)
    assert len({key["kid"] for key in document["keys"]}) == len(document["keys"])


# --- logs ------------------------------------------------------------------------------------


def test_logs_never_contain_password_hash_or_token(
    demo: Stack,
    context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the function's log stream captured (Powertools binds sys.stdout when the module is
    # imported, so point its handler at this test's capture)
    monkeypatch.setattr(login_app.logger.registered_handler, "stream", sys.stdout)
    # When alice logs in, fails once, an unknown user fails, and a malformed body is refused
    token = json.loads(invoke(load_event("login_success"), context)["body"])["access_token"]
    invoke(load_event("login_wrong_password"), context)
    invoke(load_event("login_unknown_user"), context)
    invoke(json_login(["alice"], "canary-password"), context)
    captured = capsys.readouterr()
    logs = captured.out + captured.err
    # Then the log lines were written (so this test can see them) ...
    assert '"token issued"' in logs and '"login refused"' in logs
    # ... and none holds a password, the stored hash or any part of the token
    alice = current_runtime().table.get_user("alice")
    assert alice is not None
    secrets = [ALICE_PASSWORD, "wrong-guess", "canary-password", alice.password_hash, token]
    secrets += alice.password_hash.split("$")[-2:]  # salt and digest on their own
    secrets += token.split(".")[1:]  # claims and signature segments
    for secret in secrets:
        assert secret not in logs


# --- routing and dependency faults -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nope"), ("GET", "/api/v1/predict"), ("DELETE", "/nope")]
)
def test_unknown_route_is_404_problem(
    demo: Stack, context: FakeLambdaContext, method: str, path: str
) -> None:
    # Given a request for a route the login function does not serve
    # When it reaches the login function
    response = invoke(route_event(method, path), context)
    # Then it is a 404 problem that does not repeat the path
    assert_problem(response, 404)
    assert path not in response["body"]


def throttled(operation: str, message: str) -> Callable[..., Any]:
    def fail(*_: Any, **__: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": message}}, operation
        )

    return fail


@pytest.mark.parametrize(
    "fault",
    [
        ("dynamodb", "get_item", "login_success"),
        ("kms", "sign", "login_success"),
        ("kms", "get_public_key", "jwks"),
    ],
    ids=lambda fault: f"{fault[0]}.{fault[1]}",
)
def test_aws_fault_is_503_without_resource_names(
    demo: Stack, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch, fault: tuple[str, str, str]
) -> None:
    # Given DynamoDB or KMS failing, with an error message that names the resource
    service, method, event_name = fault
    client = current_runtime().dynamodb if service == "dynamodb" else current_runtime().kms
    message = f"Rate exceeded for {demo.table_name} and {demo.key_id}"
    monkeypatch.setattr(client, method, throttled(method, message))
    # When a login or JWKS request needs it
    response = invoke(load_event(event_name), context)
    # Then the client gets a retryable 503 that names no resource and repeats no AWS error
    assert_problem(response, 503)
    retry_after = response_header(response, "Retry-After")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1
    for leaked in (demo.table_name, demo.key_id, "ProvisionedThroughput", "Rate exceeded", "arn:"):
        assert leaked not in response["body"]
    assert "access_token" not in response["body"]


# --- bodies are UTF-8, and nothing else (RFC 8259 8.1) ---------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-32", "utf-32-be", "utf-8-sig"])
def test_credentials_not_in_plain_utf8_are_400(
    demo: Stack, context: FakeLambdaContext, argon2_calls: list[str], encoding: str
) -> None:
    # Given alice's right credentials as JSON in UTF-16 or UTF-32 (with or without a BOM), or in
    # UTF-8 with a BOM, which json.loads would have detected and read
    body = json.dumps({"username": "alice", "password": ALICE_PASSWORD}).encode(encoding)
    event = login_event("", base64_body=True)
    event["body"] = b64(body)
    # When login answers
    response = invoke(event, context)
    # Then it is refused as invalid JSON, and no password was evaluated
    problem = assert_problem(response, 400, oauth_error="invalid_request")
    assert problem["detail"] == "The request body is not valid JSON."
    assert argon2_calls == []


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_charset_other_than_utf8_is_415(
    demo: Stack, context: FakeLambdaContext, argon2_calls: list[str], content_type: str
) -> None:
    # Given alice's credentials declared as UTF-16
    event = login_event(json.dumps({"username": "alice", "password": ALICE_PASSWORD}))
    event["headers"]["Content-Type"] = f"{content_type}; charset=utf-16"
    # When login answers
    response = invoke(event, context)
    # Then the media type is unsupported, and no password was evaluated
    assert_problem(response, 415, oauth_error="invalid_request")
    assert argon2_calls == []


def test_a_utf8_charset_is_accepted(demo: Stack, context: FakeLambdaContext) -> None:
    # Given alice's credentials declared as UTF-8
    event = login_event(json.dumps({"username": "alice", "password": ALICE_PASSWORD}))
    event["headers"]["Content-Type"] = "application/json; charset=UTF-8"
    # When login answers
    # Then she gets a token
    assert invoke(event, context)["statusCode"] == 200
