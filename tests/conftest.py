"""Shared fixtures, for every kind of test: moto in-process AWS built from template.yaml, demo
tenants, tokens. Plain helpers (Stack, load_event, token_for, onboard...) are in tests/support.py.

Unit and handler tests never touch the network: moto's `mock_aws` intercepts boto3, the AWS
endpoint variables are removed, and resources are created from the template's own definitions.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Powertools reads these when the handler modules create their Logger/Metrics at import.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "InferenceApiTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "test")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# The handlers check their required settings when imported (Lambda's init); fixtures set the
# real names of the moto resources per test.
os.environ.setdefault("TABLE_NAME", "set-by-the-stack-fixture")
os.environ.setdefault("MODEL_BUCKET", "set-by-the-stack-fixture")
os.environ.setdefault("SIGNING_KEY_ID", "set-by-the-stack-fixture")
os.environ.setdefault("ACTIVITY_TABLE_NAME", "set-by-the-stack-fixture")
os.environ.setdefault("CURSOR_KEY_ID", "set-by-the-stack-fixture")
os.environ.setdefault("CAPTURE_BUCKET", "set-by-the-stack-fixture")
os.environ.setdefault("TENANT_DATA_ROLE_ARN", "set-by-the-stack-fixture")

import argon2
import moto.kms.utils
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from model_runtime import passwords
from moto import mock_aws

from tests.support import (
    ALICE,
    BOB,
    FakeLambdaContext,
    Stack,
    aws_session,
    create_resources_from_template,
    onboard,
    run_inferctl,
    token_for,
    use_runtime,
)

# --- the cheapest setting that still proves the rule --------------------------------------------
# Measured on this 2-core machine (2026-12-06): a `demo` setup hashed two passwords at production
# cost (argon2id, 19 MiB, 2 passes: ~50 ms each, ~150 ms under load) and had moto generate a
# fresh RSA-2048 key (~150 ms, ~500 ms under load); about 1,000 tests set it up. Tests that are
# not about hashing hash at argon2's minimum cost (the unknown user's decoy too, so "the same work
# for unknown users" is still checked against the real hashes); tests/unit/test_passwords.py
# (marked `production_argon2`) checks the production parameters.
CHEAP_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=32, salt_len=16)
CHEAP_DECOY_HASH = CHEAP_HASHER.hash("a throwaway phrase")


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("production_argon2"):
        return
    monkeypatch.setattr(passwords, "_HASHER", CHEAP_HASHER)
    monkeypatch.setattr(passwords, "_DECOY_HASH", CHEAP_DECOY_HASH)


class _RsaKeyPool:
    """moto's KMS keys come from a pool generated once per process: within a test every key is a
    new one (the n-th key a test creates is the pool's n-th), so rotation and foreign-key tests
    still see distinct keys; no test's key is generated outside moto (tests.forge makes its own)."""

    def __init__(self) -> None:
        self.keys: dict[int, list[rsa.RSAPrivateKey]] = {}
        self.handed_out: dict[int, int] = {}

    def generate_private_key(self, public_exponent: int, key_size: int) -> rsa.RSAPrivateKey:
        pool = self.keys.setdefault(key_size, [])
        index = self.handed_out.get(key_size, 0)
        if index == len(pool):
            pool.append(rsa.generate_private_key(public_exponent=public_exponent, key_size=key_size))
        self.handed_out[key_size] = index + 1
        return pool[index]


RSA_KEY_POOL = _RsaKeyPool()


@pytest.fixture(autouse=True)
def _pooled_kms_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    RSA_KEY_POOL.handed_out.clear()
    # moto.kms.utils calls `rsa.generate_private_key`; only its view of `rsa` is replaced.
    monkeypatch.setattr(moto.kms.utils, "rsa", RSA_KEY_POOL)


# Under pytest-xdist (`make tests` runs `-n 2 --dist loadgroup`), the tests that share one started
# local stack stay on one worker, so each stack starts once, as in a plain run.
STACK_GROUPS = {"attack": "attack-stack", "local": "local-stack"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests_dir).parts if item.path.is_relative_to(tests_dir) else ()
        if parts and parts[0] in STACK_GROUPS:
            item.add_marker(pytest.mark.xdist_group(STACK_GROUPS[parts[0]]))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, no endpoint overrides, no real network, a fresh container's state."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "InferenceApiTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "test")
    use_runtime(monkeypatch=monkeypatch)
    yield


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Handler tests must not open a connection anywhere; black-box tests opt out."""
    if request.node.get_closest_marker("blackbox"):
        return

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("network access in a unit test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Table, bucket and signing key from template.yaml in moto, wired into the settings."""
    with mock_aws():
        names = create_resources_from_template(aws_session("us-east-1"))
        monkeypatch.setenv("TABLE_NAME", names.table_name)
        monkeypatch.setenv("MODEL_BUCKET", names.bucket)
        monkeypatch.setenv("SIGNING_KEY_ID", names.key_id)
        monkeypatch.setenv("ACTIVITY_TABLE_NAME", names.activity_table)
        monkeypatch.setenv("CURSOR_KEY_ID", names.cursor_key_id)
        monkeypatch.setenv("CAPTURE_BUCKET", names.bucket)
        monkeypatch.setenv("TENANT_DATA_ROLE_ARN", names.tenant_data_role_arn)
        use_runtime(monkeypatch=monkeypatch)
        yield Stack(names.table_name, names.bucket, names.key_id)


@pytest.fixture
def demo(stack: Stack) -> Stack:
    """The stack with the two demo tenants: alice -> model_user_a.pkl, bob -> model_user_b.pkl."""
    for username, password, tenant_id, model_file in (ALICE, BOB):
        onboard(username, password, tenant_id, model_file)
    return stack


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def alice_token(demo: Stack) -> str:
    return token_for("alice", "tenant-a")


@pytest.fixture
def bob_token(demo: Stack) -> str:
    return token_for("bob", "tenant-b")


@pytest.fixture
def s3_calls(demo: Stack) -> list[str]:
    """Every S3 operation the code under test makes, by name."""
    calls: list[str] = []
    client = demo.runtime.s3
    client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    return calls


@pytest.fixture
def inferctl(capsys: pytest.CaptureFixture[str]) -> Any:
    """`inferctl(*argv, stdin=...)`: the operator CLI in-process (`run_inferctl`); its `CliRun`."""
    return functools.partial(run_inferctl, capsys)
