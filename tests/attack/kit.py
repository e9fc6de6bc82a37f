"""The attack suite's kit: plain helpers the tests and the fixtures import from here (the fixtures
and hooks are in conftest.py and reach the tests by themselves). `Api` and `Reply` speak HTTP to the
API under attack, `Caller` is a tenant's user with a live token, `Operator` the local stack's
operator (the inferctl CLI, moto's AWS APIs), and `start_local_stack`/`start_provisioning` start it
and onboard throwaway users.

Every reply goes through `Api.check`: never a 5xx unless a test says so, never a stack trace,
exception name or resource name in the body, and the README's six security headers. On AWS the
template's GatewayResponses give the gateway's own answers our headers and problem+json shape, and
so does `make serve`'s gateway (local/gateway.py). `sam local start-api` (make test-sam-local,
LOCAL_STACK_URL) does not: it answers unknown routes and methods with 403 `{"message": "Missing
Authentication Token"}` and none of our headers. So the headers are asserted on every reply a
function produced, and on the gateway's own replies except against `sam local start-api`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.forge import b64url, b64url_json, parts
from tests.support import EXPECTED_SECURITY_HEADERS, REPO_ROOT

READY = re.compile(r"Serving (http://127\.0\.0\.1:\d+) \(moto at (http://127\.0\.0\.1:\d+)\)")
STARTUP_SECONDS = 120  # a bound for a slow machine, not a performance assertion
REQUEST_TIMEOUT_SECONDS = 60

# What no reply body may contain: stack traces, exception names, AWS identifiers, storage keys.
LEAK_MARKERS = (
    "Traceback",
    "Error:",
    "Exception",
    'File "',
    "botocore",
    "arn:aws",
    ".pkl",
    ".onnx",
    ".skops",
    "tenant#",
    "user#",
)
PROBLEM_FIELDS = {"type", "title", "status", "detail"}
OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type"}

SMOKE_URL = os.environ.get("SMOKE_URL", "").rstrip("/")
DEPLOYED = bool(SMOKE_URL)
# A local stack started by someone else (local.sam_local): its API's URL and its env.sh's directory.
RUNNING_STACK_URL = os.environ.get("LOCAL_STACK_URL", "").rstrip("/")
RUNNING_STACK_DIR = os.environ.get("LOCAL_STACK_DIR", "")

# Request timings of the model-DoS tests, printed at the end of the run (no assertions on them).
TIMINGS: list[tuple[str, int, float]] = []

# --- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@dataclass
class Api:
    base_url: str
    accounts: tuple[Account, Account]
    deployed: bool
    secrets: tuple[str, ...] = ()  # resource names no body may contain (known locally)
    extra_headers: Mapping[str, str] = field(default_factory=dict)  # sent with every request

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = "application/json",
        allow_5xx: bool = False,
        check_headers: bool = True,
        names_bucket: bool = False,
    ) -> Reply:
        """One request on a fresh connection; the reply is checked (see the module docstring)."""
        url = urlsplit(self.base_url)
        if isinstance(body, Mapping | list):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        sent: dict[str, str] = {}
        if content_type and data is not None:
            sent["Content-Type"] = content_type
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(self.extra_headers)
        sent.update(headers or {})
        connection_class = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(url.hostname or "", url.port, timeout=REQUEST_TIMEOUT_SECONDS)
        started = time.perf_counter()
        try:
            # The server may answer and close before reading all of the request (a 431 for an
            # oversized header): its answer may still be there to read.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request(method, url.path + path, body=data, headers=sent)
            response = connection.getresponse()
            reply = Reply(response.status, response.headers, response.read(), time.perf_counter() - started)
        finally:
            connection.close()
        self.check(reply, allow_5xx=allow_5xx, check_headers=check_headers, names_bucket=names_bucket)
        return reply

    def check(
        self, reply: Reply, *, allow_5xx: bool = False, check_headers: bool = True, names_bucket: bool = False
    ) -> None:
        """`names_bucket`: an upload form, whose URL is the model bucket's (where the client posts)."""
        assert allow_5xx or reply.status < 500, f"server error {reply.status}: {reply.body[:300]!r}"
        text = reply.body.decode("utf-8", "replace")
        for marker in (*LEAK_MARKERS, *(() if names_bucket else self.secrets)):
            assert marker not in text, f"reply {reply.status} leaks {marker!r}: {text[:300]!r}"
        assert reply.header("Set-Cookie") is None, "the API is stateless: it sets no cookie"
        from_function = not from_local_gateway(reply)
        if check_headers and (from_function or not RUNNING_STACK_URL):
            assert_security_headers(reply)
            if reply.status >= 400:
                assert_problem(reply)

    def login(self, account: Account) -> str:
        reply = self.request(
            "POST", "/api/v1/auth/token", {"username": account.username, "password": account.password}
        )
        assert reply.status == 200, f"login as {account.username}: {reply.status} {reply.body[:200]!r}"
        token: str = reply.json()["access_token"]
        return token


