"""`make sam-local` and `make test-sam-local`: the functions in Lambda-style Docker containers,
served by `sam local start-api`, against the local stack's moto server.

    python -m local.sam_local serve [--port 3000] [--image auto|official|emulation] [--no-pull]
    python -m local.sam_local test  [--image ...]

Both expect a Docker engine that answers (`scripts/docker-engine up`, which the Makefile runs).
Then, in order:

1. The image the containers start from: Lambda's official `public.ecr.aws/lambda/python:3.12`
   when it is on this machine or can be pulled, otherwise the emulation image that
   `local/lambda-image/build` builds here (cached by a hash of its inputs).
2. `sam build`, unless `.aws-sam/build` is newer than everything it is built from.
3. The local stack without its in-process API (`python -m local.serve --no-api`), its moto server
   bound to Docker's bridge address: SAM CLI keeps containers on the default bridge whatever
   `--docker-network` says, and a container's 127.0.0.1 is its own. The bridge address is this
   machine's own and reaches no other; nothing listens on 0.0.0.0. Its env files (with the
   bridge endpoint) go to `.local/sam-local/`.
4. `sam local start-api` on 127.0.0.1 with `--warm-containers LAZY` (one container per function,
   started by its first request and kept), `--invoke-image IMAGE --skip-pull-image`.

`serve` then waits for Ctrl-C or SIGTERM. `test` measures the first and warm requests of each
function, writes token-carrying events (`local.events`) and runs `sam local invoke` once per
function with them, then the README walkthrough and the core of the attack suite against the
API (pytest, with LOCAL_STACK_URL / LOCAL_STACK_DIR). Everything started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from samcli.yamlhelper import yaml_dump, yaml_parse

from local.serve import DEMO_TENANTS, REPO_ROOT

OFFICIAL_IMAGE = "public.ecr.aws/lambda/python:3.12"
EMULATION_BUILD = REPO_ROOT / "local" / "lambda-image" / "build"
DOCKER_ENGINE = REPO_ROOT / "scripts" / "docker-engine"
STACK_DIR = REPO_ROOT / ".local" / "sam-local"
BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
BUILT_TEMPLATE = BUILD_DIR / "template.yaml"
# Beside the built template, so its relative CodeUri and ContentUri paths still resolve.
SAM_LOCAL_TEMPLATE = BUILD_DIR / "template.sam-local.yaml"
BUILD_SOURCES = ("template.yaml", "functions", "layers")
SAM = Path(sys.executable).parent / "sam"
HOST = "127.0.0.1"

READY = re.compile(r"Serving no API \(moto at (http://[0-9.]+:\d+)\)")
STACK_START_SECONDS = 120
API_START_SECONDS = 180  # a bound for a slow machine, not a performance assertion
FIXED_RECEIPT_SECONDS = 15.0  # past every function's Timeout (template.yaml: 10 s at most)
STOP_SECONDS = 60
PULL_SECONDS = 300
TEST_SECONDS = 420

# The README walkthrough and the core of the attack suite (token forgery, tenant isolation, model
# DoS, response hygiene): the tests themselves, pointed at this API. `make test` runs them (and the
# rest) against the in-process stack; the stopping tests are about that stack's own process.
TESTS = (
    "tests/local/test_local_stack.py",
    "tests/attack/test_token_forgery.py",
    "tests/attack/test_tenant_isolation.py",
    "tests/attack/test_model_dos.py",
    "tests/attack/test_response_hygiene.py",
)
# About `python -m local.serve` itself and its gateway (local/gateway.py), not sam local's; sam
# local has no CloudWatch Logs subscription, so history is fed only by local.serve's gateway
# (local/log_subscriptions.py). Each of these runs in `make test`, against `make serve`'s stack.
NOT_HERE = (
    "not stopping_leaves_nothing_running and not local_gateway and not outside_endpoint and not fault_drill"
    " and not reads_her_prediction_back_from_her_history"
)


def log(message: str) -> None:
    print(f"sam-local: {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A step could not be done; the message says which and why."""


