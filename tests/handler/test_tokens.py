"""Unit tests of `model_runtime.tokens`: issuing, verifying, the bearer header, JWKS, key rotation.

KMS is moto's; the signatures are real RSA signatures, checked here with `cryptography` directly
wherever the test must not trust the code under test.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key
from model_runtime import table, tokens
from model_runtime.errors import Unauthorized

from local.resources import template_resources
from tests.support import Stack, current_runtime

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    head, payload, signature = token.split(".")
    return json.loads(decode(head)), json.loads(decode(payload)), decode(signature)


def kms_public_key(key_id: str) -> RSAPublicKey:
    key = load_der_public_key(current_runtime().kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(key, RSAPublicKey)
    return key


def new_kms_key() -> str:
    """A second signing key with the template's key spec, as an operator rotating would create."""
    props = template_resources()["SigningKey"]["Properties"]
    created = current_runtime().kms.create_key(KeySpec=props["KeySpec"], KeyUsage=props["KeyUsage"])
    return created["KeyMetadata"]["KeyId"]


def put_keyring(stack: Stack, active: str, verify: list[str]) -> None:
    current_runtime().dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            "pk": {"S": table.KEYRING_PK},
            "active_key_id": {"S": active},
            "verify_key_ids": {"L": [{"S": key_id} for key_id in verify]},
        },
    )
    # What the mapping TTL passing does in a warm container.
    current_runtime().keyrings.clear()


# --- Tokens.issue ---------------------------------------------------------------------------------


def test_issued_token_has_the_documented_header_and_claims(stack: Stack) -> None:
    # Given a fixed issue time
    now = 1_800_000_000
    # When a token is issued for alice of tenant-a
    issued = current_runtime().tokens.issue("alice", "tenant-a", now=now)
    # Then the header pins RS256 and names the key by an opaque digest, not an AWS identifier
    header, claims, _ = segments(issued.access_token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": current_runtime().tokens.key_kid(stack.key_id)}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", header["kid"])
    assert stack.key_id not in issued.access_token
    # And the claims are exactly the documented set, with the template's lifetime
    settings = current_runtime().settings
    assert claims == {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": "alice",
        "tid": "tenant-a",
        "roles": ["user"],
        "iat": now,
        "nbf": now,
        "exp": now + settings.token_ttl_seconds,
        "jti": claims["jti"],
    }
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    assert issued.expires_in == settings.token_ttl_seconds == 900


def test_issued_token_is_signed_by_the_kms_key(stack: Stack) -> None:
    # Given an issued token
    token = current_runtime().tokens.issue("alice", "tenant-a").access_token
    # When its signature is checked with the KMS key's public half, outside the code under test
    signing_input, _, _ = token.rpartition(".")
    _, _, signature = segments(token)
    # Then it is a valid RS256 (PKCS#1 v1.5, SHA-256) signature over header.payload
    kms_public_key(stack.key_id).verify(
        signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_every_token_gets_its_own_jti(stack: Stack) -> None:
    # Given two tokens issued in the same second for the same user
    now = int(time.time())
    first, second = (
        current_runtime().tokens.issue("alice", "tenant-a", now=now).access_token for _ in range(2)
    )
    # When their ids are compared / Then they differ
    assert segments(first)[1]["jti"] != segments(second)[1]["jti"]


# --- verify_token --------------------------------------------------------------------------------


def test_verify_token_returns_the_claims_the_service_uses(stack: Stack) -> None:
    # Given a token issued a minute ago
    now = int(time.time()) - 60
    token = current_runtime().tokens.issue("bob", "tenant-b", now=now).access_token
    # When it is verified
    claims = current_runtime().tokens.verify(token)
    # Then the subject, tenant and times come back typed
    assert claims == tokens.Claims("bob", "tenant-b", now, now + current_runtime().settings.token_ttl_seconds)


@pytest.mark.parametrize(
    ("expired_seconds_ago", "accepted"),
    [(-60, True), (10, True), (60, False), (3600, False)],
    ids=["valid", "within-leeway", "past-leeway", "long-expired"],
)
def test_expiry_allows_only_the_configured_leeway(
    stack: Stack, expired_seconds_ago: int, accepted: bool
) -> None:
    # Given a token whose `exp` lies that many seconds in the past (leeway: 30 s)
    assert current_runtime().settings.token_leeway_seconds == 30
    issued_at = int(time.time()) - current_runtime().settings.token_ttl_seconds - expired_seconds_ago
    token = current_runtime().tokens.issue("alice", "tenant-a", now=issued_at).access_token
    # When it is verified
    # Then only a token at most the leeway past its expiry is accepted
    if accepted:
        assert current_runtime().tokens.verify(token).subject == "alice"
    else:
        with pytest.raises(Unauthorized):
            current_runtime().tokens.verify(token)


def test_a_remembered_verification_does_not_outlive_the_token(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a token verified once while valid (so this container remembers it), and a full
    # verification that from now on would refuse it
    issued_at = int(time.time()) - 100
    token = current_runtime().tokens.issue("alice", "tenant-a", now=issued_at).access_token
    current_runtime().tokens.verify(token)
    full_checks: list[str] = []

    def refuse(checked: str, *_: object) -> tokens.Claims:
        full_checks.append(checked)
        raise Unauthorized()

    monkeypatch.setattr(tokens, "_verify_signature_and_claims", refuse)
    settings = current_runtime().settings
    expiry = issued_at + settings.token_ttl_seconds + settings.token_leeway_seconds
    # When it is presented just before its expiry plus leeway, then just after
    monkeypatch.setattr(time, "time", lambda: float(expiry - 1))
    before = current_runtime().tokens.verify(token)
    monkeypatch.setattr(time, "time", lambda: float(expiry))
    # Then it is served from memory until then, and checked again (and refused) from then on
    assert before.subject == "alice"
    assert full_checks == []
    with pytest.raises(Unauthorized):
        current_runtime().tokens.verify(token)
    assert full_checks == [token]


@pytest.mark.parametrize("alg", ["none", "RS512", "PS256", "HS256", "ES256"])
def test_verify_token_pins_rs256(stack: Stack, alg: str) -> None:
    # Given a genuine token whose header is rewritten to another algorithm
    token = current_runtime().tokens.issue("alice", "tenant-a").access_token
    header, _, _ = segments(token)
    forged_header = base64.urlsafe_b64encode(json.dumps({**header, "alg": alg}).encode()).rstrip(b"=")
    forged = forged_header.decode() + token[token.index(".") :]
    # When it is verified / Then it is refused
    with pytest.raises(Unauthorized):
        current_runtime().tokens.verify(forged)


# --- bearer_token --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER  x.y.z ", "x.y.z"),
    ],
)
def test_bearer_token_takes_the_token_of_the_bearer_scheme(authorization: str, token: str) -> None:
    # Given an Authorization header in the Bearer scheme (scheme names are case-insensitive)
    # When the token is taken / Then it is the credentials part, trimmed
    assert tokens.bearer_token(authorization) == token


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Bearer    ", "Basic YWxpY2U6cHc=", "Token abc", "abc.def.ghi", "Bearerabc"],
)
def test_bearer_token_refuses_anything_else(authorization: str) -> None:
    # Given an absent, empty or non-Bearer Authorization header
    # When the token is taken / Then it is a 401 with a Bearer challenge
    with pytest.raises(Unauthorized) as raised:
        tokens.bearer_token(authorization)
    assert raised.value.headers["WWW-Authenticate"].startswith("Bearer")


