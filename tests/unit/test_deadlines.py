"""A request's AWS calls keep to its deadline: no attempt starts that could end after it, and no
retry is slept that it cannot afford (model_runtime/deadlines.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from model_runtime import deadlines
from model_runtime.deadlines import Deadline, DeadlineExceeded
from model_runtime.runtime import Runtime
from model_runtime.settings import read_settings


class Remaining:
    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def retry_event(attempts: int, fault: Exception | None, status: int | None = None) -> dict[str, Any]:
    """The keyword arguments botocore's `needs-retry` event carries."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    response = None
    if status is not None:
        http = type("Http", (), {"status_code": status, "headers": {}})()
        response = (http, {"Error": {"Code": "Whatever"}, "ResponseMetadata": {"HTTPStatusCode": status}})
    return {
        "response": response,
        "endpoint": None,
        "operation": client.meta.service_model.operation_model("GetItem"),
        "attempts": attempts,
        "caught_exception": fault,
        "request_dict": {"context": {}},
    }


UNREACHABLE = EndpointConnectionError(endpoint_url="https://dynamodb.example/")


def test_outside_an_invocation_there_is_no_deadline() -> None:
    deadline = Deadline()
    assert deadline.remaining() == float("inf")
    deadline.before_send()  # no exception


def test_the_deadline_is_the_remaining_time_minus_the_reserve() -> None:
    deadline = Deadline()
    deadline.begin(Remaining(10_000))
    assert deadline.remaining() == 10 - deadlines.ANSWER_RESERVE_SECONDS


def received(seconds_ago: float) -> dict[str, Any]:
    """An API Gateway event that the gateway received `seconds_ago`."""
    return {"requestContext": {"requestTimeEpoch": int((time.time() - seconds_ago) * 1000)}}


def test_what_the_authorizer_spent_is_taken_from_the_functions_deadline() -> None:
    # Given predict invoked with its whole 10 s left, 4 s after API Gateway received the request
    # (the time its authorizer took)
    deadline = Deadline()
    # When its deadline begins
    deadline.begin(Remaining(10_000), received(4))
    # Then its AWS calls get what is left of the client's 10 s, not 10 s more
    assert (
        10 - deadlines.ANSWER_RESERVE_SECONDS - 4.5
        < deadline.remaining()
        <= 10 - deadlines.ANSWER_RESERVE_SECONDS - 4
    )


@pytest.mark.parametrize(
    "event",
    [received(3600), received(15), received(-60), {"requestContext": {"requestTimeEpoch": "x"}}, {}],
)
def test_a_receipt_time_that_is_not_this_requests_is_ignored(event: dict[str, Any]) -> None:
    # Given a replayed sample event (received an hour ago), a receipt time that would leave the
    # invocation nothing (sam local start-api's, fixed when SAM CLI starts), a clock ahead, a
    # malformed or no time
    deadline = Deadline()
    deadline.begin(Remaining(10_000), event)
    # Then the deadline is the invocation's own
    assert deadline.remaining() == 10 - deadlines.ANSWER_RESERVE_SECONDS


def test_no_attempt_starts_that_could_outlast_the_deadline() -> None:
    deadline = Deadline()
    millis = int((deadlines.ANSWER_RESERVE_SECONDS + deadlines.ATTEMPT_SECONDS) * 1000)
    deadline.begin(Remaining(millis))
    deadline.before_send()  # exactly one attempt's time left: it may go
    deadline.begin(Remaining(millis - 1))
    with pytest.raises(DeadlineExceeded):
        deadline.before_send()


def test_a_retry_is_slept_only_when_a_whole_attempt_still_fits_after_it() -> None:
    deadline = Deadline()
    deadline.begin(Remaining(10_000))
    # Plenty of time: a jittered delay within the first cap
    delay = deadline.needs_retry(**retry_event(1, UNREACHABLE))
    assert isinstance(delay, float)
    assert 0 <= delay <= deadlines.BACKOFF_BASE_SECONDS
    # Less than an attempt left after any delay: stop (False wins over botocore's own answer)
    millis = int((deadlines.ANSWER_RESERVE_SECONDS + deadlines.ATTEMPT_SECONDS) * 1000) - 1
    deadline.begin(Remaining(millis))
    assert deadline.needs_retry(**retry_event(1, UNREACHABLE)) is False


def test_what_is_retried_is_botocores_standard_rule_up_to_max_attempts() -> None:
    deadline = Deadline()
    deadline.begin(Remaining(10_000))
    assert deadline.needs_retry(**retry_event(1, None, status=503)) is not None  # 5xx: retried
    assert deadline.needs_retry(**retry_event(1, None, status=400)) is None  # a client error: not
    assert deadline.needs_retry(**retry_event(1, DeadlineExceeded())) is None  # out of time: not
    assert deadline.needs_retry(**retry_event(deadlines.MAX_ATTEMPTS, UNREACHABLE)) is None


@pytest.mark.parametrize(
    ("service", "operation"), [("dynamodb", "list_tables"), ("s3", "list_buckets"), ("kms", "list_keys")]
)
def test_every_client_of_a_runtime_keeps_to_its_deadline(service: str, operation: str) -> None:
    # Given a container's state whose request has run out of time
    runtime = Runtime(read_settings(), session=boto3.session.Session(region_name="us-east-1"))
    runtime.deadline.begin(Remaining(0))
    # When any of its clients is called, Then nothing is sent: the call fails at once
    with pytest.raises(DeadlineExceeded):
        getattr(getattr(runtime, service), operation)()


def test_inside_single_attempt_nothing_is_retried() -> None:
    deadline = Deadline()
    deadline.begin(Remaining(10_000))
    with deadline.single_attempt():
        assert deadline.needs_retry(**retry_event(1, UNREACHABLE)) is False
    assert isinstance(deadline.needs_retry(**retry_event(1, UNREACHABLE)), float)


def test_requests_in_two_threads_keep_their_own_deadlines() -> None:
    # Given one container's deadline, and a request in another thread with 2 s left and no retries
    deadline = Deadline()
    deadline.begin(Remaining(10_000))
    other: dict[str, Any] = {}

    def other_request() -> None:
        deadline.begin(Remaining(2_000))
        with deadline.single_attempt():
            other["remaining"] = deadline.remaining()
            other["retry"] = deadline.needs_retry(**retry_event(1, UNREACHABLE))

    # When that request runs while this one is being served
    thread = threading.Thread(target=other_request)
    thread.start()
    thread.join()
    # Then each sees its own deadline and its own retry rule (the local stack's concurrent requests)
    assert other == {"remaining": 2 - deadlines.ANSWER_RESERVE_SECONDS, "retry": False}
    assert deadline.remaining() == 10 - deadlines.ANSWER_RESERVE_SECONDS
    assert deadline.needs_retry(**retry_event(1, UNREACHABLE)) not in (False, None)