def from_local_gateway(reply: Reply) -> bool:
    """A reply SAM's local gateway (or werkzeug under it) made itself: `{"message": ...}` JSON or
    an HTML error page. The functions never send either."""
    if reply.headers.get_content_type() == "text/html":
        return True
    try:
        body = json.loads(reply.body)
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"message"}


def assert_security_headers(reply: Reply) -> None:
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get_all(name) == [value], f"{reply.status} {name}: {reply.headers.get_all(name)}"


def assert_problem(reply: Reply) -> dict[str, Any]:
    assert reply.headers.get_content_type() == "application/problem+json", reply.headers
    body: dict[str, Any] = reply.json()
    # Token-endpoint errors add RFC 6749 5.2's `error` member, and nothing else does
    assert PROBLEM_FIELDS <= set(body) <= PROBLEM_FIELDS | {"error"} and body["status"] == reply.status, body
    assert body.get("error", "invalid_request") in OAUTH_ERRORS, body
    return body


# --- callers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """A tenant's user with a live token and its model card."""

    account: Account
    token: str
    card: dict[str, Any]

    @property
    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = parts(self.token)[1]
        return claims

    @property
    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = parts(self.token)[0]
        return header

    def rows(self, count: int = 1, width: int | None = None) -> list[list[float]]:
        """`count` rows of numbers that fit this caller's model (or `width` numbers)."""
        n = self.card["n_features"] if width is None else width
        return [[round(0.5 + 0.25 * (i + j), 2) for j in range(n)] for i in range(count)]


def caller(api: Api, account: Account) -> Caller:
    token = api.login(account)
    card = api.request("GET", "/api/v1/model", token=token)
    assert card.status == 200, card.body
    return Caller(account, token, card.json())


def assert_still_served(api: Api, who: Caller) -> None:
    """After an attack, the legitimate token still gets its model card."""
    reply = api.request("GET", "/api/v1/model", token=who.token)
    assert reply.status == 200 and reply.json()["version"] == who.card["version"]


# --- the API under attack -----------------------------------------------------------------------


@dataclass
class LocalStack:
    process: subprocess.Popen[bytes] | None  # None: a stack this session did not start
    url: str
    moto_url: str
    env_sh: Path
    log: Path | None
    provisioned: Provisioned | None = None
    provisioning: subprocess.Popen[bytes] | None = None  # the CLI onboarding `provisioned`

    def stop(self) -> int | None:
        if self.provisioning is not None and self.provisioning.poll() is None:
            self.provisioning.kill()
            self.provisioning.wait(timeout=10)
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: the stack stops its servers and exits
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def child_environment() -> dict[str, str]:
    """This environment without anything that could point the stack elsewhere: it sets its own
    endpoint, credentials, resource names and Powertools settings."""
    dropped = ("AWS_", "POWERTOOLS_", "TABLE_NAME", "MODEL_BUCKET", "SIGNING_KEY_ID", "SMOKE_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(dropped)}
    return env | {"PYTHONUNBUFFERED": "1"}


def start_local_stack(directory: Path) -> LocalStack:
    log = directory / "serve.log"
    env_file = directory / "env.json"  # not .local/: a developer's `make serve` keeps its own
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.serve",
                "--port",
                "0",
                "--moto-port",
                "0",
                "--env-file",
                str(env_file),
            ],
            cwd=REPO_ROOT,
            env=child_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on pytest must not hit it first
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        match = READY.search(log.read_text(errors="replace"))
        if match:
            return LocalStack(process, match[1], match[2], env_file.with_suffix(".sh"), log)
        time.sleep(0.1)
    process.kill()
    process.wait()
    pytest.fail(f"the local stack did not start:\n{log.read_text(errors='replace')}")


