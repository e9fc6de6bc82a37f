"""Forged, tampered and malformed bearer tokens: every one is a 401, never a 5xx, and the
legitimate token keeps working after each attempt.

Each attack is sent to POST /api/v1/predict with rows that fit tenant 1's model, so a forgery
that got through would show as a 200. Tokens signed by the attacker's own key fail on the
signature whatever else they hold; against the local stack the claim attacks are also signed
with the stack's own KMS key (`operator` fixture), which isolates the claim checks themselves.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.attack.kit import Api, Caller, Operator, assert_still_served
from tests.forge import (
    HMAC_HASHES,
    Attacker,
    assemble,
    b64url,
    b64url_json,
    fresh_claims,
    parts,
    public_key_encodings,
    public_key_from_jwk,
    sign_hmac,
)

pytestmark = pytest.mark.blackbox

PREDICT = "/api/v1/predict"
Sign = Callable[[dict[str, Any], Any], str]


def assert_refused(api: Api, caller: Caller, token: str) -> None:
    # When the forged token is presented with rows that fit the victim tenant's model
    reply = api.request("POST", PREDICT, {"instances": caller.rows()}, token=token)
    # Then it is a bearer challenge, whatever the token held
    assert reply.status == 401, f"{reply.status}: {reply.body[:200]!r} for {token[:120]}..."
    assert (reply.header("WWW-Authenticate") or "").startswith("Bearer")
    # And the legitimate token still works
    assert_still_served(api, caller)


@pytest.fixture(scope="session")
def jwks(api: Api) -> list[dict[str, Any]]:
    reply = api.request("GET", "/.well-known/jwks.json")
    assert reply.status == 200
    keys: list[dict[str, Any]] = reply.json()["keys"]
    return keys


@pytest.fixture(params=["attacker-key", pytest.param("operator-kms-key", marks=pytest.mark.local_only)])
def sign(request: pytest.FixtureRequest, attacker: Attacker) -> Sign:
    """Signs a header and claims: with the attacker's key, or (locally) the stack's own KMS key."""
    if request.param == "attacker-key":
        return attacker.sign
    operator: Operator = request.getfixturevalue("operator")
    return operator.sign


# --- algorithm and structure ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("keep_signature", [False, True], ids=["no-signature", "original-signature"])
def test_alg_none_is_refused(api: Api, caller_a: Caller, alg: str, keep_signature: bool) -> None:
    # Given alice's real token re-headed with alg "none"
    header, claims, signature = parts(caller_a.token)
    token = assemble(header | {"alg": alg}, claims, signature if keep_signature else b"")
    assert_refused(api, caller_a, token)


def structural_forgeries(token: str) -> dict[str, str]:
    header, claims, signature = token.split(".")
    return {
        "signature-stripped": f"{header}.{claims}.",
        "two-segments": f"{header}.{claims}",
        "four-segments": f"{header}.{claims}.{signature}.{signature}",
        "five-segments-jwe-shape": f"{header}..{claims}.{signature}.{signature}",
        "only-dots": "..",
        "empty-segments": "...",
        "header-missing": f".{claims}.{signature}",
        "bad-base64-chars": f"{header}!.{claims}*.{signature}$",
        "standard-base64-padded": ".".join(
            base64.b64encode(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))).decode()
            for s in (header, claims, signature)
        ),
        "header-not-json": f"{b64url(b'not json')}.{claims}.{signature}",
        "header-json-array": f"{b64url_json([header])}.{claims}.{signature}",
        "header-json-null": f"{b64url_json(None)}.{claims}.{signature}",
        "claims-not-json": f"{header}.{b64url(b'{{{')}.{signature}",
        "claims-json-array": f"{header}.{b64url_json([1, 2])}.{signature}",
        "header-invalid-utf8": f"{b64url(bytes([0xFF, 0xFE, 0x7B]))}.{claims}.{signature}",
        "whitespace-inside": f"{header}. {claims}.{signature}",
        "non-ascii": f"{header}.{claims}.{signature}é",
        "signature-truncated": f"{header}.{claims}.{signature[: len(signature) // 2]}",
    }


STRUCTURAL = list(structural_forgeries(assemble({"alg": "RS256"}, {}, b"signature")))


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structurally_broken_tokens_are_refused(api: Api, caller_a: Caller, name: str) -> None:
    assert_refused(api, caller_a, structural_forgeries(caller_a.token)[name])


TAMPERING: dict[str, Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]] = {
    "tenant-of-someone-else": lambda h, c: (h, c | {"tid": "tenant-b"}),
    "subject-of-someone-else": lambda h, c: (h, c | {"sub": "bob"}),
    "lifetime-extended": lambda h, c: (h, c | {"exp": c["exp"] + 86_400}),
    "audience-changed": lambda h, c: (h, c | {"aud": "urn:other"}),
    "kid-changed": lambda h, c: (h | {"kid": "another-key"}, c),
    "typ-changed": lambda h, c: (h | {"typ": "at+jwt"}, c),
}


@pytest.mark.parametrize("change", list(TAMPERING))
def test_tampered_token_with_original_signature_is_refused(api: Api, caller_a: Caller, change: str) -> None:
    # Given alice's token with one part changed and her original signature kept
    header, claims, signature = parts(caller_a.token)
    new_header, new_claims = TAMPERING[change](header, claims)
    assert_refused(api, caller_a, assemble(new_header, new_claims, signature))


@pytest.mark.parametrize("alg", list(HMAC_HASHES))
@pytest.mark.parametrize("encoding", ["spki-pem", "spki-pem-no-newline", "pkcs1-pem", "spki-der"])
def test_hmac_keyed_with_the_public_key_is_refused(
    api: Api, caller_a: Caller, jwks: list[dict[str, Any]], alg: str, encoding: str
) -> None:
    # Given the service's public key as published in its JWKS, used as an HMAC secret (key confusion)
    kid = caller_a.header["kid"]
    public_key = public_key_from_jwk(next(key for key in jwks if key["kid"] == kid))
    secret = public_key_encodings(public_key)[encoding]
    token = sign_hmac({"alg": alg, "typ": "JWT", "kid": kid}, fresh_claims(caller_a.claims), secret)
    assert_refused(api, caller_a, token)


ZERO_SIGNATURES = {
    "es256-zero-r-s": ("ES256", bytes(64)),  # CVE-2022-21449 ("psychic signatures")
    "es256-zero-der": ("ES256", bytes.fromhex("3006020100020100")),
    "rs256-zero": ("RS256", bytes(256)),
    "rs256-one-byte": ("RS256", b"\x00"),
    "ps256-zero": ("PS256", bytes(256)),
}


@pytest.mark.parametrize("case", list(ZERO_SIGNATURES))
def test_zero_signatures_are_refused(api: Api, caller_a: Caller, case: str) -> None:
    alg, signature = ZERO_SIGNATURES[case]
    header = caller_a.header | {"alg": alg}
    assert_refused(api, caller_a, assemble(header, fresh_claims(caller_a.claims), signature))


# --- keys the token brings with it -------------------------------------------------------------


def embedded_key_headers(attacker: Attacker, real_kid: str) -> dict[str, dict[str, Any]]:
    jwk = attacker.public_jwk()
    x5c = [base64.b64encode(attacker.certificate_der()).decode()]
    return {
        "jwk-attacker-kid": {"alg": "RS256", "kid": attacker.kid, "jwk": jwk},
        "jwk-real-kid": {"alg": "RS256", "kid": real_kid, "jwk": jwk},
        "jwk-no-kid": {"alg": "RS256", "jwk": jwk},
        "x5c-attacker-kid": {"alg": "RS256", "kid": attacker.kid, "x5c": x5c},
        "x5c-no-kid": {"alg": "RS256", "x5c": x5c},
    }


@pytest.mark.parametrize(
    "case", ["jwk-attacker-kid", "jwk-real-kid", "jwk-no-kid", "x5c-attacker-kid", "x5c-no-kid"]
)
def test_keys_embedded_in_the_header_are_not_trusted(
    api: Api, caller_a: Caller, attacker: Attacker, case: str
) -> None:
    # Given a token signed by the attacker, carrying the attacker's public key in its header
    header = embedded_key_headers(attacker, caller_a.header["kid"])[case] | {"typ": "JWT"}
    assert_refused(api, caller_a, attacker.sign(header, fresh_claims(caller_a.claims)))


class KeyServer:
    """An HTTP listener on loopback that serves the attacker's JWKS and records every request."""

    def __init__(self, attacker: Attacker) -> None:
        self.attacker = attacker
        self.requests: list[str] = []
        jwks = json.dumps({"keys": [attacker.public_jwk()]}).encode()
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> KeyServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def key_server(attacker: Attacker) -> Iterator[KeyServer]:
    with KeyServer(attacker) as server:
        yield server


