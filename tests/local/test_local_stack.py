"""The local stack, black-box: `python -m local.serve` in a subprocess, spoken to over HTTP only.

This is the README walkthrough: log in, predict, read the model card, try to reach another
tenant's model, send too many rows; then an operator onboards a third tenant with the CLI (in its
own process, against the same moto server) and its user predicts at once. The README's own
commands run too, and print what it shows under them (`tests/readme_transcript.py`). Stopping the
stack must leave no process and no listening port behind.

With LOCAL_STACK_URL and LOCAL_STACK_DIR set (`make test-sam-local`), the walkthrough runs against
that running stack instead (the API from `sam local start-api`, the directory holding its
env.json), and the stopping tests, which are about `python -m local.serve` itself, are left to
`make test`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import joblib
import numpy as np
import pytest
import requests
import skops.io
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from sklearn.linear_model import LogisticRegression

from local.fault_drill import PhaseResult, Traffic, demo_clients, start_moto, stop_process, verdict
from local.resources import load_template
from registry.registration import register
from tests.readme_transcript import ELISION, differences, transcript
from tests.support import EXPECTED_SECURITY_HEADERS, REPO_ROOT, served_digest

pytestmark = pytest.mark.blackbox

MODELS_DIR = REPO_ROOT / "models"
READY = re.compile(
    r"Serving (http://127\.0\.0\.1:\d+) \((?:moto at|AWS endpoint) (http://127\.0\.0\.1:\d+)\)"
)
STARTUP_SECONDS = 180  # a generous bound for a slow CI machine, not a performance assertion

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
WINE_ROW = [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]


RUNNING_STACK_URL = os.environ.get("LOCAL_STACK_URL", "").rstrip("/")
RUNNING_STACK_DIR = os.environ.get("LOCAL_STACK_DIR", "")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    moto_url: str
    env_file: Path
    log: Path

    def stop(self, signum: int = signal.SIGINT) -> int:  # SIGINT: what Ctrl-C sends
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=30)


def child_environment(**extra: str) -> dict[str, str]:
    """This environment minus anything that could reach real AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


def start_server(tmp: Path, **variables: str) -> Server:
    log = tmp / "serve.log"
    env_file = tmp / "env.json"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.serve", "--env-file", str(env_file)],
            cwd=REPO_ROOT,
            env=child_environment(PORT="0", MOTO_PORT="0", **variables),  # free ports, through the variables
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: every process it starts is findable below
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        match = READY.search(log.read_text(errors="replace"))
        if match:
            return Server(process, match[1], match[2], env_file, log)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    process.wait()
    pytest.fail(f"local stack did not start:\n{log.read_text(errors='replace')}")


