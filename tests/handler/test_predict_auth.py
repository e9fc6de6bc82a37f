"""Predict: authentication and tenant isolation, end to end through the handler.

Every test invokes `functions.predict.app.lambda_handler` with an `events/` file against moto. The
claims under test: the model is chosen by the verified token's `tid` alone; any token fault is a
401 with `WWW-Authenticate: Bearer` whatever the body holds; a tenant without an active mapping is a
403 with one body; and every response carries the README's six security headers.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from functools import cache, partial
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from model_runtime import table, tokens, ttl_cache

from functions.predict.app import lambda_handler
from inferctl.onboarding import SUBJECT_CUTOFF_KEPT_SECONDS, create_user, set_user_status
from local.resources import template_resources
from tests.forge import (
    Attacker,
    assemble,
    b64url,
    b64url_json,
    parts,
    public_key_encodings,
    sign_hmac,
    signing_input,
)
from tests.support import (
    MODELS_DIR,
    FakeLambdaContext,
    Stack,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    response_header,
    served_digest,
    token_for,
    use_runtime,
)

MANIFEST = json.loads((MODELS_DIR / "manifest.json").read_text())["models"]
MODEL_FILE = {"tenant-a": "model_user_a.pkl", "tenant-b": "model_user_b.pkl"}

VALID_BODY = load_event("predict_alice")["body"]
# Truncated JSON that also smuggles a tenant: a 400 if it ever got that far.
INVALID_BODY = '{"instances": [[1, 2], "x"], "tenant_id": "tenant-b"'

# Written out, not taken from `tokens.REQUIRED_CLAIMS`: dropping one there must fail a test here.
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "tid", "jti")

DELETE = object()  # a claim or header override that removes the member


# --- helpers: requests, responses, models --------------------------------------------------------


def event_with(name: str, authorization: str | None, body: str | None = None) -> dict[str, Any]:
    """An `events/` file with its Authorization header replaced (or removed) in both header maps."""
    event = load_event(name)
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Authorization", None)
    if authorization is not None:
        event["headers"]["Authorization"] = authorization
        event["multiValueHeaders"]["Authorization"] = [authorization]
    if body is not None:
        event["body"] = body
    return event


def call(event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = lambda_handler(event, FakeLambdaContext())
    assert_security_headers(response)
    return response


def assert_unauthorized(response: dict[str, Any]) -> None:
    assert_problem(response, 401)
    challenge = response_header(response, "WWW-Authenticate")
    assert challenge is not None
    assert challenge.startswith("Bearer")


def ok_body(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response["body"]
    body: dict[str, Any] = json.loads(response["body"])
    assert set(body) == {"predictions", "model_version"}
    return body


@cache
def reference_model(tenant_id: str) -> Any:
    """The committed model the tenant was onboarded with, loaded only after its digest checks out."""
    name = MODEL_FILE[tenant_id]
    data = (MODELS_DIR / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == MANIFEST[name]["sha256"]
    return joblib.load(MODELS_DIR / name)


def expected(tenant_id: str, rows: list[list[float]]) -> dict[str, Any]:
    return {
        "predictions": reference_model(tenant_id).predict(np.asarray(rows, dtype=float)).tolist(),
        "model_version": served_digest(MODEL_FILE[tenant_id])[:12],
    }


def rows_of(event_name: str) -> list[list[float]]:
    rows: list[list[float]] = json.loads(load_event(event_name)["body"])["instances"]
    return rows


def set_tenant_attribute(stack: Stack, tenant_id: str, name: str, value: dict[str, str]) -> None:
    """An operator's change to a tenant's mapping item, straight to DynamoDB."""
    current_runtime().dynamodb.update_item(
        TableName=stack.table_name,
        Key={"pk": {"S": table.tenant_pk(tenant_id)}},
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": name},
        ExpressionAttributeValues={":v": value},
    )


class Clock:
    """Stands in for `time.monotonic` inside `model_runtime.ttl_cache`, so the mapping TTL can pass."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ttl_cache, "time", SimpleNamespace(monotonic=fake))
    return fake