# --- jwks_document -------------------------------------------------------------------------------


def test_jwks_publishes_the_public_key_only(stack: Stack) -> None:
    # Given the template's single signing key
    # When the JWK Set is built
    document = current_runtime().tokens.jwks()
    # Then it holds one public RSA signing key, named like the tokens' kid
    assert list(document) == ["keys"]
    (jwk,) = document["keys"]
    assert jwk["kty"] == "RSA"
    assert (jwk["kid"], jwk["use"], jwk["alg"]) == (
        current_runtime().tokens.key_kid(stack.key_id),
        "sig",
        "RS256",
    )
    assert not PRIVATE_JWK_MEMBERS & set(jwk)
    # And that key is the KMS key's public half: a token verifies with it alone
    numbers = kms_public_key(stack.key_id).public_numbers()
    public = jwt.PyJWK(jwk).key
    assert isinstance(public, RSAPublicKey)
    assert public.public_numbers() == numbers
    token = current_runtime().tokens.issue("alice", "tenant-a").access_token
    claims = jwt.decode(
        token, public, algorithms=["RS256"], audience=current_runtime().settings.token_audience
    )
    assert claims["tid"] == "tenant-a"


# --- key ring rotation ---------------------------------------------------------------------------


def test_key_rotation_keeps_old_tokens_until_the_old_key_leaves_the_ring(stack: Stack) -> None:
    # Given a token signed with the template's key, before any key ring item exists
    old_key, old_kid = stack.key_id, current_runtime().tokens.key_kid(stack.key_id)
    old_token = current_runtime().tokens.issue("alice", "tenant-a").access_token
    assert segments(old_token)[0]["kid"] == old_kid

    # When the operator makes a second key active and keeps both for verification
    new_key = new_kms_key()
    new_kid = current_runtime().tokens.key_kid(new_key)
    put_keyring(stack, active=new_key, verify=[old_key, new_key])
    # Then the old token still verifies, new tokens carry the new kid and verify, JWKS lists both
    assert current_runtime().tokens.verify(old_token).subject == "alice"
    new_token = current_runtime().tokens.issue("bob", "tenant-b").access_token
    assert segments(new_token)[0]["kid"] == new_kid != old_kid
    assert current_runtime().tokens.verify(new_token).subject == "bob"
    assert {jwk["kid"] for jwk in current_runtime().tokens.jwks()["keys"]} == {old_kid, new_kid}
    # And the new token really is the new key's signature
    signing_input, _, _ = new_token.rpartition(".")
    kms_public_key(new_key).verify(
        segments(new_token)[2], signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )

    # When the old key is removed from the ring
    put_keyring(stack, active=new_key, verify=[new_key])
    # Then the old token fails (even though this container verified it before), the new one works
    with pytest.raises(Unauthorized):
        current_runtime().tokens.verify(old_token)
    assert current_runtime().tokens.verify(new_token).subject == "bob"
    assert [jwk["kid"] for jwk in current_runtime().tokens.jwks()["keys"]] == [new_kid]
