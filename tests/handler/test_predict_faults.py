"""Predict when DynamoDB, S3 or KMS fail: a retryable 503 that names nothing, and a quick recovery.

The faults are raised by the very boto3 clients the code uses (the ones the handlers' `Runtime`
holds), with the error shapes botocore produces, and their messages deliberately
carry the table, bucket and key names, so a test fails if any of that reaches the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from model_runtime import ttl_cache

from functions.predict.app import lambda_handler
from tests.faults import FakeClock
from tests.support import (
    FakeLambdaContext,
    Stack,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    response_header,
    use_runtime,
)

FaultFactory = Callable[[str, str], Exception]
LEAKS = ("Traceback", "ClientError", "botocore", "Exception", "Error:", "Throttl", "arn:", "amazonaws")


def client_error(code: str) -> FaultFactory:
    def make(operation: str, resource: str) -> Exception:
        response: Any = {
            "Error": {"Code": code, "Message": f"{code} on {resource}"},
            "ResponseMetadata": {"HTTPStatusCode": 500 if code == "InternalError" else 400},
        }
        return ClientError(response, operation)

    return make


def connection_error(operation: str, resource: str) -> Exception:
    return EndpointConnectionError(endpoint_url=f"https://{resource}.amazonaws.com/")


def read_timeout(operation: str, resource: str) -> Exception:
    return ReadTimeoutError(endpoint_url=f"https://{resource}.amazonaws.com/")


FAULTS: dict[str, FaultFactory] = {
    "throttling": client_error("ThrottlingException"),
    "throughput-exceeded": client_error("ProvisionedThroughputExceededException"),
    "internal-error": client_error("InternalError"),
    "endpoint-unreachable": connection_error,
    "read-timeout": read_timeout,
}


def assert_retryable_503(response: dict[str, Any], *names: str) -> None:
    """503 problem+json with Retry-After, and neither resource names nor exception details."""
    assert_problem(response, 503)
    assert_security_headers(response)
    assert int(response_header(response, "Retry-After") or 0) >= 1
    for leak in (*names, *LEAKS):
        assert leak not in response["body"], leak


Predict = Callable[[], dict[str, Any]]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The caches' clock: a failed refresh backs off (model_runtime/ttl_cache.py) until it moves."""
    return FakeClock().install(monkeypatch)


@pytest.fixture
def predict_alice(alice_token: str, context: FakeLambdaContext) -> Predict:
    """Alice's valid prediction request, sent to the handler."""
    return lambda: lambda_handler(load_event("predict_alice", alice_token=alice_token), context)


class Outage:
    """`client.method` raises `fault` for calls matching `when` until `end()`; others go through."""

    def __init__(self, client: Any, method: str, fault: Exception, when: Callable[..., bool]) -> None:
        self.client, self.method, self.fault, self.when = client, method, fault, when
        self.active = True

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def faulty(**kwargs: Any) -> Any:
            if self.active and self.when(**kwargs):
                raise self.fault
            return real(**kwargs)

        return faulty

    def end(self) -> None:
        self.active = False


StartOutage = Callable[[Any, str, Exception, Callable[..., bool]], Outage]


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> StartOutage:
    """Starts an outage on a client of the handlers' `Runtime`, the one the code calls."""

    def start(client: Any, method: str, fault: Exception, when: Callable[..., bool]) -> Outage:
        started = Outage(client, method, fault, when)
        monkeypatch.setattr(client, method, started.wrap(getattr(client, method)))
        return started

    return start


def reading(pk_prefix: str) -> Callable[..., bool]:
    """Matches DynamoDB reads of items whose key starts with `pk_prefix`."""
    return lambda **kwargs: str(kwargs["Key"]["pk"]["S"]).startswith(pk_prefix)


def every_call(**_: Any) -> bool:
    return True


