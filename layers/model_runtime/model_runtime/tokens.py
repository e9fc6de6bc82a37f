"""Access tokens: RS256 JWTs signed by AWS KMS, verified with PyJWT against the operator's keys.

The private key never leaves KMS: `Tokens.issue` sends the JWS signing input to `kms:Sign`.
Verification trusts only the public keys of the key ring (`table.KeyRing`, cached per container
by `runtime.Runtime`), fetched with `kms:GetPublicKey` once per key and cached in `Tokens`. A
token's `kid` selects among those keys and nothing else; `jku`, `x5u`, `jwk` and `x5c` headers
are never read, and any `crit` header is refused because this service implements no JWS extension.

`kid` is a digest of the key's public DER bytes: stable, opaque, and free of AWS identifiers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import jwt

from model_runtime.errors import Unauthorized
from model_runtime.roles import USER, claim_roles
from model_runtime.settings import Settings
from model_runtime.table import KeyRing
from model_runtime.ttl_cache import TtlCache

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

ALGORITHM = "RS256"
KMS_SIGNING_ALGORITHM: Final = "RSASSA_PKCS1_V1_5_SHA_256"
MAX_TOKEN_CHARS = 4096
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "tid", "jti")
# The tag every signing key carries (value: the stack name); the functions' IAM policies match it
# (template.yaml) and `inferctl` tags the keys it creates with it.
SIGNING_KEY_TAG: Final = "inference-signing-key"
MAX_CACHED_KEYS = 16


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    tenant_id: str
    issued_at: int
    expires_at: int
    # `model_runtime.roles`: what the subject may do in its tenant (predict accepts any of them).
    roles: tuple[str, ...] = (USER,)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# RFC 7515 7.1: compact JWS is three base64url segments without padding (RFC 7515 2). Anything
# else (`==` appended, whitespace, a fourth segment) is refused before a cache sees it: each such
# variant of a good token would be a new key to the verified-token caches, a fresh RSA verify.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header; the scheme in any case (RFC 7235 2.1)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


class VerifiedTokens:
    """Tokens already verified in this container, by their exact text, until they expire.

    A client reuses its token for many requests; checking the RSA signature and parsing the JWT
    again costs more than the prediction itself. Only a byte-identical token hits, so this skips
    no check for any other token. Expiry is re-checked on every hit, tenant revocation and status
    are checked per request after this (`access.resolve_tenant`), and a change of the key ring
    empties the cache, so a retired key's tokens stop working within the mapping TTL.
    """

    def __init__(self, leeway_seconds: int, max_entries: int = 1024) -> None:
        self._leeway = leeway_seconds
        self._max_entries = max_entries
        self._claims: dict[str, Claims] = {}
        self._ring: KeyRing | None = None

    def get(self, token: str, ring: KeyRing, now: float) -> Claims | None:
        if ring is not self._ring:
            if ring != self._ring:
                self._claims.clear()
            self._ring = ring
        claims = self._claims.get(token)
        if claims is not None and now >= claims.expires_at + self._leeway:
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: Claims) -> None:
        if len(self._claims) >= self._max_entries:
            self._claims.clear()
        self._claims[token] = claims

    def clear(self) -> None:
        self._claims.clear()
        self._ring = None


class Tokens:
    """Issues and verifies this container's tokens: `kms` gives the KMS client, `keyring` the
    (cached) key ring. Public keys are fetched once per key id: a key id's material never changes.
    """

    def __init__(
        self, settings: Settings, kms: Callable[[], KMSClient], keyring: Callable[[], KeyRing]
    ) -> None:
        self.settings = settings
        self._kms = kms
        self._keyring = keyring
        self.verified = VerifiedTokens(settings.token_leeway_seconds)
        # Never expires (a key id's material never changes); a failed fetch backs off per key.
        self._der: TtlCache[bytes] = TtlCache(
            self._fetch_public_key_der, math.inf, MAX_CACHED_KEYS, name="public-key"
        )
        self._kids: dict[str, str] = {}
        self._public_keys: dict[str, Any] = {}

    def _public_key_der(self, key_id: str) -> bytes:
        """A KMS key's public half (DER SubjectPublicKeyInfo)."""
        return self._der.get(key_id)

    def _fetch_public_key_der(self, key_id: str) -> bytes:
        return self._kms().get_public_key(KeyId=key_id)["PublicKey"]

    def key_kid(self, key_id: str) -> str:
        kid = self._kids.get(key_id)
        if kid is None:
            kid = _b64url(hashlib.sha256(self._public_key_der(key_id)).digest()[:16])
            _bounded_put(self._kids, key_id, kid)
        return kid

    def _public_key(self, key_id: str) -> Any:
        key = self._public_keys.get(key_id)
        if key is None:
            # Imported here, not at the top: login's token path never needs it (cold start).
            from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

            key = load_der_public_key(self._public_key_der(key_id))
            _bounded_put(self._public_keys, key_id, key)
        return key

    def issue(
        self, subject: str, tenant_id: str, now: int | None = None, roles: tuple[str, ...] = (USER,)
    ) -> IssuedToken:
        settings = self.settings
        issued_at = int(time.time()) if now is None else now
        key_id = self._keyring().active_key_id
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": self.key_kid(key_id)}
        claims = {
            "iss": settings.token_issuer,
            "aud": settings.token_audience,
            "sub": subject,
            "tid": tenant_id,
            "roles": list(roles),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + settings.token_ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._kms().sign(
            KeyId=key_id,
            Message=signing_input.encode("ascii"),
            MessageType="RAW",
            SigningAlgorithm=KMS_SIGNING_ALGORITHM,
        )["Signature"]
        return IssuedToken(f"{signing_input}.{_b64url(signature)}", settings.token_ttl_seconds)

    def verifying_keys(self) -> dict[str, Any]:
        """kid -> public key, for every key of the (cached) key ring."""
        return {self.key_kid(key_id): self._public_key(key_id) for key_id in self._keyring().verify_key_ids}

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The key ring's public keys as an RFC 7517 JWK Set."""
        keys = []
        for kid, public_key in self.verifying_keys().items():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public_key, as_dict=True)
            jwk.pop("key_ops", None)  # RFC 7517 4.3: `use` and `key_ops` should not be used together
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": keys}

    def verify(self, token: str) -> Claims:
        """Verified claims of `token`, or `Unauthorized` for any fault at all."""
        if len(token) > MAX_TOKEN_CHARS or not _COMPACT_JWS.fullmatch(token):
            raise Unauthorized()
        claims = self.verified.get(token, self._keyring(), time.time())
        if claims is None:
            _refuse_non_canonical(token)
            claims = _verify_signature_and_claims(token, self.verifying_keys, self.settings)
            self.verified.put(token, claims)
        return claims


