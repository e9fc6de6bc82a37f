"""`make fault-drill`: rehearse AWS failing under the local stack, and check every answer.

    python -m local.fault_drill [--seconds 25] [--clients 2]

It starts three things on 127.0.0.1, each on a free port, and stops them all at the end:
- `moto_server` in its own process (so it can be stalled with SIGSTOP and killed with SIGKILL);
- `FaultProxy`, a small HTTP proxy in front of it, in a thread of this process;
- the local stack (`python -m local.serve --aws-endpoint <proxy>`), in its own process, with the
  mapping cache's TTL lowered (`DRILL_PARAMETERS`) so that a stall outlasts it within seconds.

Then clients predict for both demo tenants (`--clients` threads each, in bounded loops) while one
client logs in twice a second, through these phases, each `--seconds` long: healthy; DynamoDB
throttled; S3 answering SlowDown; moto stalled (then resumed, and a recovery window); moto killed.
It prints one row per phase and exits 1 when any answer breaks the contract (`verdict`).

Why a proxy, not botocore's event hooks: moto cannot throttle, and hooks would have to be
registered inside the stack's process, i.e. in code the drill exists to test. The proxy leaves the
stack untouched and answers as AWS does on the wire (DynamoDB's 400
ProvisionedThroughputExceededException, S3's 503 SlowDown), so the functions' real clients parse
and retry them exactly as they would on AWS. It also passes stalls and deaths on faithfully: a
stalled moto stalls the forwarded call; a dead one (connection refused) makes the proxy drop the
client's connection without an answer.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from model_runtime.http import SECURITY_HEADERS  # what every answer must carry, as the functions send it

from local.resources import TEMPLATE, load_template

REPO_ROOT = TEMPLATE.parent
HOST = "127.0.0.1"
STARTUP_SECONDS = 180  # the stack onboards two tenants (argon2, ONNX conversion) before it serves

# The drill's template parameters. The mapping cache's TTL (default 60 s) is lowered to 5 s so that
# a stall of a few tens of seconds outlasts it many times over: the drill then shows what a
# container does once its cached mapping is stale, within minutes rather than hours. The grace
# (StaleGraceSeconds, default 300, where the template has it) is lowered too, but kept longer than
# a fault plus the time since the last good read (at most a phase), so the cached tenants must be
# served for the whole of each fault (`drill_parameters`).
DRILL_MAPPING_TTL_SECONDS = 5

FAILING_STATUSES = {0, 500, 502, 504}  # 0: no answer (connection error or the client's timeout)


# --- what one answer was, and what the drill makes of all of them ----------------------------


@dataclass(frozen=True)
class Answer:
    """One request of the drill: what it asked (`route`: predict or login; `tenant` for predict),
    what came back and after how long, and whether it was what the contract promises
    (`problem`: None, or why not)."""

    phase: str
    route: str
    tenant: str | None
    status: int
    seconds: float
    problem: str | None = None


@dataclass
class PhaseResult:
    name: str
    seconds: float
    answers: list[Answer] = field(default_factory=list)
    # the acceptance asks these of this phase
    must_serve_cached: bool = False
    must_keep_half_throughput: bool = False
    recovered: bool | None = None  # None: not asked of this phase

    def predictions(self) -> list[Answer]:
        return [a for a in self.answers if a.route == "predict"]

    def served_rate(self) -> float:
        """Correct predictions per second."""
        good = [a for a in self.predictions() if a.status == 200 and a.problem is None]
        return len(good) / self.seconds if self.seconds > 0 else 0.0

    def cached_tenants_served(self) -> int:
        """Tenants every one of whose predictions in this phase was a correct 200."""
        by_tenant: dict[str | None, list[Answer]] = {}
        for answer in self.predictions():
            by_tenant.setdefault(answer.tenant, []).append(answer)
        return sum(
            1 for answers in by_tenant.values() if all(a.status == 200 and a.problem is None for a in answers)
        )


def check_answer(answer: Answer, function_timeout: float) -> str | None:
    """Why `answer` breaks the contract, or None: a 0/500/502/504 never; nothing later than the
    function's timeout; otherwise a correct answer, or a 503 problem+json (checked by the client,
    in `problem`)."""
    if answer.status in FAILING_STATUSES:
        return f"{answer.route}: {answer.status or 'no answer'}"
    if answer.seconds > function_timeout:
        return f"{answer.route}: answered after {answer.seconds:.1f} s (timeout {function_timeout:g} s)"
    if answer.problem is not None:
        return f"{answer.route}: {answer.problem}"
    return None


def verdict(
    phases: Sequence[PhaseResult], function_timeout: float, tenants: int, healthy: str = "healthy"
) -> list[str]:
    """Every way the drill's results fall short of the acceptance; empty when it passes."""
    failures: list[str] = []
    baseline = next((p.served_rate() for p in phases if p.name == healthy), 0.0)
    for phase in phases:
        reasons = Counter(
            reason for answer in phase.answers if (reason := check_answer(answer, function_timeout))
        )
        failures += [f"{phase.name}: {count} x {reason}" for reason, count in reasons.most_common()]
        if not phase.predictions():
            failures.append(f"{phase.name}: no prediction was answered")
        if phase.must_serve_cached and phase.cached_tenants_served() < tenants:
            failures.append(
                f"{phase.name}: {phase.cached_tenants_served()} of {tenants} cached tenants served throughout"
            )
        if phase.must_keep_half_throughput and phase.served_rate() < baseline / 2:
            failures.append(
                f"{phase.name}: {phase.served_rate():.1f} correct predictions/s, "
                f"under half the healthy {baseline:.1f}/s"
            )
        if phase.recovered is False:
            failures.append(f"{phase.name}: did not recover without a restart")
    return failures


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def table(phases: Sequence[PhaseResult]) -> str:
    """The drill's results, one row per phase, as a Markdown table (docs/fault-drill.md)."""
    header = (
        "| fault | requests | answers by status | p50 s | p99 s | max s | predictions/s "
        "| cached tenants served | recovered |"
    )
    rows = [header, "|" + "---|" * 9]
    for phase in phases:
        times = [a.seconds for a in phase.answers]
        statuses = Counter(a.status for a in phase.answers)
        by_status = " ".join(f"{status or 'none'}: {count}" for status, count in sorted(statuses.items()))
        recovered = {None: "-", True: "yes", False: "no"}[phase.recovered]
        rows.append(
            f"| {phase.name} | {len(phase.answers)} | {by_status} | {percentile(times, 0.5):.3f} "
            f"| {percentile(times, 0.99):.3f} | {max(times, default=0):.3f} | {phase.served_rate():.1f} "
            f"| {phase.cached_tenants_served()} | {recovered} |"
        )
    return "\n".join(rows)