@pytest.mark.parametrize("parameter", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["attacker", "real"])
def test_key_urls_in_the_header_are_never_fetched(
    api: Api, caller_a: Caller, key_server: KeyServer, parameter: str, kid: str
) -> None:
    # Given a token signed by the attacker whose header points at the attacker's key server
    attacker = key_server.attacker
    header = {
        "alg": "RS256",
        "typ": "JWT",
        "kid": attacker.kid if kid == "attacker" else caller_a.header["kid"],
        parameter: f"{key_server.url}/{parameter}/jwks.json",
    }
    before = len(key_server.requests)
    assert_refused(api, caller_a, attacker.sign(header, fresh_claims(caller_a.claims)))
    # Then the service never asked for the key (the listener is synchronous: any fetch is done by now)
    assert key_server.requests[before:] == []


KID_INJECTIONS: dict[str, Any] = {
    "path-traversal": "../../etc/passwd",
    "path-traversal-encoded": "..%2F..%2Fetc%2Fpasswd",
    "sql-injection": "' OR 1=1 --",
    "nosql-injection-string": '{"$ne":null}',
    "nosql-injection-object": {"$ne": None},
    "command-injection": "x; cat /etc/passwd",
    "null-byte": "kid\x00",
    "number": 12345,
    "list": ["a"],
    "null": None,
    "empty": "",
    "long": "k" * 3000,
}