def dependency_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The `aws_error` of each "dependency failed" line: what the operator sees of the fault."""
    return [getattr(r, "aws_error", "") for r in caplog.records if r.getMessage() == "dependency failed"]


def error_name(fault: Exception) -> str:
    return fault.response["Error"]["Code"] if isinstance(fault, ClientError) else type(fault).__name__


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_dynamodb_fault_on_tenant_lookup_is_a_retryable_503(  # noqa: PLR0917 (fixtures)
    predict_alice: Predict,
    s3_calls: list[str],
    outage: StartOutage,
    caplog: pytest.LogCaptureFixture,
    clock: FakeClock,
    fault: FaultFactory,
) -> None:
    # Given DynamoDB fails when alice's tenant mapping is read
    settings, tenant = current_runtime().settings, current_runtime().table.get_tenant("tenant-a")
    assert tenant is not None
    error = fault("GetItem", settings.table_name)
    dynamodb_down = outage(current_runtime().dynamodb, "get_item", error, reading("tenant#"))
    caplog.set_level(logging.WARNING)
    # When alice asks for a prediction
    response = predict_alice()
    # Then she gets a retryable 503 that names no table, bucket or key, and no model was fetched
    assert_retryable_503(
        response, settings.table_name, settings.model_bucket, tenant.model_key, "tenant#", "tenant-a"
    )
    assert s3_calls == []
    # And the operator's log names the fault
    assert dependency_log(caplog) == [error_name(error)]
    # When DynamoDB recovers, and the failed refresh's backoff has passed
    dynamodb_down.end()
    clock.advance(ttl_cache.BACKOFF_CAP_SECONDS)
    # Then the next request is served: the failure was not cached as "no mapping"
    assert predict_alice()["statusCode"] == 200


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_dynamodb_fault_on_keyring_lookup_is_a_503_not_a_401(
    predict_alice: Predict, outage: StartOutage, fault: FaultFactory
) -> None:
    # Given a fresh container whose first read, the key ring, fails
    use_runtime()  # a fresh container: issuing alice's token warmed the key caches
    table_name = current_runtime().settings.table_name
    outage(current_runtime().dynamodb, "get_item", fault("GetItem", table_name), reading("keyring"))
    # When alice asks for a prediction with a valid token
    response = predict_alice()
    # Then it is the service that is unavailable: 503, not a rejection of her token
    assert_retryable_503(response, table_name, "keyring")
    assert response_header(response, "WWW-Authenticate") is None


S3_FAULTS: dict[str, FaultFactory] = {
    **FAULTS,
    "slow-down": client_error("SlowDown"),
    # AccessDenied is how S3 says a model is missing to a role without s3:ListBucket: a refused
    # model, not a dependency fault (tests/handler/test_missing_model_on_aws.py, decision 0007)
}


@pytest.mark.parametrize("fault", S3_FAULTS.values(), ids=S3_FAULTS.keys())
def test_s3_fault_on_model_fetch_is_a_retryable_503(
    demo: Stack,
    predict_alice: Predict,
    outage: StartOutage,
    caplog: pytest.LogCaptureFixture,
    fault: FaultFactory,
) -> None:
    # Given S3 fails when alice's model is fetched
    tenant = demo.tenant("tenant-a")
    error = fault("GetObject", f"{demo.bucket}/{tenant.model_key}")
    s3_down = outage(current_runtime().s3, "get_object", error, every_call)
    caplog.set_level(logging.WARNING)
    # When alice asks for a prediction
    response = predict_alice()
    # Then she gets a retryable 503 that names no bucket, key or digest
    assert_retryable_503(
        response, demo.bucket, demo.table_name, tenant.model_key, tenant.model_sha256, "models/"
    )
    # And nothing was cached, and the operator's log names the fault
    assert len(current_runtime().models) == 0
    assert dependency_log(caplog) == [error_name(error)]
    # When S3 recovers, Then the next request is served
    s3_down.end()
    assert predict_alice()["statusCode"] == 200


KMS_FAULTS: dict[str, FaultFactory] = {
    "kms-internal": client_error("KMSInternalException"),
    "throttling": client_error("ThrottlingException"),
    "endpoint-unreachable": connection_error,
}


@pytest.mark.parametrize("fault", KMS_FAULTS.values(), ids=KMS_FAULTS.keys())
def test_kms_get_public_key_fault_is_a_503_not_a_401(
    demo: Stack, predict_alice: Predict, outage: StartOutage, clock: FakeClock, fault: FaultFactory
) -> None:
    # Given a fresh container whose KMS GetPublicKey call fails
    use_runtime()  # a fresh container: issuing alice's token warmed the key caches
    key_arn = f"arn:aws:kms:us-east-1:123456789012:key/{demo.key_id}"
    kms_down = outage(current_runtime().kms, "get_public_key", fault("GetPublicKey", key_arn), every_call)
    # When alice asks for a prediction with a valid token
    response = predict_alice()
    # Then it is a retryable 503 naming no key, not a 401 that would send her to log in again
    assert_retryable_503(response, demo.key_id)
    assert response_header(response, "WWW-Authenticate") is None
    # When KMS recovers (and the failed fetch's backoff has passed), Then her same token is accepted
    kms_down.end()
    clock.advance(ttl_cache.BACKOFF_CAP_SECONDS)
    assert predict_alice()["statusCode"] == 200


def test_model_card_dependency_fault_is_a_503(
    alice_token: str, context: FakeLambdaContext, outage: StartOutage
) -> None:
    # Given DynamoDB throttles the tenant lookup
    table_name = current_runtime().settings.table_name
    throttled = client_error("ThrottlingException")("GetItem", table_name)
    outage(current_runtime().dynamodb, "get_item", throttled, reading("tenant#"))
    # When alice asks for her model card
    response = lambda_handler(load_event("model_card", alice_token=alice_token), context)
    # Then it is the same retryable 503
    assert_retryable_503(response, table_name)
