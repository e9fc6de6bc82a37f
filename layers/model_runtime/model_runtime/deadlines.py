"""A deadline per request: every AWS call fits in what the invocation has left.

A container creates its boto3 clients once; a request must not wait on them longer than its
function has left, or Lambda kills it ("Task timed out"), the client gets API Gateway's bare 502,
and on AWS the execution environment and its warm models are discarded. So the limits are:

- per attempt, fixed in the client (`CLIENT_CONFIG`): `CONNECT_TIMEOUT` + `READ_TIMEOUT` =
  `ATTEMPT_SECONDS`. Generous next to in-region latency (DynamoDB GetItem and KMS answer in
  milliseconds), short next to a function's `Timeout`;
- per request, from `context.get_remaining_time_in_millis()` minus `ANSWER_RESERVE_SECONDS`
  (time to answer after the last call) minus what the request spent before this invocation:
  an attempt starts only if it can end before that (`DeadlineExceeded` otherwise), and a retry
  only if its backoff and a whole attempt still fit.

What the request spent before: a client waits for the authorizer *and then* the function, and
each could spend its own deadline on AWS (4 s + 9 s, over predict's 10 s: the fault drill
measured answers of 10.0-11.7 s with moto stalled). So the deadline counts from when API Gateway
received the request (`requestContext.requestTimeEpoch`, milliseconds), not from when this
invocation started: the function gets what the authorizer left, and authorizer plus function
answer within the function's `Timeout` (an authorizer answer API Gateway cached costs nothing).

Retries are ours, not botocore's (`total_max_attempts` 1 in the client): what is retryable is
botocore's own standard-mode rule (`StandardRetryConditions`: connection errors, timeouts, 5xx,
throttling), the delay is capped exponential backoff with full jitter (AWS Builders' Library,
"Timeouts, retries, and backoff with jitter"), and no delay is slept that the deadline cannot
afford. botocore's handler cannot be asked for its delay before it sleeps it, and its delays
(up to 20 s, more with `x-amz-retry-after`) do not fit a 5 s authorizer.

`Deadline.begin(context, event)` is made by each handler for each request: three stores in a
per-thread object and a read of the event's receipt time; with no context (inferctl, scripts)
there is no deadline. The warm path makes no AWS call, so it pays only that: about 400 ns
measured (timeit, 2026-12-06; 60 ns when it was one plain attribute store), against about
250 us for a warm batch-1 prediction (docs/static-stability.md has the budget of each function).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import RetryEventAdapter, StandardRetryConditions

CONNECT_TIMEOUT: Final = 0.5
READ_TIMEOUT: Final = 1.0
ATTEMPT_SECONDS: Final = CONNECT_TIMEOUT + READ_TIMEOUT
MAX_ATTEMPTS: Final = 3
BACKOFF_BASE_SECONDS: Final = 0.2
BACKOFF_CAP_SECONDS: Final = 1.0
# After the last AWS call: parse and run a model, build the answer, flush the metrics.
ANSWER_RESERVE_SECONDS: Final = 1.0
# API Gateway's integration timeout: it never invokes a function for a request older than this,
# so an older receipt time is not this request's (a sample event replayed: tests, `sam local
# invoke`) and is ignored.
GATEWAY_TIMEOUT_SECONDS: Final = 29.0

# botocore retries nothing itself (one attempt): `Deadline.needs_retry` decides.
CLIENT_CONFIG: Final = Config(
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
    retries={"total_max_attempts": 1, "mode": "standard"},
)

# What a failed AWS call raises: throttling, 5xx, timeouts, refused connections, and these.
DEPENDENCY_ERRORS: Final = (BotoCoreError, ClientError)


def describe_failure(error: BotoCoreError | ClientError) -> dict[str, str]:
    """What the operator's log says of a failed AWS call: the operation and the error code, never
    the message (it names tables, buckets and keys)."""
    code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else ""
    return {
        "aws_operation": str(getattr(error, "operation_name", "")),
        "aws_error": str(code or type(error).__name__),
    }


class DeadlineExceeded(BotoCoreError):
    """The request has too little time left for another AWS attempt (no request was sent)."""

    fmt = "Too little time is left for the call."


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class _Request(threading.local):
    """The current request's deadline, per thread: Lambda runs one request at a time in an
    execution environment, but the local stack runs concurrent requests in threads of one
    process (local/gateway.py), as Lambda would in separate environments."""

    context: RemainingTime | None = None
    spent = 0.0  # seconds between API Gateway receiving the request and `begin`
    single_attempt = False


class Deadline:
    """The current invocation's time for AWS calls, enforced on every client it `install`s on."""

    def __init__(
        self,
        reserve_seconds: float = ANSWER_RESERVE_SECONDS,
        *,
        attempt_seconds: float = ATTEMPT_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.reserve_seconds = reserve_seconds
        self.attempt_seconds = attempt_seconds
        self._request = _Request()
        self._retryable = StandardRetryConditions(max_attempts=max_attempts)
        self._adapter = RetryEventAdapter()

    def begin(self, context: RemainingTime | None, event: Mapping[str, Any] | None = None) -> None:
        """A new request: its deadline is the context's remaining time minus the reserve, minus
        the time since API Gateway received `event` (its authorizer's, and any wait before)."""
        request = self._request
        request.context = context
        request.spent = 0.0
        received_ms = ((event or {}).get("requestContext") or {}).get("requestTimeEpoch")
        if isinstance(received_ms, int) and context is not None:
            spent = time.time() - received_ms / 1000
            # A receipt time that leaves this invocation nothing is not this request's: a replayed
            # event, or `sam local start-api`'s, which SAM CLI 1.170 fixes once when it starts.
            left = context.get_remaining_time_in_millis() / 1000 - self.reserve_seconds
            if 0 < spent < min(GATEWAY_TIMEOUT_SECONDS, left):
                request.spent = spent

    def remaining(self) -> float:
        """Seconds left for AWS calls (infinite outside an invocation)."""
        request = self._request
        if request.context is None:
            return math.inf
        return request.context.get_remaining_time_in_millis() / 1000 - self.reserve_seconds - request.spent

    @contextmanager
    def single_attempt(self) -> Iterator[None]:
        """Calls made inside are not retried: for a refresh that has a last known good value to
        fall back on, where a retry would only make the request wait (model_runtime/ttl_cache.py)."""
        request = self._request
        previous, request.single_attempt = request.single_attempt, True
        try:
            yield
        finally:
            request.single_attempt = previous

    def install(self, client: Any) -> Any:
        """Make `client` keep to this deadline; returns it."""
        events = client.meta.events
        events.register_first("before-send", self.before_send, unique_id="deadline-before-send")
        events.register_first("needs-retry", self.needs_retry, unique_id="deadline-needs-retry")
        return client

    def before_send(self, **_: Any) -> None:
        # Raised here, botocore hands it to needs-retry as the attempt's exception, which is
        # not retryable, and then raises it from the call.
        if self.remaining() < self.attempt_seconds:
            raise DeadlineExceeded()

    def needs_retry(self, **kwargs: Any) -> float | bool | None:
        """The delay before the next attempt; False (stop) when the deadline cannot afford it."""
        context = self._adapter.create_retry_context(**kwargs)
        if not self._retryable.is_retryable(context):
            return None
        if self._request.single_attempt:
            return False
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (context.attempt_number - 1))
        delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
        if self.remaining() < delay + self.attempt_seconds:
            return False
        return delay