@pytest.mark.parametrize("case", list(KID_INJECTIONS))
def test_kid_injection_is_refused(api: Api, caller_a: Caller, attacker: Attacker, case: str) -> None:
    header = {"alg": "RS256", "typ": "JWT", "kid": KID_INJECTIONS[case]}
    assert_refused(api, caller_a, attacker.sign(header, fresh_claims(caller_a.claims)))


def test_kid_dev_null_with_an_empty_hmac_key_is_refused(api: Api, caller_a: Caller) -> None:
    # The classic: a kid naming an empty file, and an HMAC with the empty key it would read.
    header = {"alg": "HS256", "typ": "JWT", "kid": "../../../../dev/null"}
    assert_refused(api, caller_a, sign_hmac(header, fresh_claims(caller_a.claims), b""))


CRIT_HEADERS: dict[str, dict[str, Any]] = {
    "exp": {"crit": ["exp"]},
    "unknown": {"crit": ["urn:example:unknown"]},
    "empty": {"crit": []},
    "b64-false": {"crit": ["b64"], "b64": False},
    # RFC 7797's b64 with its default value: PyJWT knows the extension and would verify this
    # token; the service implements none and refuses any crit itself.
    "b64-true": {"crit": ["b64"], "b64": True},
}


@pytest.mark.parametrize("case", list(CRIT_HEADERS))
def test_crit_header_is_refused(api: Api, caller_a: Caller, sign: Sign, case: str) -> None:
    # Given a token whose header demands extensions the service does not implement (RFC 7515 4.1.11)
    header = caller_a.header | CRIT_HEADERS[case]
    assert_refused(api, caller_a, sign(header, fresh_claims(caller_a.claims)))


# --- claims ------------------------------------------------------------------------------------

HOUR = 3600


def claim_attacks(now: int) -> dict[str, dict[str, Any]]:
    """Changes to a real token's claims (None removes the claim) that must each be refused."""
    attacks: dict[str, dict[str, Any]] = {
        "expired": {"iat": now - 2 * HOUR, "nbf": now - 2 * HOUR, "exp": now - HOUR},
        "not-yet-valid-nbf": {"nbf": now + HOUR, "exp": now + 2 * HOUR},
        "issued-in-the-future": {"iat": now + HOUR, "nbf": now, "exp": now + 2 * HOUR},
        "wrong-issuer": {"iss": "https://evil.example"},
        "wrong-audience": {"aud": "urn:evil"},
        "audience-list-with-another": {"aud": ["urn:evil"]},
        "sub-not-a-string": {"sub": 12345},
        "sub-empty": {"sub": ""},
        "tid-not-a-string": {"tid": ["tenant-a"]},
        "tid-empty": {"tid": ""},
        "exp-as-string": {"exp": str(now + HOUR)},
        "iat-as-bool": {"iat": True},
        "nbf-as-string": {"nbf": str(now)},
        "exp-as-object": {"exp": {"$gt": 0}},
    }
    for claim in ("exp", "iat", "iss", "aud", "sub", "tid", "jti"):
        attacks[f"missing-{claim}"] = {claim: None}
    return attacks


CLAIM_ATTACKS = list(claim_attacks(0))