def session_processes(session_id: int) -> list[int]:
    """Pids of live processes in a session (field 6 of /proc/<pid>/stat)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[3]) == session_id and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


@dataclass
class RunningServer:
    """A stack someone else started and stops (local.sam_local)."""

    url: str
    moto_url: str
    env_file: Path


Served = Server | RunningServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server | RunningServer]:
    if RUNNING_STACK_URL:
        env_file = Path(RUNNING_STACK_DIR) / "env.json"
        moto_url = json.loads(env_file.read_text())["PredictFunction"]["AWS_ENDPOINT_URL"]
        yield RunningServer(RUNNING_STACK_URL, moto_url, env_file)
        return
    running = start_server(tmp_path_factory.mktemp("local-stack"))
    yield running
    running.stop()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def http(
    method: str, url: str, body: Any = None, token: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback http only
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            status, raw, reply_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, reply_headers = error.code, error.read(), error.headers
    return Reply(status, {k.lower(): v for k, v in reply_headers.items()}, json.loads(raw) if raw else None)


def login(server: Served, username: str, password: str) -> str:
    reply = http("POST", f"{server.url}/api/v1/auth/token", {"username": username, "password": password})
    assert reply.status == 200, reply.body
    assert reply.body["token_type"] == "Bearer"
    token: str = reply.body["access_token"]
    return token


def file_model(name: str) -> tuple[Any, str]:
    """A committed model and the version clients see: the first 12 hex digits of the SHA-256 of
    what it is served as (its ONNX conversion)."""
    return joblib.load(MODELS_DIR / name), served_digest(name)[:12]


# --- the walkthrough ---------------------------------------------------------------------------


def test_alice_predicts_with_her_model(server: Served) -> None:
    # Given alice's token
    token = login(server, "alice", "alice-local-demo")
    # When she sends three Iris rows
    reply = http("POST", f"{server.url}/api/v1/predict", {"instances": IRIS_ROWS}, token)
    # Then the answer is exactly what her model file predicts, with its version
    model, version = file_model("model_user_a.pkl")
    assert reply.status == 200, reply.body
    assert reply.body == {
        "predictions": model.predict(np.array(IRIS_ROWS)).tolist(),
        "model_version": version,
    }
    # And the response carries the security headers
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value


def test_alice_reads_her_prediction_back_from_her_history(server: Served) -> None:
    # Given alice's prediction, and the request id it answered with
    token = login(server, "alice", "alice-local-demo")
    reply = http("POST", f"{server.url}/api/v1/predict", {"instances": IRIS_ROWS[:1]}, token)
    request_id = reply.headers["x-request-id"]
    # When she reads her history (the subscription delivers predict's line in the background)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        record = http("GET", f"{server.url}/api/v1/history/{request_id}", token=token)
        if record.status == 200:
            break
        time.sleep(0.1)
    # Then her record is there, and it is the newest on her first page
    assert record.status == 200, record.body
    assert record.body["request_id"] == request_id and record.body["rows"] == 1
    page = http("GET", f"{server.url}/api/v1/history?limit=1", token=token)
    assert page.status == 200 and page.body["records"][0]["request_id"] == request_id
    # And bob sees none of it
    bob = login(server, "bob", "bob-local-demo")
    assert http("GET", f"{server.url}/api/v1/history/{request_id}", token=bob).status == 404


def test_bob_predicts_with_his_model(server: Served) -> None:
    # Given bob's token
    token = login(server, "bob", "bob-local-demo")
    # When he sends a 13-feature Wine row
    reply = http("POST", f"{server.url}/api/v1/predict", {"instances": [WINE_ROW]}, token)
    # Then his model answers
    model, version = file_model("model_user_b.pkl")
    assert reply.status == 200, reply.body
    assert reply.body == {
        "predictions": model.predict(np.array([WINE_ROW])).tolist(),
        "model_version": version,
    }


def test_model_card_is_the_callers_own(server: Served) -> None:
    # Given alice's token
    token = login(server, "alice", "alice-local-demo")
    # When she reads the model card
    reply = http("GET", f"{server.url}/api/v1/model", token=token)
    # Then it describes her 4-feature model and names no storage location
    assert reply.status == 200
    assert reply.body["n_features"] == 4
    assert reply.body["classes"] == [0, 1, 2]
    assert reply.body["version"] == file_model("model_user_a.pkl")[1]
    assert "models/" not in json.dumps(reply.body)


def test_naming_another_tenant_in_headers_or_query_changes_nothing(server: Served) -> None:
    # Given alice's token, and a request that names bob's tenant and model in headers and query
    token = login(server, "alice", "alice-local-demo")
    smuggled = {"X-Tenant-Id": "tenant-b", "X-Model-Id": "model_user_b"}
    url = f"{server.url}/api/v1/predict?tenant_id=tenant-b&model=model_user_b.pkl"
    # When she sends Iris rows that way
    reply = http("POST", url, {"instances": IRIS_ROWS}, token, smuggled)
    # Then her own model answers
    assert reply.status == 200
    assert reply.body["model_version"] == file_model("model_user_a.pkl")[1]
    # And a Wine row (bob's model's shape) is refused, not routed to bob's model
    wine = http("POST", url, {"instances": [WINE_ROW]}, token, smuggled)
    assert wine.status == 400
    assert wine.headers["content-type"] == "application/problem+json"
    # And a tenant in the body is refused outright
    in_body = http("POST", url, {"instances": IRIS_ROWS, "tenant_id": "tenant-b"}, token)
    assert in_body.status == 400


def test_oversized_batch_is_400(server: Served) -> None:
    # Given alice's token (max_batch 1000)
    token = login(server, "alice", "alice-local-demo")
    # When she sends 1001 rows
    reply = http("POST", f"{server.url}/api/v1/predict", {"instances": [IRIS_ROWS[0]] * 1001}, token)
    # Then it is a problem+json 400
    assert reply.status == 400
    assert reply.body["status"] == 400
    assert reply.headers["content-type"] == "application/problem+json"


def test_wrong_password_is_401(server: Served) -> None:
    # Given alice's username with bob's password
    # When she logs in
    reply = http(
        "POST", f"{server.url}/api/v1/auth/token", {"username": "alice", "password": "bob-local-demo"}
    )
    # Then it is a 401
    assert reply.status == 401


def test_env_file_points_sam_local_at_the_same_moto_server(server: Served) -> None:
    # Given the env-vars file the stack wrote for `sam local start-api --env-vars`
    environments = json.loads(server.env_file.read_text())
    # Then each function gets the template's variables, resolved, and the moto endpoint
    assert set(environments) == {
        "LoginFunction",
        "PredictFunction",
        "AuthorizerFunction",
        "HistoryWriterFunction",
        "HistoryFunction",
        "AdminFunction",
        "RegisterFunction",
    }
    for variables in environments.values():
        assert variables["AWS_ENDPOINT_URL"] == server.moto_url
        assert variables["TABLE_NAME"] == "local-inference"
        assert variables["SIGNING_KEY_ID"]
    assert environments["LoginFunction"]["POWERTOOLS_SERVICE_NAME"] == "login"
    assert environments["PredictFunction"]["MODEL_BUCKET"].startswith("local-models-")
    assert environments["PredictFunction"]["MAX_BODY_BYTES"] == "1048576"  # the template's default
    assert environments["HistoryFunction"]["ACTIVITY_TABLE_NAME"] == "local-activity"
    assert environments["HistoryFunction"]["CURSOR_KEY_ID"]


def inferctl(server: Served, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The operator CLI in its own process, pointed at the stack's moto server."""
    variables: dict[str, str] = {}
    for function_env in json.loads(server.env_file.read_text()).values():
        variables |= function_env
    env = child_environment(
        AWS_ENDPOINT_URL=server.moto_url,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        TABLE_NAME=variables["TABLE_NAME"],
        MODEL_BUCKET=variables["MODEL_BUCKET"],
        SIGNING_KEY_ID=variables["SIGNING_KEY_ID"],
        ACTIVITY_TABLE_NAME=variables["ACTIVITY_TABLE_NAME"],  # the audit trail of admin commands
        INFERENCE_STACK="local",  # what .local/env.sh exports: the stack's usage plans (tiers)
    )
    return subprocess.run(
        [sys.executable, "-m", "inferctl", *argv],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_tenant_onboarded_with_the_cli_can_predict_at_once(server: Served, tmp_path: Path) -> None:
    # Given a new 3-feature model trained here
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(60, 3))
    model = LogisticRegression().fit(rows, (rows[:, 0] + rows[:, 2] > 0).astype(int))
    path = tmp_path / "dave.skops"
    path.write_bytes(skops.io.dumps(model))
    # When an operator onboards tenant-d and its user with the CLI, against the running stack
    created = inferctl(server, "create-tenant", "tenant-d", "--model", str(path))
    user = inferctl(
        server, "create-user", "dave", "--tenant", "tenant-d", "--password-stdin", stdin="dave-pw-1234\n"
    )
    assert created.returncode == 0, created.stderr
    assert user.returncode == 0, user.stderr
    # Then dave can log in and predict right away, with tenant-d's model
    token = login(server, "dave", "dave-pw-1234")
    sample = rows[:5].tolist()
    reply = http("POST", f"{server.url}/api/v1/predict", {"instances": sample}, token)
    assert reply.status == 200, reply.body
    assert reply.body["predictions"] == model.predict(np.array(sample)).tolist()
    served = register("dave.skops", path.read_bytes()).data  # the ONNX conversion, deterministic
    assert reply.body["model_version"] == hashlib.sha256(served).hexdigest()[:12]
    # And the CLI's listing shows the new user and no password hash
    users = inferctl(server, "list-users")
    assert users.returncode == 0 and "dave" in users.stdout and "argon2" not in users.stdout