def _refuse_non_canonical(token: str) -> None:
    """Each segment must be the one base64url spelling of its bytes: a decoder ignores a last
    character's unused bits, so "...Q" and "...R" could carry the same signature (RFC 4648 3.5).
    Checked on a cache miss only: a hit is byte-identical to a token that passed this."""
    for segment in token.split("."):
        if len(segment) % 4 == 1:  # no base64 text has this length
            raise Unauthorized()
        if _b64url(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))) != segment:
            raise Unauthorized()


def _bounded_put[V](cache: dict[str, V], key: str, value: V) -> None:
    if len(cache) >= MAX_CACHED_KEYS:
        cache.clear()
    cache[key] = value


def _verify_signature_and_claims(
    token: str, verifying_keys: Callable[[], dict[str, Any]], settings: Settings
) -> Claims:
    try:
        header = jwt.get_unverified_header(token)
    except Exception:  # malformed base64, JSON, nesting: all just "not a token"
        raise Unauthorized() from None
    if header.get("alg") != ALGORITHM or "crit" in header:
        raise Unauthorized()
    kid = header.get("kid")
    key = verifying_keys().get(kid) if isinstance(kid, str) else None
    if key is None:
        raise Unauthorized()
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.token_audience,
            issuer=settings.token_issuer,
            leeway=settings.token_leeway_seconds,
            options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
        )
    except Exception:
        raise Unauthorized() from None
    subject, tenant_id = claims["sub"], claims["tid"]
    if not (isinstance(subject, str) and subject and isinstance(tenant_id, str) and tenant_id):
        raise Unauthorized()
    # PyJWT takes `int(claim)`, so "9999999999" or true would pass; RFC 7519 dates are JSON numbers.
    if any(type(claims.get(name, 0)) not in (int, float) for name in ("exp", "iat", "nbf")):
        raise Unauthorized()
    # A token is only as short-lived as its claims say: a well-signed token minted for ten years
    # (a misconfigured or compromised signer) is refused, not honoured until it expires.
    if claims["exp"] - claims["iat"] > settings.token_ttl_seconds + settings.token_leeway_seconds:
        raise Unauthorized()
    # RFC 9068 2.2.3.1's `roles` (docs/decisions/0014-roles-claim.md). A token without the claim
    # was issued before roles existed: it is a `user`'s, and nothing more.
    roles = claim_roles(claims["roles"]) if "roles" in claims else (USER,)
    if roles is None:
        raise Unauthorized()
    return Claims(subject, tenant_id, int(claims["iat"]), int(claims["exp"]), roles)