# --- a proxy that answers in AWS's place --------------------------------------------------------

DYNAMODB_THROTTLED = (
    400,
    {"Content-Type": "application/x-amz-json-1.0"},
    json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }
    ).encode(),
)
S3_SLOWDOWN = (
    503,
    {"Content-Type": "application/xml"},
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>",
)
INJECTED: dict[str, tuple[str, tuple[int, dict[str, str], bytes]]] = {
    "dynamodb-throttling": ("dynamodb", DYNAMODB_THROTTLED),
    "s3-slowdown": ("s3", S3_SLOWDOWN),
}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def aws_service(authorization: str) -> str:
    """The service a SigV4-signed request is for (its credential scope), or ''."""
    match = _CREDENTIAL_SCOPE.search(authorization)
    return match[1] if match else ""


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

    def __init__(self, proxy: FaultProxy, *args: Any) -> None:
        self.proxy = proxy
        super().__init__(*args)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _relay(self) -> None:
        body = self._body()
        injected = self.proxy.injected(aws_service(self.headers.get("Authorization", "")))
        if injected is None:
            try:
                injected = self.proxy.forward(self.command, self.path, dict(self.headers.items()), body)
            except OSError:
                self.close_connection = True  # the endpoint is gone: so is this connection
                return
        status, headers, payload = injected
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "content-length" not in {name.lower() for name in headers}:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except ConnectionError:  # the client gave up waiting (its read timeout), as it may
            self.close_connection = True

    # http.server dispatches on these names
    def do_GET(self) -> None:
        self._relay()

    def do_HEAD(self) -> None:
        self._relay()

    def do_PUT(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def do_DELETE(self) -> None:
        self._relay()


class FaultProxy:
    """An HTTP proxy to `upstream` on a free loopback port; `fault` (a key of INJECTED, or None)
    makes it answer that service's calls itself, as AWS does when it throttles."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.fault: str | None = None
        self._server = ThreadingHTTPServer((HOST, 0), partial(_ProxyHandler, self))
        self._server.daemon_threads = True
        self.url = f"http://{HOST}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def injected(self, service: str) -> tuple[int, dict[str, str], bytes] | None:
        fault = INJECTED.get(self.fault or "")
        return fault[1] if fault is not None and fault[0] == service else None

    def forward(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        # No timeout: a stalled moto must stall the call, as a stalled AWS would.
        connection = http.client.HTTPConnection(self.upstream.hostname or HOST, self.upstream.port)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            if method != "HEAD":
                kept = {k: v for k, v in kept.items() if k.lower() != "content-length"}
            return response.status, kept, payload
        finally:
            connection.close()

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


# --- the processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {seconds:g} s")


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{HOST}:{port}"

    def answering() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return True
        return False

    _wait_for(answering, 30, "moto_server")
    return process, url


def start_stack(
    endpoint: str, log: Path, parameters: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    overrides = [f"{name}={value}" for name, value in parameters.items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.serve",
                "--port",
                "0",
                "--aws-endpoint",
                endpoint,
                "--env-file",
                str(log.with_name("env.json")),
                "--parameter-overrides",
                *overrides,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    ready = re.compile(r"Serving (http://127\.0\.0\.1:\d+) ")
    found: list[str] = []

    def serving() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited:\n{log.read_text(errors='replace')[-2000:]}")
        match = ready.search(log.read_text(errors="replace"))
        if match:
            found.append(match[1])
        return bool(match)

    _wait_for(serving, STARTUP_SECONDS, "the local stack")
    return process, found[0]


def stop_process(process: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot handle its signal
            process.send_signal(signum)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoClient:
    tenant: str
    username: str
    password: str
    row: list[float]
    expected: Any  # the prediction the tenant's own model gives for `row`


def demo_clients() -> list[DemoClient]:
    import joblib  # noqa: PLC0415 - only the drill needs scikit-learn, to know the right answers
    import numpy as np  # noqa: PLC0415

    from local.serve import DEMO_TENANTS  # noqa: PLC0415

    rows = {"tenant-a": [5.1, 3.5, 1.4, 0.2], "tenant-b": [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26]}
    rows["tenant-b"] += [1.28, 4.38, 1.05, 3.4, 1050]
    clients = []
    for demo in DEMO_TENANTS:
        if demo.tenant_id not in rows:  # the two classifier tenants; carol's regressor is not drilled
            continue
        model = joblib.load(REPO_ROOT / demo.model_file)
        expected = model.predict(np.array([rows[demo.tenant_id]])).tolist()
        row = rows[demo.tenant_id]
        clients.append(DemoClient(demo.tenant_id, demo.username, demo.password, row, expected))
    return clients


def contract_problem(response: requests.Response, check_ok: Callable[[Any], bool]) -> str | None:
    """None when `response` is what the contract promises: a correct 200 (`check_ok` on its JSON)
    or a 503 problem+json with Retry-After; in both cases with the six security headers."""
    missing = [name for name, value in SECURITY_HEADERS.items() if response.headers.get(name) != value]
    if missing:
        return f"{response.status_code} without {', '.join(missing)}"
    if response.status_code == 200:
        try:
            ok = check_ok(response.json())
        except ValueError:
            ok = False
        return None if ok else "200 with a wrong answer"
    if response.status_code == 503:
        if response.headers.get("Content-Type") != "application/problem+json":
            return "503 that is not problem+json"
        if not response.headers.get("Retry-After", "").isdigit():
            return "503 without Retry-After"
        try:
            status = response.json().get("status")
        except ValueError:
            status = None
        return None if status == 503 else "503 whose body is not its problem"
    return f"{response.status_code} (neither an answer nor a 503)"


class Traffic:
    """Client threads sending requests until `stop()`; every answer goes to the current phase."""

    def __init__(self, api: str, clients: Sequence[DemoClient], per_tenant: int, timeout: float) -> None:
        self.api = api
        self.clients = clients
        self.per_tenant = per_tenant
        self.timeout = timeout
        self.tokens = {client.tenant: self._login(client) for client in clients}
        for client in clients:  # load each tenant's model before anything is measured
            requests.post(
                f"{api}/api/v1/predict",
                json={"instances": [client.row]},
                headers={"Authorization": f"Bearer {self.tokens[client.tenant]}"},
                timeout=timeout,
            ).raise_for_status()
        self.phase: PhaseResult | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def _login(self, client: DemoClient) -> str:
        reply = requests.post(
            f"{self.api}/api/v1/auth/token",
            json={"username": client.username, "password": client.password},
            timeout=self.timeout,
        )
        reply.raise_for_status()
        token: str = reply.json()["access_token"]
        return token

    def _record(self, route: str, tenant: str | None, send: Callable[[], requests.Response], ok: Any) -> None:
        phase = self.phase
        started = time.monotonic()
        try:
            response = send()
            status, problem = response.status_code, contract_problem(response, ok)
        except requests.RequestException:
            status, problem = 0, None
        if phase is None:
            return  # between phases
        answer = Answer(phase.name, route, tenant, status, time.monotonic() - started, problem)
        with self._lock:  # counted in the phase it was asked in, however long it took
            phase.answers.append(answer)

    def _predicting(self, client: DemoClient) -> None:
        with requests.Session() as session:
            headers = {"Authorization": f"Bearer {self.tokens[client.tenant]}"}
            while not self._stopping.is_set():
                self._record(
                    "predict",
                    client.tenant,
                    lambda: session.post(
                        f"{self.api}/api/v1/predict",
                        json={"instances": [client.row]},
                        headers=headers,
                        timeout=self.timeout,
                    ),
                    lambda body, c=client: body.get("predictions") == c.expected,
                )

    def _logging_in(self) -> None:
        client = self.clients[0]
        with requests.Session() as session:
            while not self._stopping.wait(0.5):
                self._record(
                    "login",
                    None,
                    lambda: session.post(
                        f"{self.api}/api/v1/auth/token",
                        json={"username": client.username, "password": client.password},
                        timeout=self.timeout,
                    ),
                    lambda body: bool(body.get("access_token")),
                )

    def start(self) -> None:
        targets: list[Callable[[], None]] = [self._logging_in]
        for client in self.clients:
            targets += [partial(self._predicting, client)] * self.per_tenant
        self._threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for thread in self._threads:
            thread.start()

    @contextlib.contextmanager
    def during(self, phase: PhaseResult) -> Iterator[PhaseResult]:
        with self._lock:
            self.phase = phase
        started = time.monotonic()
        try:
            yield phase
        finally:
            with self._lock:
                self.phase = None
            phase.seconds = time.monotonic() - started

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)


# --- the drill -----------------------------------------------------------------------------------


def function_timeout(template: Mapping[str, Any]) -> float:
    """The longest a function behind the API may run (Globals, or the longest of those functions'
    own): an answer later than this is late whatever took the time. A function only events other
    than the API's invoke (RegisterFunction: EventBridge) answers no client."""
    timeouts = [float(template.get("Globals", {}).get("Function", {}).get("Timeout", 3))]
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        events = (properties.get("Events") or {}).values()
        if events and all(event.get("Type") != "Api" for event in events):
            continue
        if resource.get("Type") == "AWS::Serverless::Function" and "Timeout" in properties:
            timeouts.append(float(properties["Timeout"]))
    return max(timeouts)


def drill_parameters(template: Mapping[str, Any], seconds: float) -> dict[str, str]:
    """The lowered TTL and grace, for the parameters this template has (StaleGraceSeconds arrives
    with issue #27's last-known-good caching)."""
    wanted = {
        "MappingTtlSeconds": str(DRILL_MAPPING_TTL_SECONDS),
        "StaleGraceSeconds": str(max(60, round(3 * seconds))),
    }
    return {k: v for k, v in wanted.items() if k in (template.get("Parameters") or {})}


def recovered(after: PhaseResult) -> bool:
    """After a fault: a login (which no cache answers) succeeded, and every tenant's last
    prediction was a correct 200."""
    last: dict[str | None, Answer] = {}
    for answer in after.predictions():
        last[answer.tenant] = answer
    logged_in = any(a.route == "login" and a.status == 200 and a.problem is None for a in after.answers)
    return logged_in and bool(last) and all(a.status == 200 and a.problem is None for a in last.values())


def run_drill(seconds: float, per_tenant: int, workdir: Path) -> tuple[list[PhaseResult], float]:
    template = load_template()
    timeout = function_timeout(template)
    parameters = drill_parameters(template, seconds)
    print(f"drill: {parameters}, function timeout {timeout:g} s, {seconds:g} s per phase", flush=True)
    moto, moto_url = start_moto(workdir / "moto.log")
    proxy = FaultProxy(moto_url).start()
    stack: subprocess.Popen[bytes] | None = None
    traffic: Traffic | None = None
    phases: list[PhaseResult] = []
    try:
        stack, api = start_stack(proxy.url, workdir / "serve.log", parameters)
        # The client gives up at twice the function timeout: later than the timeout already fails.
        traffic = Traffic(api, demo_clients(), per_tenant, timeout=2 * timeout)
        traffic.start()

        def phase(name: str, *, cached: bool = False, throughput: bool = False) -> PhaseResult:
            print(f"  {name} ...", flush=True)
            result = PhaseResult(name, seconds, must_serve_cached=cached)
            result.must_keep_half_throughput = throughput
            phases.append(result)
            return result

        with traffic.during(phase("healthy")):
            time.sleep(seconds)
        for fault in INJECTED:
            proxy.fault = fault
            with traffic.during(phase(fault)):
                time.sleep(seconds)
            proxy.fault = None
        stalled = phase("moto stalled (SIGSTOP)", cached=True)
        os.kill(moto.pid, signal.SIGSTOP)
        try:
            with traffic.during(stalled):
                time.sleep(seconds)
        finally:
            os.kill(moto.pid, signal.SIGCONT)
        with traffic.during(phase("after the stall")) as after:
            time.sleep(seconds)
        stalled.recovered = recovered(after)
        moto.kill()
        moto.wait()
        with traffic.during(phase("moto killed", cached=True, throughput=True)):
            time.sleep(seconds)
    finally:
        if traffic is not None:
            traffic.stop()
        if stack is not None:
            stop_process(stack)
        proxy.stop()
        stop_process(moto, signal.SIGTERM)
    return phases, timeout


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.fault_drill",
        description="Stall, kill and throttle the local stack's AWS; check every answer (make fault-drill).",
    )
    parser.add_argument("--seconds", type=float, default=25.0, help="length of each phase (default 25)")
    parser.add_argument("--clients", type=int, default=2, help="predicting clients per tenant (default 2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fault-drill-") as directory:
        try:
            phases, timeout = run_drill(args.seconds, args.clients, Path(directory))
        except RuntimeError as error:  # a process did not start; the message says which
            print(f"error: {error}", file=sys.stderr)
            return 1
        except requests.RequestException as error:  # the demo users could not log in before any fault
            print(f"error: the healthy stack did not answer the drill's clients: {error}", file=sys.stderr)
            return 1
    print(table(phases))
    failures = verdict(phases, timeout, tenants=2)
    for failure in failures:
        print(f"FAIL {failure}")
    print("fault drill: FAIL" if failures else "fault drill: PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