def test_cli_errors_are_one_line_and_exit_1(server: Served) -> None:
    # Given the running stack
    # When the operator onboards a tenant with a file that does not exist
    run = inferctl(server, "create-tenant", "tenant-e", "--model", "/nonexistent/model.pkl")
    # Then one error line on stderr, exit status 1
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.startswith("error: cannot read /nonexistent/model.pkl")
    assert run.stderr.count("\n") == 1


# --- the README's commands print what it shows -------------------------------------------------------

_ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$")


def pointed_here(command: str, server: Served, tmp_path: Path) -> str:
    """A README command with what it points at (port 3000, the repository's .venv and .local,
    /tmp) replaced, in one pass, by this stack, this interpreter and the test's own directory."""
    places = {
        "http://127.0.0.1:3000": server.url,
        ". .local/env.sh": f". {server.env_file.parent / 'env.sh'}",
        ".venv/bin/": f"{Path(sys.executable).parent}/",
        "/tmp/": f"{tmp_path}/",
    }
    return re.sub("|".join(map(re.escape, places)), lambda match: places[match[0]], command)


def run_readme_step(command: str, env: dict[str, str], cwd: Path, previous: str) -> str:
    """Run one README command as a reader's shell would: `NAME=value` and `. file` change the
    environment of the commands after them; anything else prints (stdout and stderr, as a
    terminal shows them)."""

    def bash(script: str) -> str:
        run = subprocess.run(
            ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    assignment = _ASSIGNMENT.match(command)
    if assignment:
        name, value = assignment.groups()
        # A value the README shortens (the token): the one the command before it printed.
        env[name] = (
            json.loads(previous)["access_token"]
            if ELISION in value
            else bash(f'{command}\nprintf %s "${name}"')
        )
        return ""
    if command.startswith(". "):
        env.update(item.split("=", 1) for item in bash(f"{command}\nenv -0").split("\0") if "=" in item)
        return ""
    run = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    return run.stdout


def test_the_readme_commands_print_what_the_readme_shows(server: Served, tmp_path: Path) -> None:
    # Given every command of the README's transcripts (the walkthrough, registering a model),
    # pointed at this stack
    steps = transcript((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert sum("curl" in step.command for step in steps) >= 10
    assert sum("inferctl" in step.command for step in steps) >= 2
    env, printed, found = child_environment(), "", {}
    # When each runs in turn
    for step in steps:
        printed = run_readme_step(pointed_here(step.command, server, tmp_path), env, tmp_path, printed)
        # Then it prints what the README shows under it (tests/readme_transcript.py: what may vary)
        if problems := differences(step.shown, printed):
            found[step.command[:100]] = problems
    assert not found, "\n".join(f"$ {command}\n  {problems}" for command, problems in found.items())


# --- machine clients and the authorizer, over HTTP -----------------------------------------------


def test_a_machine_client_gets_a_token_with_basic_auth_and_predicts(server: Server) -> None:
    # Given a machine client of tenant-a, created by the operator CLI against the running stack
    created = inferctl(server, "create-client", "tenant-a", "--json")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)
    # When a real OAuth client library gets a token with HTTP Basic client authentication
    session = OAuth2Session(
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
    )
    token = session.fetch_token(f"{server.url}/api/v1/auth/token", grant_type="client_credentials")
    # Then that token predicts with tenant-a's model, through the authorizer
    reply = http("POST", f"{server.url}/api/v1/predict", {"instances": IRIS_ROWS}, token["access_token"])
    model, version = file_model("model_user_a.pkl")
    assert reply.status == 200, reply.body
    assert reply.body == {
        "predictions": model.predict(np.array(IRIS_ROWS)).tolist(),
        "model_version": version,
    }
    # And a wrong secret is a 401 invalid_client with WWW-Authenticate: Basic
    wrong = requests.post(
        f"{server.url}/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], "wrong-secret"),
        timeout=60,
    )
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="inference"'
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["Content-Type"] == "application/problem+json"
    # And an unknown grant is a 400 unsupported_grant_type, which the library raises on
    unknown = requests.post(
        f"{server.url}/api/v1/auth/token", data={"grant_type": "authorization_code", "code": "x"}, timeout=60
    )
    assert unknown.status_code == 400 and unknown.json()["error"] == "unsupported_grant_type"
    with pytest.raises(OAuthError):
        OAuth2Session(client_id=client["client_id"], client_secret="wrong-secret").fetch_token(
            f"{server.url}/api/v1/auth/token", grant_type="client_credentials"
        )


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"], ids=["no-token", "bad-token"])
def test_the_authorizers_refusal_is_the_usual_401(server: Server, authorization: str | None) -> None:
    # Given a predict request without a token, or with a bad one: the authorizer refuses it
    headers = {"Authorization": authorization} if authorization else {}
    reply = http("POST", f"{server.url}/api/v1/predict", {"instances": IRIS_ROWS}, headers=headers)
    # Then the gateway answers as deployed (the template's UNAUTHORIZED response): 401 problem+json
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["www-authenticate"] == 'Bearer realm="inference"'
    assert reply.body["detail"] == "A valid bearer token is required."
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value


# --- the gateway's own answers, as API Gateway gives them (template.yaml's GatewayResponses) -------
# `make serve`'s gateway (local/gateway.py). `sam local start-api` has its own, which keeps SAM's
# answers: `make test-sam-local` leaves out these tests (local.sam_local.NOT_HERE: "local_gateway").


def template_gateway_response(kind: str) -> tuple[int, dict[str, Any]]:
    """The status and body template.yaml gives a gateway response type."""
    api = next(r for r in load_template()["Resources"].values() if r["Type"] == "AWS::Serverless::Api")
    response = api["Properties"]["GatewayResponses"][kind]
    return int(response["StatusCode"]), json.loads(response["ResponseTemplates"]["application/json"])


def assert_gateway_response(reply: Reply, kind: str) -> None:
    status, body = template_gateway_response(kind)
    assert (reply.status, reply.body) == (status, body)
    assert reply.headers["content-type"] == "application/problem+json"
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value, name


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/nothing"), ("DELETE", "/api/v1/predict")])
def test_the_local_gateway_answers_an_unknown_route_or_method_with_the_templates_404(
    server: Served, method: str, path: str
) -> None:
    # Given a route or a method the template does not declare
    reply = http(method, f"{server.url}{path}")
    # Then the gateway answers as deployed: MISSING_AUTHENTICATION_TOKEN, problem+json, six headers
    assert_gateway_response(reply, "MISSING_AUTHENTICATION_TOKEN")


@pytest.mark.parametrize("path", ["/api/v1/model", "/.well-known/jwks.json"])
def test_the_local_gateway_answers_head_on_a_get_route_as_not_found(server: Served, path: str) -> None:
    # Given a HEAD request to a GET route (API Gateway derives no HEAD method from GET)
    reply = http("HEAD", f"{server.url}{path}")
    # Then it is the gateway's not-found (no body: it is HEAD), not SAM's 502
    status, _ = template_gateway_response("MISSING_AUTHENTICATION_TOKEN")
    assert reply.status == status
    assert reply.body is None
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value, name


def test_the_local_gateway_refuses_a_header_too_large_with_the_security_headers(server: Served) -> None:
    # Given a request whose one header line is longer than the HTTP server reads (64 KiB)
    parsed = urlparse(server.url)
    with socket.create_connection((parsed.hostname or "", parsed.port or 0), timeout=30) as connection:
        connection.sendall(b"GET /api/v1/model HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        raw = b""
        while chunk := connection.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    # Then the refusal is a 431 problem+json with the six headers, not http.server's HTML page
    assert status_line.split()[1] == "431"
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 431
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, name


def test_the_local_gateway_serves_openapi_json_with_the_security_headers(server: Server) -> None:
    reply = http("GET", f"{server.url}/openapi.json")
    assert reply.status == 200 and reply.body["openapi"].startswith("3.")
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value, name


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> Reply:
    reply = requests.post(url, data=body, headers=headers, timeout=60)
    return Reply(reply.status_code, {k.lower(): v for k, v in reply.headers.items()}, reply.json())


def test_the_local_gateway_passes_a_gzip_body_on_and_predict_answers_415(server: Served) -> None:
    # Given alice's token and a valid request, gzip-compressed (not UTF-8: its second byte is 0x8b)
    token = login(server, "alice", "alice-local-demo")
    body = gzip.compress(json.dumps({"instances": IRIS_ROWS}).encode())
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    # When she sends it
    reply = raw_post(f"{server.url}/api/v1/predict", body, headers)
    # Then predict itself refuses it (API Gateway passes it on as text), never SAM's bare 502
    assert reply.status == 415
    assert reply.body["status"] == 415
    assert reply.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("route", ["/api/v1/predict", "/api/v1/auth/token"])
def test_the_local_gateway_passes_a_non_utf8_body_on_to_the_functions_400(server: Served, route: str) -> None:
    # Given a JSON body with a Latin-1 byte in a string
    token = login(server, "alice", "alice-local-demo")
    body = b'{"username": "alice", "password": "caf\xe9", "instances": [[5.1, 3.5, 1.4, 0.2]]}'
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # When it is sent
    reply = raw_post(f"{server.url}{route}", body, headers)
    # Then the function answers it with its own 400 problem+json (the byte arrives as U+FFFD)
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/problem+json"
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value, name


def test_the_local_gateway_refuses_a_request_over_the_10_mb_quota_with_413(server: Served) -> None:
    # Given a body larger than API Gateway accepts at all (10 MB), before any authorizer runs
    reply = requests.post(f"{server.url}/api/v1/predict", data=b" " * (10 * 1024 * 1024 + 1), timeout=60)
    # Then the gateway refuses it with the template's REQUEST_TOO_LARGE response
    assert_gateway_response(
        Reply(reply.status_code, {k.lower(): v for k, v in reply.headers.items()}, reply.json()),
        "REQUEST_TOO_LARGE",
    )


# --- stopping ----------------------------------------------------------------------------------


def port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as probe:
        return probe.connect_ex((parsed.hostname or "", parsed.port or 0)) == 0


# SIGTERM: test_a_stack_on_an_outside_endpoint_creates_it_there_and_leaves_it_running
@pytest.mark.parametrize("signum", [signal.SIGINT], ids=["ctrl-c"])
def test_stopping_leaves_nothing_running(tmp_path: Path, signum: int) -> None:
    # Given a running stack (its own, so the walkthrough's is not disturbed)
    running = start_server(tmp_path)
    assert login(running, "bob", "bob-local-demo")
    assert port_open(running.url) and port_open(running.moto_url)
    session = running.process.pid
    # When it gets Ctrl-C (or SIGTERM)
    code = running.stop(signum)
    # Then it exits cleanly, says so, and leaves no process and no listening port behind
    assert code == 0, running.log.read_text()
    assert "stopped" in running.log.read_text()
    assert session_processes(session) == []
    assert not port_open(running.url)
    assert not port_open(running.moto_url)


def test_a_stack_on_an_outside_endpoint_creates_it_there_and_leaves_it_running(tmp_path: Path) -> None:
    # Given moto_server running in a process of its own (one an operator could stall or kill)
    moto, moto_url = start_moto(tmp_path / "moto.log")
    try:
        # When the local stack starts against it (LOCAL_AWS_ENDPOINT: what `make serve` passes on)
        running = start_server(tmp_path, LOCAL_AWS_ENDPOINT=moto_url)
        assert running.moto_url == moto_url
        # Then the demo tenants are served, and the stack's table and bucket are at that endpoint
        token = login(running, "bob", "bob-local-demo")
        reply = http("POST", f"{running.url}/api/v1/predict", {"instances": [WINE_ROW]}, token)
        assert reply.status == 200, reply.body
        credentials = {
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
            "region_name": "us-east-1",
        }
        dynamodb = boto3.client("dynamodb", endpoint_url=moto_url, **credentials)
        assert "local-inference" in dynamodb.list_tables()["TableNames"]
        s3 = boto3.client("s3", endpoint_url=moto_url, **credentials)
        assert any(b["Name"].startswith("local-models-") for b in s3.list_buckets()["Buckets"])
        # When the stack gets SIGTERM
        session = running.process.pid
        code = running.stop(signal.SIGTERM)
        # Then it exits cleanly and leaves none of its processes or ports, but the endpoint it did
        # not start keeps running
        assert code == 0, running.log.read_text()
        assert session_processes(session) == []
        assert not port_open(running.url)
        assert moto.poll() is None and port_open(moto_url)
    finally:
        stop_process(moto, signal.SIGTERM)


# --- the fault drill's clients (local/fault_drill.py; `make fault-drill` itself is not run here) ---


def test_the_fault_drills_clients_find_a_healthy_stack_on_contract(server: Served) -> None:
    # Given the drill's clients, predicting for both demo tenants and logging in, for two seconds
    traffic = Traffic(server.url, demo_clients(), per_tenant=1, timeout=20)
    healthy = PhaseResult("healthy", 2.0)
    traffic.start()
    try:
        with traffic.during(healthy):
            time.sleep(2)
    finally:
        traffic.stop()
    # Then a healthy stack gives them only right answers: the drill's verdict has nothing to say
    assert {a.route for a in healthy.answers} == {"predict", "login"}
    assert {a.tenant for a in healthy.predictions()} == {"tenant-a", "tenant-b"}
    assert verdict([healthy], function_timeout=10, tenants=2) == []


def test_carol_gets_numbers_from_her_regression_model_and_may_name_her_features(server: Served) -> None:
    # Given carol's token (a Ridge regressor on the diabetes data, registered with feature names)
    token = login(server, "carol", "carol-local-demo")
    card = http("GET", f"{server.url}/api/v1/model", token=token).body
    assert (card["task"], card["classes"], len(card["feature_names"])) == ("regression", None, 10)
    # When she sends a row as an array, and the same row as an object keyed by the feature names
    from sklearn.datasets import load_diabetes  # noqa: PLC0415

    row = load_diabetes().data[0].tolist()
    by_name = dict(zip(card["feature_names"], row, strict=True))
    as_array = http("POST", f"{server.url}/api/v1/predict", {"instances": [row]}, token)
    as_object = http("POST", f"{server.url}/api/v1/predict", {"instances": [by_name]}, token)
    # Then both answers are the same number, and probabilities are refused
    assert as_array.status == as_object.status == 200, (as_array.body, as_object.body)
    assert isinstance(as_array.body["predictions"][0], float)
    assert as_array.body["predictions"] == as_object.body["predictions"]
    asked = {"instances": [row], "parameters": {"probabilities": True}}
    assert http("POST", f"{server.url}/api/v1/predict", asked, token).status == 400