def read_env_sh(path: Path) -> dict[str, str]:
    """`export NAME=value` lines (shell-quoted) of the stack's env.sh."""
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def smoke_accounts() -> tuple[Account, Account]:
    names = ("SMOKE_USERNAME", "SMOKE_PASSWORD", "SMOKE_USERNAME_2", "SMOKE_PASSWORD_2")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.fail(f"SMOKE_URL is set: also set {', '.join(missing)} (users of two different tenants)")
    user1, password1, user2, password2 = (os.environ[name] for name in names)
    return Account(user1, password1), Account(user2, password2)


# --- the operator's access (local stack only) ---------------------------------------------------

_INFERCTL_BATCH = """
import io, json, sys
from inferctl.cli import main
for argv, stdin in json.loads(sys.argv[1]):
    if main(argv, stdin=io.StringIO(stdin), stdout=io.StringIO()) != 0:
        sys.exit("inferctl " + " ".join(argv[:2]) + " failed")
"""


@dataclass(frozen=True)
class Provisioned:
    """Throwaway tenants and users the operator onboards for the tests that need them, so that
    the demo users are never disabled or locked out."""

    disabled_tenant: str  # its user logs in, then the tenant is disabled
    disabled_user: Account
    unmapped_tenant: str  # its user logs in, then the mapping item is deleted
    unmapped_user: Account
    lockable_user: Account  # a real user of tenant 1, to lock out with the right password
    tenant_admin: Account  # an admin of tenant 1 (tests/attack/test_tenant_admin.py)
    upload_tenant: str  # a tenant whose admin uploads models (tests/attack/test_model_uploads.py)
    upload_admin: Account

    @classmethod
    def new(cls) -> Provisioned:
        suffix = uuid.uuid4().hex[:8]

        def account(role: str) -> Account:
            return Account(f"{role}-{suffix}", f"pw-{uuid.uuid4().hex}")

        return cls(
            f"disabled-{suffix}",
            account("disabled"),
            f"unmapped-{suffix}",
            account("unmapped"),
            account("lockable"),
            account("admin"),
            f"uploads-{suffix}",
            account("uploader"),
        )

    def commands(self) -> list[tuple[list[str], str]]:
        model = "models/model_user_a.pkl"
        commands: list[tuple[list[str], str]] = []
        for tenant, user in (
            (self.disabled_tenant, self.disabled_user),
            (self.unmapped_tenant, self.unmapped_user),
        ):
            commands.append((["create-tenant", tenant, "--model", model, "--trust-pickle"], ""))
            commands.append(
                (["create-user", user.username, "--tenant", tenant, "--password-stdin"], user.password)
            )
        lockable = self.lockable_user
        commands.append(
            (
                ["create-user", lockable.username, "--tenant", "tenant-a", "--password-stdin"],
                lockable.password,
            )
        )
        # Tenant 2's model, not tenant 1's: its versions' digests are then none of tenant 1's.
        upload_model = "models/model_user_b.pkl"
        commands.append(
            (["create-tenant", self.upload_tenant, "--model", upload_model, "--trust-pickle"], "")
        )
        uploader = self.upload_admin
        commands.append(
            (
                [
                    "create-user",
                    uploader.username,
                    "--tenant",
                    self.upload_tenant,
                    "--role",
                    "admin",
                    "--password-stdin",
                ],
                uploader.password,
            )
        )
        admin = self.tenant_admin
        commands.append(
            (
                [
                    "create-user",
                    admin.username,
                    "--tenant",
                    "tenant-a",
                    "--role",
                    "admin",
                    "--password-stdin",
                ],
                admin.password,
            )
        )
        return commands


@dataclass
class Operator:
    """What the operator of the local stack can do: the inferctl CLI, and moto's AWS APIs."""

    env: dict[str, str]
    provisioned: Provisioned

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def sign(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        """A token signed by the stack's own KMS key: valid signature, whatever the claims say.
        It separates claim checks from signature checks, which an outsider cannot do."""
        signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
        signature = self.client("kms").sign(
            KeyId=self.env["SIGNING_KEY_ID"],
            Message=signing_input.encode(),
            MessageType="RAW",
            SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
        )["Signature"]
        return f"{signing_input}.{b64url(signature)}"


def start_provisioning(env: Mapping[str, str], provisioned: Provisioned) -> subprocess.Popen[bytes]:
    """The operator's CLI commands, in one process, started as soon as the stack is up: it
    imports scikit-learn and hashes passwords, which overlaps with the tests that need none of it."""
    return subprocess.Popen(
        [sys.executable, "-c", _INFERCTL_BATCH, json.dumps(provisioned.commands())],
        cwd=REPO_ROOT,
        env=child_environment() | dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