def run(argv: Sequence[str | Path], *, timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    completed: subprocess.CompletedProcess[str] = subprocess.run(
        [str(arg) for arg in argv],
        cwd=REPO_ROOT,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    return completed


def docker_image_present(image: str) -> bool:
    return run(["docker", "image", "inspect", image], timeout=60, capture_output=True).returncode == 0


def bridge_address() -> str:
    """Docker's default bridge gateway: this machine's own address on the containers' network."""
    result = run([DOCKER_ENGINE, "bridge"], timeout=60, capture_output=True)
    address = result.stdout.strip()
    if result.returncode != 0 or not re.fullmatch(r"[0-9.]+", address):
        raise Failed(f"cannot read Docker's bridge address: {result.stderr.strip() or address!r}")
    return address


def choose_image(choice: str, pull: bool) -> str:
    """The official image if present (or pulled); else the emulation image, built if need be."""
    if choice in ("auto", "official"):
        if docker_image_present(OFFICIAL_IMAGE):
            log(f"image: {OFFICIAL_IMAGE} (on this machine)")
            return OFFICIAL_IMAGE
        if pull:
            log(f"pulling {OFFICIAL_IMAGE}")
            if run(["docker", "pull", OFFICIAL_IMAGE], timeout=PULL_SECONDS).returncode == 0:
                return OFFICIAL_IMAGE
            log(f"cannot pull {OFFICIAL_IMAGE} (no route to its registry?)")
        if choice == "official":
            raise Failed(f"{OFFICIAL_IMAGE} is not on this machine and could not be pulled")
    started = time.monotonic()
    built = run([EMULATION_BUILD], timeout=900, stdout=subprocess.PIPE)
    if built.returncode != 0 or not built.stdout.strip():
        raise Failed("the emulation image could not be built (see above)")
    image = built.stdout.strip().splitlines()[-1]
    log(f"image: {image} (emulation of Lambda's python3.12 image, {time.monotonic() - started:.1f} s)")
    return image


def newest_source_mtime() -> float:
    newest = 0.0
    for name in BUILD_SOURCES:
        path = REPO_ROOT / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        newest = max([newest, *(f.stat().st_mtime for f in files if "__pycache__" not in f.parts)])
    return newest


def ensure_sam_build() -> None:
    """`make build` unless its output is newer than every file it is built from."""
    if BUILT_TEMPLATE.exists() and BUILT_TEMPLATE.stat().st_mtime > newest_source_mtime():
        log("sam build: .aws-sam/build is up to date")
        return
    log("sam build (make build)")
    started = time.monotonic()
    if run(["make", "build"], timeout=900, stdout=sys.stderr).returncode != 0:
        raise Failed("sam build failed (see above)")
    log(f"sam build: {time.monotonic() - started:.1f} s")


def stop_process(process: subprocess.Popen[bytes], name: str, signum: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop within {STOP_SECONDS} s: killing it")
            process.kill()
            process.wait(timeout=10)
    log(f"stopped {name}")


def sam_environment() -> dict[str, str]:
    """No AWS account, profile or endpoint of the caller's reaches SAM or the containers: SAM passes
    these fake credentials and region to them, and env.json the moto endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMOKE_", "LOCAL_STACK_"))}
    return env | {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
        "PYTHONUNBUFFERED": "1",
    }


def moto_addresses() -> tuple[str, str]:
    """Where moto listens, and the name containers reach it by.

    Linux: Docker's bridge address, both. macOS (Docker Desktop, Colima): containers run in a VM
    whose bridge is not the Mac's; they reach the Mac's loopback as host.docker.internal."""
    if platform.system() == "Darwin":
        return HOST, "host.docker.internal"
    address = bridge_address()
    return address, address


def point_containers_at(container_host: str, moto_url: str) -> None:
    """env.json's endpoint, as the containers must name moto's host."""
    env_json = STACK_DIR / "env.json"
    environments = json.loads(env_json.read_text())
    endpoint = re.sub(r"^http://[^:/]+", f"http://{container_host}", moto_url)
    for variables in environments.values():
        variables["AWS_ENDPOINT_URL"] = endpoint
    env_json.write_text(json.dumps(environments, indent=2, sort_keys=True) + "\n")


@contextmanager
def moto_stack(moto_host: str, container_host: str) -> Iterator[str]:
    """`python -m local.serve --no-api` with moto on `moto_host`; yields moto's URL."""
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    stack_log = STACK_DIR / "stack.log"
    with stack_log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.serve", "--no-api", "--moto-host", moto_host, "--moto-port", "0",
             "--env-file", str(STACK_DIR / "env.json")],
            cwd=REPO_ROOT,
            env=sam_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this process, which stops it in order
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STACK_START_SECONDS
        while True:
            match = READY.search(stack_log.read_text(errors="replace"))
            if match:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise Failed(f"the local stack did not start:\n{stack_log.read_text(errors='replace')}")
            time.sleep(0.2)
        if container_host != moto_host:
            point_containers_at(container_host, match[1])
        where = STACK_DIR.relative_to(REPO_ROOT)
        log(f"moto at {match[1]} (containers reach it as {container_host}), env files in {where}/")
        yield match[1]
    finally:
        stop_process(process, "the local stack (moto)")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - loopback
            return True
    except urllib.error.HTTPError:
        return True  # the gateway answered (403 for a route that does not exist)
    except OSError:
        return False


# What stands in for the authorizer's part in tenant isolation under `sam local`, where no
# authorizer runs: predict in shared mode (SAM CLI would take a tenant-isolated invocation's tenant
# id from the client's own X-Amz-Tenant-Id header, which API Gateway never does), reading tenant
# data with its own credentials (the stack's moto credentials; on AWS its role reads none).
SAM_LOCAL_PREDICT_ENVIRONMENT = {"TENANT_ISOLATION": "shared", "TENANT_DATA_CREDENTIALS": "function"}


def write_sam_local_template() -> Path:
    """The built template without the API's Lambda authorizer, for `sam local` only.

    SAM CLI's local gateway does not emulate an authorizer's "Unauthorized" error (API Gateway's
    401): it reports "invalid or missing principalId" and answers 502. Predict verifies every
    token itself (defence in depth), so without the authorizer a bad token still gets predict's
    own 401; usage plans, which the authorizer feeds, are not enforced locally anyway. The
    in-process stack (`make serve`) keeps the authorizer: local/gateway.py maps its refusals.
    Without the authorizer no credentials are vended and no tenant id is mapped: predict runs as
    `SAM_LOCAL_PREDICT_ENVIRONMENT` says, in the template and in env.json (which overrides it).
    """
    template = yaml_parse(BUILT_TEMPLATE.read_text())
    template["Parameters"]["TenantIsolation"]["Default"] = SAM_LOCAL_PREDICT_ENVIRONMENT["TENANT_ISOLATION"]
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Api":
            properties.pop("Auth", None)
        for event in (properties.get("Events") or {}).values():
            (event.get("Properties") or {}).pop("Auth", None)
        if name == "PredictFunction":
            properties["Environment"]["Variables"].update(SAM_LOCAL_PREDICT_ENVIRONMENT)
            # SAM CLI 1.170 takes any TenancyConfig mapping, an unresolved !If included, as on
            properties.pop("TenancyConfig", None)
    SAM_LOCAL_TEMPLATE.write_text(yaml_dump(template))
    env_json = STACK_DIR / "env.json"
    if env_json.exists():
        environments = json.loads(env_json.read_text())
        environments.get("PredictFunction", {}).update(SAM_LOCAL_PREDICT_ENVIRONMENT)
        env_json.write_text(json.dumps(environments, indent=2, sort_keys=True) + "\n")
    return SAM_LOCAL_TEMPLATE


@contextmanager
def start_api(image: str, port: int, *, quiet: bool) -> Iterator[str]:
    """`sam local start-api` on 127.0.0.1:`port` with warm containers; yields the API's URL."""
    url = f"http://{HOST}:{port}"
    argv = [
        SAM, "local", "start-api",
        "--template", write_sam_local_template(),
        "--env-vars", STACK_DIR / "env.json",
        "--host", HOST,
        "--port", str(port),
        "--warm-containers", "LAZY",
        "--invoke-image", image,
        "--skip-pull-image",
    ]  # fmt: skip
    sam_log = STACK_DIR / "start-api.log"  # when quiet; otherwise its output is the terminal's
    started = time.monotonic()
    with sam_log.open("wb") if quiet else nullcontext() as sink:
        process = subprocess.Popen(
            [str(arg) for arg in argv],
            cwd=REPO_ROOT,
            env=sam_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT if quiet else None,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + API_START_SECONDS
        while not answers(f"{url}/"):
            if process.poll() is not None or time.monotonic() > deadline:
                where = f":\n{sam_log.read_text(errors='replace')}" if quiet else " (see above)"
                raise Failed(f"sam local start-api did not start{where}")
            time.sleep(0.25)
        # SAM CLI 1.170 sets every event's requestTimeEpoch once, when it starts. The functions
        # take the time since a request's receipt off their deadline, and ignore a receipt time
        # that would leave them nothing (model_runtime/deadlines.py); in between, a request in
        # the first seconds after SAM's start lost that time and answered 503 (CI, twice). So
        # the first request waits until SAM's start is further back than any function's timeout.
        time.sleep(max(0.0, started + FIXED_RECEIPT_SECONDS - time.monotonic()))
        yield url
    finally:
        # SIGTERM: SAM stops its warm containers and exits.
        stop_process(process, "sam local start-api")


# --- test ---------------------------------------------------------------------------------------


@dataclass
class Timings:
    rows: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.rows.append((label, time.perf_counter() - started))

    def report(self) -> str:
        return "\n".join(f"  {seconds:8.2f} s  {label}" for label, seconds in self.rows)


def call(url: str, method: str, body: object | None = None, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - loopback
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def first_and_warm_requests(api: str, timings: Timings) -> None:
    """Each function's first request (its container starts) and warm ones, timed."""
    alice = DEMO_TENANTS[0]
    credentials = {"username": alice.username, "password": alice.password}
    token = ""
    for attempt in ("first", "warm", "warm"):
        with timings.measure(f"login, {attempt} request"):
            status, body = call(f"{api}/api/v1/auth/token", "POST", credentials)
        if status != 200:
            raise Failed(f"login answered {status}: {body[:300]!r}")
        token = json.loads(body)["access_token"]
    rows = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    for attempt in ("first", "warm", "warm"):
        with timings.measure(f"predict, {attempt} request"):
            status, body = call(f"{api}/api/v1/predict", "POST", rows, token)
        if status != 200:
            raise Failed(f"predict answered {status}: {body[:300]!r}")


# One `sam local invoke` per function: the event, and what its answer's body must hold.
INVOKES = (
    ("LoginFunction", "login_success.json", "access_token"),
    ("PredictFunction", "predict_alice.json", "predictions"),
)


def write_live_events(api: str) -> None:
    written = run([sys.executable, "-m", "local.events", "--api", api, "--stack-dir", STACK_DIR], timeout=120)
    if written.returncode != 0:
        raise Failed("could not write the events with live tokens (see above)")


def invoke_each_function(image: str, timings: Timings) -> None:
    """`sam local invoke FUNCTION -e EVENT` with the live-token events, each answer checked."""
    for function, event, expected in INVOKES:
        argv: list[str | Path] = [
            SAM, "local", "invoke", function,
            "--event", STACK_DIR / "events" / event,
            "--template", write_sam_local_template(),
            "--env-vars", STACK_DIR / "env.json",
            "--invoke-image", image,
            "--skip-pull-image",
        ]  # fmt: skip
        with timings.measure(f"sam local invoke {function} (a new container)"):
            result = run(argv, timeout=300, capture_output=True, env=sam_environment())
        answer = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        try:
            response = json.loads(answer)
            ok = response["statusCode"] == 200 and expected in json.loads(response["body"])
        except (ValueError, KeyError, TypeError):
            ok = False
        if result.returncode != 0 or not ok:
            raise Failed(f"sam local invoke {function}: exit {result.returncode}, answer {answer[:300]!r}\n"
                         f"{result.stderr[-2000:]}")  # fmt: skip
        log(f"sam local invoke {function}: 200 with {expected!r}")


def run_tests(api: str, extra: Sequence[str]) -> int:
    env = os.environ | {"LOCAL_STACK_URL": api, "LOCAL_STACK_DIR": str(STACK_DIR)}
    argv = [sys.executable, "-m", "pytest", *TESTS, "-k", NOT_HERE, *extra]
    return run(argv, timeout=TEST_SECONDS, env=env).returncode


class Background:
    """A step in a thread; `join` waits for it and raises what it raised."""

    def __init__(self, step: Callable[[], None]) -> None:
        self._error: BaseException | None = None
        self._step = step
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._step()
        except BaseException as error:  # handed to join()
            self._error = error

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


# --- main ---------------------------------------------------------------------------------------


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.sam_local", description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["serve", "test"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--image",
        choices=["auto", "official", "emulation"],
        default=os.environ.get("SAM_LOCAL_IMAGE", "auto"),
        help="auto (default): the official image if present or pullable, else the emulation image",
    )
    parser.add_argument("--no-pull", dest="pull", action="store_false", help="never pull the official image")
    parser.add_argument("pytest_args", nargs="*", help="test: more pytest arguments (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    timings = Timings()
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            # The image build (mostly debootstrap's downloads and unpacking) overlaps sam build.
            images: list[str] = []
            image_step = Background(lambda: images.append(choose_image(args.image, args.pull)))
            with timings.measure("sam build (or up to date)"):
                ensure_sam_build()
            with timings.measure("image (built, or found by its hash), after sam build"):
                image_step.join()
            image = images[0]
            with timings.measure("local stack (moto) start"):
                stack.enter_context(moto_stack(*moto_addresses()))
            with timings.measure("sam local start-api start"):
                api = stack.enter_context(start_api(image, args.port, quiet=args.mode == "test"))
            if args.mode == "serve":
                users = ", ".join(f"{demo.username}/{demo.password}" for demo in DEMO_TENANTS)
                print(
                    f"Serving {api} with sam local start-api (functions in Docker, image {image}) — "
                    f"demo users {users}. Events with live tokens for `sam local invoke`: "
                    f"python -m local.events --api {api}. Ctrl-C to stop.",
                    flush=True,
                )
                while True:
                    time.sleep(0.5)
            first_and_warm_requests(api, timings)
            write_live_events(api)
            # The invokes (a container each, and SAM's image build) overlap the tests.
            invokes = Background(lambda: invoke_each_function(image, timings))
            with timings.measure("walkthrough + attack suite core (pytest)"):
                code = run_tests(api, args.pytest_args)
            invokes.join()
    except KeyboardInterrupt:
        return 0 if args.mode == "serve" else 130
    except (Failed, subprocess.TimeoutExpired) as error:
        log(f"error: {error}")
        return 1
    log(f"timings:\n{timings.report()}\n  {time.monotonic() - started:8.2f} s  in all")
    return code


if __name__ == "__main__":
    sys.exit(main())
