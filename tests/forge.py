"""Token forgery kit: JWS segments by hand, so any header, claim or signature can be sent. One kit
for the handler tests (tests/handler/test_predict_auth.py, test_authorizer.py) and the attack suite.

Written against RFC 7515 directly rather than with PyJWT, which refuses most of what an attacker
sends (HMAC keyed with a public key, `alg: none`, malformed segments).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Header, claims and signature of a compact JWS (not verified)."""
    header, claims, signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims)), b64url_decode(signature)


def assemble(header: Any, claims: Any, signature: bytes = b"") -> str:
    return f"{b64url_json(header)}.{b64url_json(claims)}.{b64url(signature)}"


def signing_input(header: Any, claims: Any) -> bytes:
    return f"{b64url_json(header)}.{b64url_json(claims)}".encode()


def sign_hmac(header: dict[str, Any], claims: Any, secret: bytes) -> str:
    digest = hmac.new(secret, signing_input(header, claims), HMAC_HASHES[header["alg"]]).digest()
    return assemble(header, claims, digest)


def fresh_claims(template: dict[str, Any], now: int | None = None, **changes: Any) -> dict[str, Any]:
    """`template`'s claims (a real token's) re-dated to now, with a new jti and `changes` applied;
    a change to `None` removes the claim."""
    now = int(time.time()) if now is None else now
    lifetime = template["exp"] - template["iat"]
    claims = template | {"iat": now, "nbf": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


@dataclass(frozen=True)
class Attacker:
    """An RSA key the service has never seen."""

    key: rsa.RSAPrivateKey
    kid: str = "attacker-key-1"

    @classmethod
    def generate(cls) -> Attacker:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def sign(self, header: dict[str, Any], claims: Any) -> str:
        signature = self.key.sign(signing_input(header, claims), padding.PKCS1v15(), hashes.SHA256())
        return assemble(header, claims, signature)

    def public_jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }

    def certificate_der(self) -> bytes:
        """A self-signed certificate for the key, for an `x5c` header."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "urn:inference:login")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.DER)


def public_key_from_jwk(jwk: dict[str, Any]) -> rsa.RSAPublicKey:
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def public_key_encodings(key: rsa.RSAPublicKey) -> dict[str, bytes]:
    """The server's public key as the byte strings a confused verifier might use as an HMAC secret."""
    spki = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "spki-pem": spki,
        "spki-pem-no-newline": spki.rstrip(b"\n"),
        "pkcs1-pem": key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "spki-der": key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
