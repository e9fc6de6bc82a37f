"""AWS faults injected through botocore's own event system, and a clock the tests move.

A fault is raised or answered in `before-send`, where botocore's HTTP send would happen, so the
whole client stack runs as in production: the deadline's checks, retries and backoff, error
parsing. The clock stands in for `time.monotonic` (the caches), for botocore's sleep between
attempts, and for the Lambda context's remaining time, so a test can stall a dependency for
seconds and check the answer came within the budget, in no time at all.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from model_runtime import deadlines, ttl_cache

from tests.support import FakeLambdaContext


class FakeClock:
    """Monotonic seconds that pass only when a test (or a stalled dependency) says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
        """The caches' clock and botocore's sleep between attempts become this clock."""
        monkeypatch.setattr(ttl_cache, "time", types.SimpleNamespace(monotonic=self.monotonic))
        monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=self.sleep))
        return self


@dataclass
class ClockedContext(FakeLambdaContext):
    """A Lambda context whose remaining time runs on `clock`: `millis` when created."""

    clock: FakeClock = field(default_factory=FakeClock)
    millis: int = 10_000
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock.now

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return max(0, int(self.millis - (self.clock.now - self.started) * 1000))

    @property
    def elapsed(self) -> float:
        return self.clock.now - self.started

    @property
    def budget(self) -> float:
        """What the deadline gives AWS calls: the function's time minus the answer's reserve."""
        return self.millis / 1000 - deadlines.ANSWER_RESERVE_SECONDS


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def error_response(service: str, status: int, code: str, message: str) -> AWSResponse:
    """The HTTP answer AWS gives for an error, in the service's protocol (JSON or S3's XML)."""
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers = HTTPHeaders({"Content-Type": "application/xml"})
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = HTTPHeaders({"Content-Type": "application/x-amz-json-1.0"})
    return AWSResponse(f"https://{service}.us-east-1.amazonaws.com/", status, headers, _RawBody(body))


# A fault: given (service, resource name for messages, clock), raise or return the answer.
Fault = Callable[[str, str, FakeClock], AWSResponse]


def connection_refused(service: str, resource: str, clock: FakeClock) -> AWSResponse:
    clock.advance(0.01)
    raise EndpointConnectionError(endpoint_url=f"https://{resource}.{service}.amazonaws.com/")


def connect_timeout(service: str, resource: str, clock: FakeClock) -> AWSResponse:
    clock.advance(deadlines.CONNECT_TIMEOUT)
    raise ConnectTimeoutError(endpoint_url=f"https://{resource}.{service}.amazonaws.com/")


def read_timeout(service: str, resource: str, clock: FakeClock) -> AWSResponse:
    clock.advance(deadlines.ATTEMPT_SECONDS)  # connected at once, then nothing until the timeout
    raise ReadTimeoutError(endpoint_url=f"https://{resource}.{service}.amazonaws.com/")


def throttling(service: str, resource: str, clock: FakeClock) -> AWSResponse:
    clock.advance(0.01)
    if service == "s3":
        return error_response(service, 503, "SlowDown", f"Please reduce your request rate on {resource}")
    return error_response(service, 400, "ThrottlingException", f"Rate exceeded for {resource}")


def internal_error(service: str, resource: str, clock: FakeClock) -> AWSResponse:
    clock.advance(0.01)
    code = {"s3": "InternalError", "kms": "KMSInternalException"}.get(service, "InternalServerError")
    return error_response(service, 500, code, f"Internal error on {resource}")


FAULTS: dict[str, Fault] = {
    "connection-refused": connection_refused,
    "connect-timeout": connect_timeout,
    "read-timeout": read_timeout,
    "throttling": throttling,
    "internal-error": internal_error,
}


@dataclass
class Injection:
    """A fault on one operation of one client, until `end()`; `calls` counts the attempts it saw."""

    fault: Fault
    clock: FakeClock
    resource: str
    when: Callable[[Any], bool]
    active: bool = True
    calls: int = 0

    def hook(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if not (self.active and self.when(request)):
            return None
        self.calls += 1
        return self.fault(event_name.split(".")[1], self.resource, self.clock)

    def end(self) -> None:
        self.active = False


def inject(
    client: Any,
    operation: str,
    fault: Fault,
    clock: FakeClock,
    *,
    resource: str = "resource",
    when: Callable[[Any], bool] = lambda _: True,
) -> Injection:
    """`fault` for each attempt of `operation` (botocore's name, e.g. "GetItem"; "" for every
    operation) on `client`."""
    injection = Injection(fault, clock, resource, when)
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-send.{service}.{operation}" if operation else f"before-send.{service}"
    client.meta.events.register_first(event, injection.hook)
    return injection


def stall(client: Any, operation: str, clock: FakeClock, seconds: float) -> Injection:
    """Every attempt of `operation` takes `seconds`, then succeeds (a slow, not a failing, AWS)."""

    def slow(service: str, resource: str, clock: FakeClock) -> Any:
        clock.advance(seconds)
        return None  # botocore (moto) answers

    return inject(client, operation, slow, clock)


def key_starts(prefix: str) -> Callable[[Any], bool]:
    """Matches DynamoDB requests on items whose key starts with `prefix`."""

    def matches(request: Any) -> bool:
        body = json.loads(request.body or b"{}")
        return str(body.get("Key", {}).get("pk", {}).get("S", "")).startswith(prefix)

    return matches