# --- helpers: tokens, honest and forged ----------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims exactly like `Tokens.issue`'s for alice, with members replaced or (DELETE) removed."""
    settings = current_runtime().settings
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": "alice",
        "tid": "tenant-a",
        "iat": now,
        "nbf": now,
        "exp": now + settings.token_ttl_seconds,
        "jti": "0" * 32,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not DELETE}


def our_kid() -> str:
    return current_runtime().tokens.key_kid(current_runtime().settings.signing_key_id)


def header(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": "RS256", "typ": "JWT", "kid": our_kid()}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not DELETE}


def sign(
    claims: dict[str, Any],
    header: dict[str, Any],
    key_id: str | None = None,
    algorithm: str = "RSASSA_PKCS1_V1_5_SHA_256",
) -> str:
    """A JWS signed by a moto KMS key (the stack's own by default): the signature is genuine, so
    only what the test put in the header or claims can make the token fail."""
    signature = current_runtime().kms.sign(
        KeyId=key_id or current_runtime().settings.signing_key_id,
        Message=signing_input(header, claims),
        MessageType="RAW",
        SigningAlgorithm=algorithm,  # type: ignore[arg-type]
    )["Signature"]
    return assemble(header, claims, signature)


@cache
def attacker() -> Attacker:
    return Attacker.generate()


def attacker_jwk() -> dict[str, str]:
    return attacker().public_jwk()


def attacker_sign(header: dict[str, Any]) -> str:
    return attacker().sign(header, claims())


def unsigned(alg: str) -> str:
    return assemble(header(alg=alg), claims())


def hs256_with_public_pem() -> str:
    """Key confusion: HMAC keyed with the bytes of our public key, which any client can fetch."""
    der = current_runtime().kms.get_public_key(KeyId=current_runtime().settings.signing_key_id)["PublicKey"]
    key = serialization.load_der_public_key(der)
    assert isinstance(key, rsa.RSAPublicKey)
    return sign_hmac(header(alg="HS256"), claims(), public_key_encodings(key)["spki-pem"])


def tampered(token: str) -> str:
    """Alice's genuine token with its tenant claim rewritten and the original signature kept."""
    head, _, signature = token.split(".")
    _, document, _ = parts(token)
    document["tid"] = "tenant-b"
    return f"{head}.{b64url_json(document)}.{signature}"


def oversized() -> str:
    """A genuinely signed, otherwise valid token just over the size cap (KMS signs at most 4096 bytes)."""
    padded = claims(pad="")
    room = 4000 - len(signing_input(header(), padded))
    token = sign(claims(pad="x" * (room * 3 // 4)), header())
    assert len(token) > tokens.MAX_TOKEN_CHARS
    return token


def foreign_kms_key() -> str:
    key = template_resources()["SigningKey"]["Properties"]
    return current_runtime().kms.create_key(KeySpec=key["KeySpec"], KeyUsage=key["KeyUsage"])["KeyMetadata"][
        "KeyId"
    ]


def bearer(token: str) -> str:
    return f"Bearer {token}"


def without_claim(name: str, _: str) -> str:
    return bearer(sign(claims(**{name: DELETE}), header()))


# Each case turns alice's genuine token into the Authorization header under test (None: absent).
BAD_AUTHORIZATION: dict[str, Callable[[str], str | None]] = {
    "missing": lambda _: None,
    "empty": lambda _: "",
    "basic-scheme": lambda _: "Basic YWxpY2U6YWxpY2UtbG9jYWwtZGVtbw==",
    "token-scheme": lambda t: f"Token {t}",
    "no-scheme": lambda t: t,
    "bearer-without-token": lambda _: "Bearer ",
    "garbage": lambda _: bearer("garbage"),
    "two-segments": lambda t: bearer(t.rsplit(".", 1)[0]),
    "four-segments": lambda t: bearer(f"{t}.{t.rsplit('.', 1)[1]}"),
    "bad-base64": lambda _: bearer("!!!.@@@.###"),
    "bad-base64-payload": lambda t: bearer(f"{t.split('.')[0]}.%%%%.{t.split('.')[2]}"),
    "header-not-json": lambda t: bearer(f"{b64url(b'not json')}.{t.split('.', 1)[1]}"),
    "expired": lambda _: bearer(token_for("alice", "tenant-a", now=int(time.time()) - 3600)),
    "issued-in-future": lambda _: bearer(token_for("alice", "tenant-a", now=int(time.time()) + 3600)),
    "nbf-in-future": lambda _: bearer(sign(claims(nbf=int(time.time()) + 3600), header())),
    "iat-in-future": lambda _: bearer(sign(claims(iat=int(time.time()) + 3600, nbf=DELETE), header())),
    "wrong-issuer": lambda _: bearer(sign(claims(iss="urn:attacker:login"), header())),
    "wrong-audience": lambda _: bearer(sign(claims(aud="urn:inference:other-api"), header())),
    "audience-list": lambda _: bearer(sign(claims(aud=["urn:inference:api", "urn:other"]), header())),
    "alg-none": lambda _: bearer(unsigned("none")),
    "alg-None": lambda _: bearer(unsigned("None")),
    "alg-NONE": lambda _: bearer(unsigned("NONE")),
    "alg-none-original-signature": lambda t: bearer(unsigned("none") + t.rsplit(".", 1)[1]),
    "alg-missing": lambda _: bearer(sign(claims(), header(alg=DELETE))),
    "hs256-public-key-as-secret": lambda _: bearer(hs256_with_public_pem()),
    # Our own key, a genuine signature, but not the pinned algorithm.
    "rs512-own-key": lambda _: bearer(
        sign(claims(), header(alg="RS512"), algorithm="RSASSA_PKCS1_V1_5_SHA_512")
    ),
    "ps256-own-key": lambda _: bearer(sign(claims(), header(alg="PS256"), algorithm="RSASSA_PSS_SHA_256")),
    "tampered-payload": lambda t: bearer(tampered(t)),
    "signature-stripped": lambda t: bearer(t.rsplit(".", 1)[0] + "."),
    "unknown-kid": lambda _: bearer(sign(claims(), header(kid="2024-rotated-key"))),
    "no-kid": lambda _: bearer(sign(claims(), header(kid=DELETE))),
    "kid-not-a-string": lambda _: bearer(sign(claims(), header(kid=[our_kid()]))),
    "kid-path-traversal": lambda _: bearer(sign(claims(), header(kid="../../../../etc/passwd"))),
    "crit-header": lambda _: bearer(sign(claims(), header(crit=["exp"]))),
    "jku-attacker": lambda _: bearer(
        attacker_sign(header(kid="attacker", jku="https://attacker.example/jwks.json"))
    ),
    "x5u-attacker": lambda _: bearer(
        attacker_sign(header(kid="attacker", x5u="https://attacker.example/cert.pem"))
    ),
    "jwk-attacker": lambda _: bearer(attacker_sign(header(kid="attacker", jwk=attacker_jwk()))),
    "jku-attacker-with-our-kid": lambda _: bearer(
        attacker_sign(header(jku="https://attacker.example/jwks.json", jwk=attacker_jwk()))
    ),
    "another-kms-key-with-our-kid": lambda _: bearer(sign(claims(), header(), key_id=foreign_kms_key())),
    **{f"missing-{name}": partial(without_claim, name) for name in REQUIRED_CLAIMS},
    "sub-number": lambda _: bearer(sign(claims(sub=12345), header())),
    "sub-empty": lambda _: bearer(sign(claims(sub=""), header())),
    "tid-list": lambda _: bearer(sign(claims(tid=["tenant-a"]), header())),
    "tid-number": lambda _: bearer(sign(claims(tid=7), header())),
    "tid-empty": lambda _: bearer(sign(claims(tid=""), header())),
    "exp-string": lambda _: bearer(sign(claims(exp="9999999999"), header())),
    "iat-string": lambda _: bearer(sign(claims(iat=str(int(time.time()))), header())),
    "nbf-bool": lambda _: bearer(sign(claims(nbf=True), header())),
    "oversized": lambda _: bearer(oversized()),
    # Well signed, but claiming a longer life than login ever issues.
    "ten-year-lifetime": lambda _: bearer(sign(claims(exp=int(time.time()) + 10 * 365 * 86400), header())),
    "lifetime-one-second-too-long": lambda _: bearer(sign(claims_living(longest_lifetime() + 1), header())),
}


def longest_lifetime() -> int:
    """The longest `exp - iat` predict accepts: the configured lifetime plus the leeway."""
    settings = current_runtime().settings
    return settings.token_ttl_seconds + settings.token_leeway_seconds


def claims_living(seconds: int) -> dict[str, Any]:
    now = int(time.time())
    return claims(iat=now, nbf=now, exp=now + seconds)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every attempt to resolve or reach a host; a forged `jku`/`x5u` must cause none."""
    attempts: list[Any] = []

    def record(*args: Any, **_: Any) -> Any:
        attempts.append(args)
        raise OSError("network access in a unit test")

    monkeypatch.setattr(socket.socket, "connect", record)
    monkeypatch.setattr(socket, "getaddrinfo", record)
    monkeypatch.setattr(socket, "create_connection", record)
    yield attempts


# --- the right model for the right token ---------------------------------------------------------


def test_forged_token_helper_makes_tokens_the_api_accepts(alice_token: str) -> None:
    # Given a token built by this file's `sign` helper with untouched claims and header
    token = sign(claims(), header())
    # When it is presented
    response = call(event_with("predict_alice", bearer(token)))
    # Then it is accepted: every 401 below is caused by the one thing each case changed
    assert ok_body(response) == expected("tenant-a", rows_of("predict_alice"))


@pytest.mark.parametrize(
    ("event_name", "username", "tenant_id"),
    [("predict_alice", "alice", "tenant-a"), ("predict_bob", "bob", "tenant-b")],
)
def test_each_tenant_gets_its_own_models_predictions(
    demo: Stack, event_name: str, username: str, tenant_id: str
) -> None:
    # Given a token of the tenant and the tenant's sample event
    event = event_with(event_name, bearer(token_for(username, tenant_id)))
    # When it is sent
    body = ok_body(call(event))
    # Then the predictions are the committed model's own on those rows, with its short digest
    assert body == expected(tenant_id, rows_of(event_name))
    assert body["model_version"] == served_digest(MODEL_FILE[tenant_id])[:12]


def test_alternating_tenants_on_one_warm_container_never_mix(
    alice_token: str, bob_token: str, s3_calls: list[str]
) -> None:
    # Given one container (same process, caches kept) serving alice and bob in turn
    alice_rows, bob_rows = rows_of("predict_alice"), rows_of("predict_bob")
    for round_ in range(10):
        # Rows change every round so a response replayed from another round would not match.
        scale = 1 + round_ / 10
        alice_batch = [[v * scale for v in row] for row in alice_rows]
        bob_batch = [[v * scale for v in row] for row in bob_rows]
        # When each sends a batch
        alice = call(event_with("predict_alice", bearer(alice_token), json.dumps({"instances": alice_batch})))
        bob = call(event_with("predict_bob", bearer(bob_token), json.dumps({"instances": bob_batch})))
        # Then each gets exactly its own model's answer and version
        assert ok_body(alice) == expected("tenant-a", alice_batch)
        assert ok_body(bob) == expected("tenant-b", bob_batch)
    # And both models were served from the warm cache after the first fetch each
    assert s3_calls.count("GetObject") == 2
    assert len(current_runtime().models) == 2


@pytest.mark.parametrize(
    ("username", "tenant_id", "event_name"),
    [("bob", "tenant-a", "predict_alice"), ("alice", "tenant-b", "predict_bob")],
)
def test_model_follows_the_tid_claim_not_the_subject(
    demo: Stack, username: str, tenant_id: str, event_name: str
) -> None:
    # Given a correctly signed token whose subject is a user of the *other* tenant
    event = event_with(event_name, bearer(token_for(username, tenant_id)))
    # When it is used
    body = ok_body(call(event))
    # Then the model is the one the `tid` claim maps to
    assert body == expected(tenant_id, rows_of(event_name))


def test_tenant_in_query_and_headers_is_ignored(alice_token: str, s3_calls: list[str]) -> None:
    # Given alice's token, with tenant-b named in the query string, X-Tenant-Id and X-Model-Id
    event = load_event("predict_tenant_in_query_and_headers", alice_token=alice_token)
    assert event["queryStringParameters"]["tenant_id"] == "tenant-b"
    assert event["headers"]["X-Tenant-Id"] == "tenant-b"
    # When it is sent
    body = ok_body(call(event))
    # Then alice's 4-feature model answered, and only alice's model was fetched
    assert body == expected("tenant-a", rows_of("predict_tenant_in_query_and_headers"))
    assert len(rows_of("predict_tenant_in_query_and_headers")[0]) == 4
    assert len(current_runtime().models) == 1
    assert ("tenant-a", served_digest("model_user_a.pkl")) in current_runtime().models


def test_tenant_in_body_is_refused_before_any_model_fetch(alice_token: str, s3_calls: list[str]) -> None:
    # Given alice's token and a body that adds "tenant_id": "tenant-b" to valid instances
    event = load_event("predict_tenant_in_body", alice_token=alice_token)
    # When it is sent
    response = call(event)
    # Then it is a 400 problem and S3 was never asked for a model
    assert_problem(response, 400)
    assert "tenant-b" not in response["body"]
    assert s3_calls == []
    # And the recorder does see fetches: the same token with a clean body loads the model
    ok_body(call(load_event("predict_alice", alice_token=alice_token)))
    assert s3_calls == ["GetObject"]


# --- every bad token is a 401, whatever the body ------------------------------------------------


@pytest.mark.parametrize("body", [VALID_BODY, INVALID_BODY], ids=["valid-body", "invalid-body"])
@pytest.mark.parametrize("case", sorted(BAD_AUTHORIZATION))
def test_bad_token_is_401_whatever_the_body(
    alice_token: str, s3_calls: list[str], connections: list[Any], case: str, body: str
) -> None:
    # Given an Authorization header that is absent, malformed, forged or otherwise not acceptable
    authorization = BAD_AUTHORIZATION[case](alice_token)
    # When it is sent with a valid body and with an invalid one
    response = call(event_with("predict_alice", authorization, body))
    # Then it is a 401 Bearer challenge, no model is fetched, and no URL from a header is followed
    assert_unauthorized(response)
    assert s3_calls == []
    assert connections == []


@pytest.mark.parametrize("body", [VALID_BODY, INVALID_BODY], ids=["valid-body", "invalid-body"])
def test_expired_token_event_is_401(demo: Stack, body: str) -> None:
    # Given the expired-token sample event, carrying a genuine token issued an hour ago
    expired = token_for("alice", "tenant-a", now=int(time.time()) - 3600)
    event = load_event("predict_expired_token", expired_token=expired)
    event["body"] = body
    # When it is sent
    response = call(event)
    # Then it is a 401
    assert_unauthorized(response)


def test_valid_token_still_works_after_every_bad_one(alice_token: str) -> None:
    # Given one container that has just refused every bad token above
    bodies = set()
    for case in sorted(BAD_AUTHORIZATION):
        response = call(event_with("predict_alice", BAD_AUTHORIZATION[case](alice_token), INVALID_BODY))
        assert_unauthorized(response)
        bodies.add(response["body"])
    # When alice sends her genuine token
    response = call(event_with("predict_alice", bearer(alice_token)))
    # Then she is served, and the 401s all had one body: the client learns nothing about which check failed
    assert ok_body(response) == expected("tenant-a", rows_of("predict_alice"))
    assert len(bodies) == 1


def test_a_token_at_the_longest_allowed_lifetime_is_served(demo: Stack) -> None:
    # Given a token whose life is exactly the configured lifetime plus the leeway
    token = sign(claims_living(longest_lifetime()), header())
    # When it is used
    # Then it is served: the bound refuses only longer lives
    ok_body(call(event_with("predict_alice", bearer(token))))


# --- revocation, unknown and disabled tenants ---------------------------------------------------


@pytest.mark.parametrize("expire_cache", ["clear", "ttl"])
def test_tokens_issued_before_tokens_not_before_are_revoked(
    demo: Stack, clock: Clock, expire_cache: str
) -> None:
    # Given a token alice got a few seconds ago, already served once (mapping now cached)
    issued_at = int(time.time()) - 5
    token = token_for("alice", "tenant-a", now=issued_at)
    ok_body(call(event_with("predict_alice", bearer(token))))
    # When the operator revokes the tenant's tokens issued up to now
    set_tenant_attribute(demo, "tenant-a", "tokens_not_before", {"N": str(issued_at + 1)})
    # Then the cached mapping still serves until it expires (documented: changes apply within the TTL)
    ok_body(call(event_with("predict_alice", bearer(token))))
    if expire_cache == "clear":
        current_runtime().tenants.clear()
    else:
        clock.now += current_runtime().settings.mapping_ttl_seconds + 1
    # And after that the old token is a 401
    assert_unauthorized(call(event_with("predict_alice", bearer(token))))
    # And a token issued after the revocation works
    fresh = token_for("alice", "tenant-a", now=issued_at + 1)
    ok_body(call(event_with("predict_alice", bearer(fresh))))


def test_disabling_a_user_cuts_her_tokens_within_the_mapping_ttl(demo: Stack, clock: Clock) -> None:
    # Given alice and carol of tenant-a and bob of tenant-b, each served once (mappings cached),
    # with tokens issued a few seconds ago
    create_user(current_runtime(), "carol", "carol-local-demo", "tenant-a")
    issued_at = int(time.time()) - 5
    alice, carol, bob = (
        token_for(user, tenant, now=issued_at)
        for user, tenant in (("alice", "tenant-a"), ("carol", "tenant-a"), ("bob", "tenant-b"))
    )
    for token, event in ((alice, "predict_alice"), (carol, "predict_alice"), (bob, "predict_bob")):
        ok_body(call(event_with(event, bearer(token))))
    dynamodb_calls: list[str] = []
    current_runtime().dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: dynamodb_calls.append(model.name)
    )
    # When the operator disables alice, right after her token was issued
    set_user_status(current_runtime(), "alice", active=False, now=issued_at)
    dynamodb_calls.clear()
    # Then her cached mapping serves her until the TTL passes, with no AWS call on the warm path
    ok_body(call(event_with("predict_alice", bearer(alice))))
    assert dynamodb_calls == []
    clock.now += current_runtime().settings.mapping_ttl_seconds + 1
    # And after that her token is a 401, while carol (same tenant) and bob are still served
    assert_unauthorized(call(event_with("predict_alice", bearer(alice))))
    ok_body(call(event_with("predict_alice", bearer(carol))))
    ok_body(call(event_with("predict_bob", bearer(bob))))
    # And enabling her again restores new tokens only: the old one stays refused
    set_user_status(current_runtime(), "alice", active=True)
    clock.now += current_runtime().settings.mapping_ttl_seconds + 1
    assert_unauthorized(call(event_with("predict_alice", bearer(alice))))
    ok_body(call(event_with("predict_alice", bearer(token_for("alice", "tenant-a")))))


def test_old_subject_cutoffs_are_dropped_on_the_next_disable(demo: Stack) -> None:
    # Given alice disabled long ago (longer than any token can live)
    long_ago = int(time.time()) - SUBJECT_CUTOFF_KEPT_SECONDS - 60
    set_user_status(current_runtime(), "alice", active=False, now=long_ago)
    assert "alice" in stack_tenant(demo, "tenant-a").subjects_not_before
    # When another user of the tenant is disabled now
    create_user(current_runtime(), "carol", "carol-local-demo", "tenant-a")
    set_user_status(current_runtime(), "carol", active=False)
    # Then alice's moot cut-off is gone and carol's is there: the map stays small
    assert set(stack_tenant(demo, "tenant-a").subjects_not_before) == {"carol"}


def stack_tenant(stack: Stack, tenant_id: str) -> table.Tenant:
    tenant = current_runtime().table.get_tenant(tenant_id)
    assert tenant is not None
    return tenant


def test_unknown_and_disabled_tenants_get_the_same_403(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given mapping changes that apply at once, a genuine token for a tenant with no mapping,
    # and one for tenant-a, which the operator then disables
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    use_runtime()
    unknown = call(event_with("predict_alice", bearer(token_for("mallory", "tenant-unknown"))))
    alice = token_for("alice", "tenant-a")
    ok_body(call(event_with("predict_alice", bearer(alice))))
    set_tenant_attribute(demo, "tenant-a", "status", {"S": table.DISABLED})
    # When alice sends the next request
    disabled = call(event_with("predict_alice", bearer(alice)))
    # Then both are 403 problems with byte-identical bodies, and the disable took effect at once
    assert_problem(unknown, 403)
    assert_problem(disabled, 403)
    assert unknown["body"] == disabled["body"]
    assert "tenant" not in unknown["body"]


def test_disabled_tenant_is_served_from_cache_until_the_mapping_ttl_passes(
    demo: Stack, alice_token: str, clock: Clock
) -> None:
    # Given alice served once with the default mapping TTL, then tenant-a disabled
    ttl = current_runtime().settings.mapping_ttl_seconds
    assert ttl > 1
    ok_body(call(event_with("predict_alice", bearer(alice_token))))
    set_tenant_attribute(demo, "tenant-a", "status", {"S": table.DISABLED})
    # When requests arrive just before the cached mapping expires
    clock.now += ttl - 1
    before = call(event_with("predict_alice", bearer(alice_token)))
    # and just after
    clock.now += 2
    after = call(event_with("predict_alice", bearer(alice_token)))
    # Then the cached mapping serves until then, and the disable applies within the TTL
    ok_body(before)
    assert after["statusCode"] == 403


# --- the model card ------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "tenant_id"), [("alice", "tenant-a"), ("bob", "tenant-b")])
def test_model_card_describes_the_callers_model_without_locations(
    demo: Stack, username: str, tenant_id: str
) -> None:
    # Given the tenant's token
    event = event_with("model_card", bearer(token_for(username, tenant_id)))
    # When the card is read
    response = call(event)
    # Then it holds exactly the public facts of the caller's model
    assert response["statusCode"] == 200
    card = json.loads(response["body"])
    entry = MANIFEST[MODEL_FILE[tenant_id]]
    digest = served_digest(MODEL_FILE[tenant_id])
    assert card == {
        "task": "classification",
        "n_features": entry["n_features"],
        "feature_names": None,
        "accepts_missing": False,
        "max_batch": 1000,
        "classes": entry["classes"],
        "version": digest[:12],
        "format": "onnx",
        "interface_changed_at": None,
    }
    # And nothing that locates the model: no key, bucket or full digest
    assert digest not in response["body"]
    assert demo.bucket not in response["body"]
    assert "models/" not in response["body"]


def test_alices_model_card(alice_token: str) -> None:
    # Given alice's token and the sample model-card event
    response = call(load_event("model_card", alice_token=alice_token))
    # When read / Then it is the 4-feature, 3-class card of model A
    card = json.loads(response["body"])
    assert set(card) == {
        "task",
        "n_features",
        "feature_names",
        "accepts_missing",
        "max_batch",
        "classes",
        "version",
        "format",
        "interface_changed_at",
    }
    assert (card["n_features"], card["max_batch"], card["classes"]) == (4, 1000, [0, 1, 2])
    assert card["version"] == served_digest("model_user_a.pkl")[:12]


@pytest.mark.parametrize("case", ["missing", "garbage", "alg-none", "tampered-payload"])
def test_model_card_requires_a_valid_token(alice_token: str, case: str) -> None:
    # Given the model-card event with a missing or bad token
    event = event_with("model_card", BAD_AUTHORIZATION[case](alice_token))
    # When it is read / Then it is a 401
    assert_unauthorized(call(event))
