"""Passwords are hashed at the production cost, and an unknown user costs the same work.

Every other test hashes at argon2's minimum cost (tests/conftest.py); this module is the one that
runs `model_runtime.passwords` as deployed.
"""

from __future__ import annotations

import argon2
import pytest
from argon2.low_level import Type
from model_runtime.passwords import hash_password, verify_password

pytestmark = pytest.mark.production_argon2

# OWASP's minimum for argon2id (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane.
OWASP_ARGON2ID = argon2.Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=2, memory_cost=19 * 1024, parallelism=1
)


@pytest.fixture
def verified_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The encoded hash of every argon2 verification, in order (patched on the class)."""
    hashes: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def verify(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        hashes.append(hash if isinstance(hash, str) else hash.decode())
        return real_verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    return hashes


def test_passwords_are_hashed_with_argon2id_at_owasps_minimum_cost() -> None:
    # Given a password
    # When it is hashed as the operator CLI stores it
    encoded = hash_password("correct horse battery")
    # Then the hash is argon2id at 19 MiB, 2 passes, 1 lane, and only that password verifies
    assert argon2.extract_parameters(encoded) == OWASP_ARGON2ID
    assert verify_password(encoded, "correct horse battery")
    assert not verify_password(encoded, "correct horse batterY")


def test_an_unknown_user_costs_one_verification_at_the_production_cost(verified_hashes: list[str]) -> None:
    # Given no stored hash: the username is unknown
    # When a password is checked against it
    accepted = verify_password(None, "correct horse battery")
    # Then it is refused after one verification against a hash of the production parameters
    assert accepted is False
    assert len(verified_hashes) == 1
    assert argon2.extract_parameters(verified_hashes[0]) == OWASP_ARGON2ID
