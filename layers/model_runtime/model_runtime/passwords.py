"""Password hashing: argon2id at OWASP's minimum (m=19 MiB, t=2, p=1).

`verify_password` does the same hash work whether or not the user exists, so response time does
not tell an attacker which usernames are real.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_PASSWORD_CHARS = 1024


# Immutable parameters, no state: one hasher for the process.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)


# Stands in for an unknown user's hash: verifying against it costs what a real one costs. It is
# the hash of a throwaway phrase with the parameters above, so it guards nothing.
_DECOY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$QBThv9mGvSgJ+Ek8a6kBTA$Y+foPtE7/JOux9FadPut+WCECQXP2vaqNJD8RIx/Nyw"
)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches `stored_hash`; with no hash (None, or "" from an item that
    lacks one), the same work and False, even for the decoy's own phrase."""
    try:
        return _HASHER.verify(stored_hash or _DECOY_HASH, password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False