@pytest.mark.parametrize("attack", CLAIM_ATTACKS)
def test_claim_attacks_are_refused(api: Api, caller_a: Caller, sign: Sign, attack: str) -> None:
    now = int(time.time())
    claims = fresh_claims(caller_a.claims, now, **claim_attacks(now)[attack])
    assert_refused(api, caller_a, sign(caller_a.header, claims))


@pytest.mark.local_only
def test_operator_signed_token_with_right_claims_is_accepted(
    api: Api, caller_a: Caller, operator: Operator
) -> None:
    # Control for the claim attacks: the same signing path with untouched claims is accepted,
    # so their 401s come from the claims, not from a broken signer.
    token = operator.sign(caller_a.header, fresh_claims(caller_a.claims))
    reply = api.request("POST", PREDICT, {"instances": caller_a.rows()}, token=token)
    assert reply.status == 200 and reply.json()["model_version"] == caller_a.card["version"]


# --- size and shape of the token itself --------------------------------------------------------


@pytest.mark.parametrize("depth", [1_400, 5_000])
@pytest.mark.parametrize("shape", ["arrays", "objects"])
def test_deeply_nested_header_is_refused(api: Api, caller_a: Caller, depth: int, shape: str) -> None:
    # Given a header nested thousands deep (a parser's recursion limit, not a JSON object)
    nested = "[" * depth + "]" * depth if shape == "arrays" else '{"a":' * depth + "1" + "}" * depth
    _, claims, signature = caller_a.token.split(".")
    assert_refused(api, caller_a, f"{b64url(nested.encode())}.{claims}.{signature}")


def test_token_past_the_length_cap_is_refused(api: Api, caller_a: Caller) -> None:
    header, claims, signature = parts(caller_a.token)
    padded = claims | {"pad": "x" * 5000}
    assert_refused(api, caller_a, assemble(header, padded, signature))


def test_megabyte_token_is_refused_by_some_4xx(api: Api, caller_a: Caller) -> None:
    # Given a 1 MB bearer token: past any sane header limit
    token = "a" * (1024 * 1024)
    # The front server may refuse it before API Gateway (431 from werkzeug locally, CloudFront or
    # API Gateway's 413 on AWS): those replies carry none of our headers, so they are not checked.
    # It may also answer and close before reading it all, and the client then sees a reset.
    try:
        reply = api.request("POST", PREDICT, {"instances": caller_a.rows()}, token=token, check_headers=False)
    except ConnectionError:
        reply = None  # refused at the door: no function ran, which is the point
    assert reply is None or reply.status in (401, 413, 431, 494), reply
    assert_still_served(api, caller_a)


@pytest.mark.parametrize("parameter", ["access_token", "token", "id_token"])
def test_token_in_the_query_string_is_not_read(api: Api, caller_a: Caller, parameter: str) -> None:
    # Given a valid token, sent only in the query string (RFC 6750 2.3, which the API does not offer)
    reply = api.request("POST", f"{PREDICT}?{parameter}={caller_a.token}", {"instances": caller_a.rows()})
    assert reply.status == 401
    assert_still_served(api, caller_a)


AUTHORIZATION_VARIANTS = {
    "basic-scheme": lambda t: f"Basic {base64.b64encode(b'alice:alice-local-demo').decode()}",
    "token-scheme": lambda t: f"Token {t}",
    "scheme-only": lambda t: "Bearer",
    "scheme-and-blanks": lambda t: "Bearer    ",
    "no-scheme": lambda t: t,
    "two-tokens": lambda t: f"Bearer {t} {t}",
    "comma-list": lambda t: f"Bearer {t}, Bearer {t}",
    # Compact JWS has no base64 padding (RFC 7515 2): each spelling would be a new cache key.
    "padded-signature": lambda t: f"Bearer {t}==",
    "padded-payload": lambda t: "Bearer " + t.replace(".", "==.", 2).replace("==.", ".", 1),
    "signature-unused-bits-set": lambda t: f"Bearer {t[:-1]}{flip_unused_bits(t[-1])}",
}


def flip_unused_bits(last: str) -> str:
    """The base64url character whose 2 meaningful bits (an RS256 signature's last) are the same."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return alphabet[alphabet.index(last) ^ 1]


@pytest.mark.parametrize("variant", list(AUTHORIZATION_VARIANTS))
def test_malformed_authorization_headers_are_refused(api: Api, caller_a: Caller, variant: str) -> None:
    authorization = AUTHORIZATION_VARIANTS[variant](caller_a.token)
    reply = api.request(
        "POST", PREDICT, {"instances": caller_a.rows()}, headers={"Authorization": authorization}
    )
    assert reply.status == 401
    assert_still_served(api, caller_a)
