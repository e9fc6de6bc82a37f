"""Test helpers shared by the unit, handler and black-box suites (not fixtures: plain functions and
classes, imported from here; the fixtures are in tests/conftest.py and reach every test by themselves)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.loaders
import botocore.session
from model_runtime.settings import read_settings
from model_runtime.table import Tenant
from model_serving.models import PredictRuntime

# Moved to local/ (the local stack builds the same resources); re-exported for the tests.
from local.resources import ResourceNames, create_resources_from_template, template_resources  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"
EVENTS_DIR = REPO_ROOT / "events"
MODELS_DIR = REPO_ROOT / "models"

ALICE = ("alice", "alice-local-demo", "tenant-a", "model_user_a.pkl")
BOB = ("bob", "bob-local-demo", "tenant-b", "model_user_b.pkl")


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


def onboard(username: str, password: str, tenant_id: str, model_file: str, max_batch: int = 1000) -> None:
    """Onboard as the operator does the demo models: trusted pickles, converted to ONNX."""
    from inferctl.onboarding import create_user, put_model  # noqa: PLC0415 - imports scikit-learn

    data = (MODELS_DIR / model_file).read_bytes()
    runtime = current_runtime()
    put_model(runtime, tenant_id, data, max_batch, new_tenant=True, filename=model_file, trust_pickle=True)
    create_user(runtime, username, password, tenant_id)


def load_event(name: str, **replacements: str) -> dict[str, Any]:
    """An `events/` file; `<placeholder>` strings in headers and body are replaced."""
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    text = json.dumps(event)
    for placeholder, value in replacements.items():
        text = text.replace(f"<{placeholder.replace('_', '-')}>", value)
    replaced: dict[str, Any] = json.loads(text)
    return replaced


def token_for(username: str, tenant_id: str, now: int | None = None) -> str:
    return current_runtime().tokens.issue(username, tenant_id, now).access_token


@cache
def served_bytes(model_file: str) -> bytes:
    """What a demo model is served as: its ONNX conversion (deterministic for a given
    scikit-learn and skl2onnx), which is what the mapping pins."""
    from registry.registration import register  # noqa: PLC0415

    data = (REPO_ROOT / "models" / model_file).read_bytes()
    return register(model_file, data, trust_pickle=True).data


def served_digest(model_file: str) -> str:
    """The SHA-256 the mapping pins for a demo model (clients see its first 12 hex digits)."""
    return hashlib.sha256(served_bytes(model_file)).hexdigest()


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


# The handler modules, each with its module-level `runtime` (built at import, Lambda's init).
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def child_environment(
    pythonpath: list[Path], service: str, *, without: tuple[str, ...] = (), **variables: str
) -> dict[str, str]:
    """The environment of a fresh interpreter that imports only from `pythonpath`: this process's
    variables without AWS, Python or Powertools ones (nor the names in `without`), and Powertools
    set for `service`; `variables` are added last."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "PYTHON", "POWERTOOLS_")) and name not in without
    }
    env.update(
        PYTHONPATH=os.pathsep.join(str(path) for path in pythonpath),
        POWERTOOLS_SERVICE_NAME=service,
        POWERTOOLS_METRICS_NAMESPACE="InferenceApiTest",
    )
    env.update(variables)
    return env


HANDLER_MODULES = (
    "functions.login.app",
    "functions.predict.app",
    "functions.authorizer.app",
    "functions.admin.app",
)


class _Patcher(Protocol):
    def setattr(self, target: Any, name: str, value: Any) -> None: ...


def use_runtime(runtime: PredictRuntime | None = None, monkeypatch: _Patcher | None = None) -> PredictRuntime:
    """Give every handler module a fresh container's state (settings read from the environment
    now, no client, mapping, key, token or model yet) and return it: one object for the three
    functions, as the per-process globals were. With `monkeypatch`, undone after the test."""
    import importlib  # noqa: PLC0415

    fresh = runtime or PredictRuntime(read_settings(), session=aws_session())
    for name in HANDLER_MODULES:
        module = sys.modules.get(name) or importlib.import_module(name)
        if monkeypatch is None:
            module.runtime = fresh  # type: ignore[attr-defined]
        else:
            monkeypatch.setattr(module, "runtime", fresh)
    return fresh


@cache
def _botocore_data() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def aws_session(region_name: str | None = None) -> boto3.session.Session:
    """A new boto3 session (region, credentials and endpoints read from the environment when its
    clients are made), sharing one loader of botocore's data files with every other test: a new
    session parses them again, about 0.1 s per service, three services per test."""
    core = botocore.session.get_session()
    loader = _botocore_data()
    core.register_component("data_loader", loader)
    session = boto3.session.Session(botocore_session=core, region_name=region_name)
    # boto3 adds its resource data directory to the loader's search path on every new session.
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


def current_runtime() -> PredictRuntime:
    """The state the handlers use now (`use_runtime`)."""
    from functions.predict import app  # noqa: PLC0415

    return app.runtime


# --- handler responses -----------------------------------------------------------------------

# The README's six security headers with the values the functions send. Written out here, not imported from
# `model_runtime.http`, so a change to the production values fails the tests.
EXPECTED_SECURITY_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def response_headers(response: dict[str, Any]) -> dict[str, list[str]]:
    """A handler response's headers by lower-cased name, `multiValueHeaders` and `headers` merged
    (a handler may fill either; API Gateway sends both)."""
    merged: dict[str, list[str]] = {}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        merged.setdefault(name.lower(), []).extend(values)
    for name, value in (response.get("headers") or {}).items():
        values = merged.setdefault(name.lower(), [])
        if value not in values:
            values.append(value)
    return merged


def response_header(response: dict[str, Any], name: str) -> str | None:
    """The one value of header `name`, or None when absent; several values fail the test."""
    values = response_headers(response).get(name.lower())
    if values is None:
        return None
    assert len(values) == 1, f"{name} sent {len(values)} times: {values!r}"
    return values[0]


def assert_security_headers(response: dict[str, Any]) -> None:
    """Every response, errors included, carries each security header once with its exact value."""
    headers = response_headers(response)
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == [value], f"{name}: {headers.get(name.lower())!r}"


def assert_problem(
    response: dict[str, Any], status: int, *, oauth_error: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem+json response with `status`; returns the parsed body. Token-endpoint
    errors also carry RFC 6749 5.2's `error` member: pass the code they must carry."""
    assert response["statusCode"] == status
    assert response_header(response, "Content-Type") == "application/problem+json"
    problem: dict[str, Any] = json.loads(response["body"])
    assert set(problem) == {"type", "title", "status", "detail"} | ({"error"} if oauth_error else set())
    assert problem.get("error") == oauth_error
    assert problem["status"] == status
    assert all(isinstance(problem[name], str) and problem[name] for name in ("type", "title", "detail"))
    return problem


# --- the operator CLI, in-process -----------------------------------------------------------------


@dataclass
class CliRun:
    """What one `inferctl` command did: its exit status, stdout and stderr."""

    code: int
    out: str
    err: str


def run_inferctl(capsys: Any, *argv: str, stdin: str = "") -> CliRun:
    """The console script's entry point, in-process (any exception escaping it fails the test:
    that would be a traceback for the operator); then a fresh container, so the request path
    reads the mapping as the table now holds it."""
    from inferctl.cli import main  # noqa: PLC0415

    out = io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out)
    err = capsys.readouterr().err
    use_runtime()
    return CliRun(code, out.getvalue(), err)
