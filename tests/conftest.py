"""Shared fixtures: moto in-process AWS built from template.yaml, demo tenants, events, tokens.

Unit and handler tests never touch the network: moto's `mock_aws` intercepts boto3, the AWS
endpoint variables are removed, and resources are created from the template's own definitions.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
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
from model_runtime.table import Tenant
from model_serving.models import PredictRuntime
from moto import mock_aws

from inferctl.onboarding import create_user, put_model
from tests.support import (
    REPO_ROOT,
    FakeLambdaContext,
    create_resources_from_template,
    current_runtime,
    use_runtime,
)

EVENTS_DIR = REPO_ROOT / "events"
MODELS_DIR = REPO_ROOT / "models"

ALICE = ("alice", "alice-local-demo", "tenant-a", "model_user_a.pkl")
BOB = ("bob", "bob-local-demo", "tenant-b", "model_user_b.pkl")


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


@dataclass
class Stack:
    table_name: str
    bucket: str
    key_id: str

    @property
    def runtime(self) -> PredictRuntime:
        """The state the handlers use now (a test may install a fresh one: `use_runtime`)."""
        return current_runtime()

    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self.runtime.table.get_tenant(tenant_id)
        assert tenant is not None
        return tenant


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


def onboard(username: str, password: str, tenant_id: str, model_file: str, max_batch: int = 1000) -> None:
    """Onboard as the operator does the demo models: trusted pickles, converted to ONNX."""
    data = (MODELS_DIR / model_file).read_bytes()
    runtime = current_runtime()
    put_model(runtime, tenant_id, data, max_batch, new_tenant=True, filename=model_file, trust_pickle=True)
    create_user(runtime, username, password, tenant_id)


@pytest.fixture
def demo(stack: Stack) -> Stack:
    """The stack with the two demo tenants: alice -> model_user_a.pkl, bob -> model_user_b.pkl."""
    for username, password, tenant_id, model_file in (ALICE, BOB):
        onboard(username, password, tenant_id, model_file)
    return stack


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str, **replacements: str) -> dict[str, Any]:
    """An `events/` file; `<placeholder>` strings in headers and body are replaced."""
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    text = json.dumps(event)
    for placeholder, value in replacements.items():
        text = text.replace(f"<{placeholder.replace('_', '-')}>", value)
    return json.loads(text)


def token_for(username: str, tenant_id: str, now: int | None = None) -> str:
    return current_runtime().tokens.issue(username, tenant_id, now).access_token


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
