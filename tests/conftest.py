"""Shared fixtures, for every kind of test: moto in-process AWS built from template.yaml, demo
tenants, tokens. Plain helpers (Stack, load_event, token_for, onboard...) are in tests/support.py.

Unit and handler tests never touch the network: moto's `mock_aws` intercepts boto3, the AWS
endpoint variables are removed, and resources are created from the template's own definitions.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
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

import boto3
import pytest
from moto import mock_aws

from tests.support import (
    ALICE,
    BOB,
    FakeLambdaContext,
    Stack,
    create_resources_from_template,
    onboard,
    token_for,
    use_runtime,
)


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
        names = create_resources_from_template(boto3.session.Session(region_name="us-east-1"))
        monkeypatch.setenv("TABLE_NAME", names.table_name)
        monkeypatch.setenv("MODEL_BUCKET", names.bucket)
        monkeypatch.setenv("SIGNING_KEY_ID", names.key_id)
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
