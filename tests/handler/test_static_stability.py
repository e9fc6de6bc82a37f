"""When DynamoDB, S3 or KMS stall or fail: every request is answered within its time, by the
contract, and what a container read before keeps being served for a bounded grace.

Faults are injected where botocore would send the request (tests/faults.py), so the clients'
deadline, retries and backoff run as in production; the clock is fake, so a stall of seconds
costs none, and the time each answer took is measured on it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from model_runtime import deadlines, ttl_cache

from functions.authorizer import app as authorizer_app
from functions.login import app as login_app
from functions.predict import app as predict_app
from inferctl.onboarding import revoke_tokens, set_tenant_status
from tests.faults import (
    FAULTS,
    ClockedContext,
    FakeClock,
    inject,
    key_starts,
    stall,
)
from tests.support import (
    Stack,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    response_header,
    token_for,
    use_runtime,
)

LEAKS = ("Traceback", "botocore", "Exception", "Error", "Throttl", "Rate exceeded", "arn:", "amazonaws")
TTL = 60  # MAPPING_TTL_SECONDS's default, which the tests run with
GRACE = 300  # STALE_GRACE_SECONDS's default


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


def client(service: str) -> Any:
    runtime = current_runtime()
    return {"dynamodb": runtime.dynamodb, "kms": runtime.kms, "s3": runtime.s3}[service]


def assert_contract_503(response: dict[str, Any], *names: str) -> None:
    """The documented dependency answer: 503 problem+json, Retry-After, the six headers, no names."""
    assert_problem(response, 503)
    assert_security_headers(response)
    assert int(response_header(response, "Retry-After") or 0) >= 1
    for leak in (*names, *LEAKS):
        assert leak not in response["body"], leak


def predict(token: str, context: ClockedContext) -> dict[str, Any]:
    event = load_event("predict_alice", alice_token=token)
    result: dict[str, Any] = predict_app.lambda_handler(event, context)
    return result


# (service, operation, which requests) on each function's request path, in a fresh container.
PREDICT_CALLS = {
    "keyring": ("dynamodb", "GetItem", key_starts("keyring")),
    "public-key": ("kms", "GetPublicKey", lambda _: True),
    "tenant": ("dynamodb", "GetItem", key_starts("tenant#")),
    "model": ("s3", "GetObject", lambda _: True),
}
AUTHORIZER_CALLS = {name: PREDICT_CALLS[name] for name in ("keyring", "public-key", "tenant")}
LOGIN_CALLS = {
    "count-attempt": ("dynamodb", "UpdateItem", lambda _: True),
    "user": ("dynamodb", "GetItem", key_starts("user#")),
    "tenant": ("dynamodb", "GetItem", key_starts("tenant#")),
    "clear-attempts": ("dynamodb", "DeleteItem", lambda _: True),
    "keyring": ("dynamodb", "GetItem", key_starts("keyring")),
    "public-key": ("kms", "GetPublicKey", lambda _: True),
    "sign": ("kms", "Sign", lambda _: True),
}


def cases(calls: dict[str, Any]) -> list[Any]:
    # One test per call, every fault in it (each in a fresh container): the stack is built once.
    return [pytest.param(call, id=name) for name, call in calls.items()]


# --- 1. every AWS call on the request path: a 503 in time, never a timeout or a raw exception ---


@pytest.mark.parametrize("call", cases(PREDICT_CALLS))
def test_predict_answers_a_failing_dependency_with_the_503_within_its_budget(
    demo: Stack, alice_token: str, clock: FakeClock, call: Any
) -> None:
    for fault in FAULTS.values():
        # Given a fresh container, and one AWS call of predict's path failing on every attempt
        use_runtime()
        service, operation, when = call
        injection = inject(client(service), operation, fault, clock, resource=demo.table_name, when=when)
        context = ClockedContext(clock=clock, millis=10_000)
        # When alice asks for a prediction
        response = predict(alice_token, context)
        # Then she gets the documented 503, before the function's deadline, naming nothing
        assert_contract_503(response, demo.table_name, demo.bucket, demo.key_id)
        assert context.elapsed <= context.budget, fault.__name__
        # And the call was tried, and retried no more than the budget allows
        assert 1 <= injection.calls <= deadlines.MAX_ATTEMPTS, fault.__name__


@pytest.mark.parametrize("call", cases(AUTHORIZER_CALLS))
def test_authorizer_turns_a_failing_dependency_into_the_gateways_503_with_one_log_line(  # noqa: PLR0917
    demo: Stack,
    alice_token: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    call: Any,
) -> None:
    caplog.set_level(logging.INFO)
    for fault in FAULTS.values():
        # Given a fresh authorizer container, and one AWS call of its path failing
        use_runtime()
        service, operation, when = call
        inject(client(service), operation, fault, clock, resource=demo.table_name, when=when)
        context = ClockedContext(clock=clock, millis=5_000)  # the authorizer's Timeout
        caplog.clear()
        capsys.readouterr()
        event = load_event("authorizer_alice", alice_token=alice_token)
        # When API Gateway asks it about alice's request
        with pytest.raises(authorizer_app.AuthorizerUnavailable) as raised:
            authorizer_app.lambda_handler(event, context)
        # Then it fails with a fixed message other than "Unauthorized" (API Gateway's authorizer
        # error, which the template answers with a 503), in time, chaining no botocore error
        assert str(raised.value) == "Service Unavailable"
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        assert context.elapsed <= context.budget, fault.__name__
        # And the operator gets one warning line naming the fault, no traceback, and a metric
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [r.getMessage() for r in lines] == ["dependency failed"]
        assert lines[0].exc_info is None
        assert getattr(lines[0], "aws_error", "")
        assert "AuthorizerDependencyFailure" in capsys.readouterr().out


@pytest.mark.parametrize("call", cases(LOGIN_CALLS))
def test_login_answers_a_failing_dependency_with_the_503_within_its_budget(
    demo: Stack, clock: FakeClock, call: Any
) -> None:
    for fault in FAULTS.values():
        # Given a fresh login container, and one AWS call of a password login failing
        use_runtime()
        service, operation, when = call
        inject(client(service), operation, fault, clock, resource=demo.table_name, when=when)
        context = ClockedContext(clock=clock, millis=10_000)
        # When alice logs in with her right password
        response = login_app.lambda_handler(load_event("login_success"), context)
        # Then the answer is the documented 503 (no token), before the function's deadline
        assert_contract_503(response, demo.table_name, demo.key_id)
        assert "access_token" not in response["body"]
        assert context.elapsed <= context.budget, fault.__name__


def test_login_never_checks_a_password_whose_attempt_could_not_be_counted(
    demo: Stack, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    monkeypatch.setattr(login_app, "verify_password", lambda *args: checked.append("checked") or True)
    for fault in FAULTS.values():
        # Given DynamoDB failing the write that counts a login attempt
        use_runtime()
        inject(current_runtime().dynamodb, "UpdateItem", fault, clock)
        # When alice logs in
        response = login_app.lambda_handler(load_event("login_success"), ClockedContext(clock=clock))
        # Then the lockout fails closed: a 503, and no password was checked
        assert_contract_503(response)
        assert checked == [], fault.__name__


def lost_answer(table: Any, operation: str, *, applied: bool, late: list[Any] | None = None) -> None:
    """`table.<operation>` times out on its way back: the write was applied first (`applied`), or
    is applied only later, when the test runs what `late` collected (a stall that ends)."""
    original = getattr(table, operation)

    def timed_out(*args: Any) -> Any:
        if applied:
            original(*args)
        elif late is not None:
            late.append(lambda: original(*args))
        raise ReadTimeoutError(endpoint_url="https://dynamodb")

    setattr(table, operation, timed_out)


@pytest.mark.parametrize("applied", [True, False], ids=["applied-before-the-release", "applied-after-it"])
def test_a_stall_does_not_lock_out_a_user_whose_attempts_ended_in_a_503(
    demo: Stack, clock: FakeClock, applied: bool
) -> None:
    # Given DynamoDB stalling: each write that counts alice's attempt is applied (before or
    # after the function gave up on it and took the attempt back), but its answer never comes
    use_runtime()
    table, late = current_runtime().table, []
    lost_answer(table, "count_attempt", applied=applied, late=late)
    # When she signs in with her right password more often than the lockout threshold allows
    answers = [
        login_app.lambda_handler(load_event("login_success"), ClockedContext(clock=clock)) for _ in range(6)
    ]
    for run_late_write in late:  # the stall ends: DynamoDB applies what was sent during it
        run_late_write()
    # Then each was the 503, and once DynamoDB answers again her right password works: attempts
    # that ended in a dependency failure were taken back, not counted as failed guesses
    for response in answers:
        assert_contract_503(response)
    del table.count_attempt
    assert (
        login_app.lambda_handler(load_event("login_success"), ClockedContext(clock=clock))["statusCode"]
        == 200
    )


def test_wrong_passwords_still_lock_the_account_when_a_dependency_failed_in_between(
    demo: Stack, clock: FakeClock
) -> None:
    # Given one login that ended in a 503 (the user read failed after the attempt was counted)
    use_runtime()
    inject(current_runtime().dynamodb, "GetItem", FAULTS["throttling"], clock, when=key_starts("user#"))
    assert_contract_503(login_app.lambda_handler(load_event("login_success"), ClockedContext(clock=clock)))
    use_runtime()
    # When five wrong passwords follow
    wrong = load_event("login_success")
    wrong["body"] = json.dumps({"username": "alice", "password": "wrong-guess"})
    statuses = [login_app.lambda_handler(wrong, ClockedContext(clock=clock))["statusCode"] for _ in range(5)]
    # Then they are counted as ever: five 401s, and then even the right password is locked out
    assert statuses == [401] * 5
    assert (
        login_app.lambda_handler(load_event("login_success"), ClockedContext(clock=clock))["statusCode"]
        == 429
    )


@pytest.mark.parametrize(
    ("function", "millis"),
    # predict's four calls fit in 10 s: an invocation with 6 s left (a slow model load before)
    [("predict", 6_000), ("authorizer", 5_000), ("login", 10_000)],
)
def test_a_slow_dependency_is_a_503_in_time_not_a_function_timeout(
    demo: Stack, alice_token: str, clock: FakeClock, function: str, millis: int
) -> None:
    # Given a fresh container, and DynamoDB and KMS answering every call, each just within its
    # read timeout: no attempt fails, but a request's calls together outlast the function
    use_runtime()
    slow = deadlines.ATTEMPT_SECONDS - 0.1
    for service in ("dynamodb", "kms", "s3"):
        stall(client(service), "", clock, slow)  # every operation
    context = ClockedContext(clock=clock, millis=millis)
    # When a request needs them
    if function == "authorizer":
        with pytest.raises(authorizer_app.AuthorizerUnavailable):
            authorizer_app.lambda_handler(load_event("authorizer_alice", alice_token=alice_token), context)
    else:
        event = load_event("predict_alice", alice_token=alice_token) if function == "predict" else None
        handler = predict_app.lambda_handler if function == "predict" else login_app.lambda_handler
        response = handler(event or load_event("login_success"), context)
        assert_contract_503(response)
    # Then it was refused before an attempt could outlast the deadline: in time, with time to answer
    assert context.elapsed <= context.budget


def test_authorizer_and_predict_together_answer_within_predicts_timeout(
    demo: Stack, alice_token: str, clock: FakeClock
) -> None:
    # Given a fresh predict container invoked 4 s after API Gateway received the request (its
    # authorizer spent them), and every AWS call answering just within its read timeout
    use_runtime()
    for service in ("dynamodb", "kms", "s3"):
        stall(client(service), "", clock, deadlines.ATTEMPT_SECONDS - 0.1)
    event = load_event("predict_alice", alice_token=alice_token)
    event["requestContext"]["requestTimeEpoch"] = int((time.time() - 4) * 1000)
    context = ClockedContext(clock=clock, millis=10_000)
    # When predict serves it
    response = predict_app.lambda_handler(event, context)
    # Then the 503 comes before the client's 10 s are over, the authorizer's 4 s included
    assert_contract_503(response)
    assert 4 + context.elapsed <= context.budget


# --- 2. last known good, for a bounded time --------------------------------------------------


def warm(alice_token: str, clock: FakeClock) -> None:
    """A container that has served alice: her mapping, the key ring and keys, the model."""
    use_runtime()
    assert predict(alice_token, ClockedContext(clock=clock))["statusCode"] == 200


def test_a_cached_tenant_is_served_through_an_outage_for_the_grace_and_then_refused(
    demo: Stack,
    alice_token: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a warm container, and DynamoDB unreachable once the mapping's TTL has passed
    warm(alice_token, clock)
    version = demo.tenant("tenant-a").model_version
    clock.advance(TTL + 1)
    down = inject(current_runtime().dynamodb, "GetItem", FAULTS["connection-refused"], clock)
    caplog.set_level(logging.WARNING)
    capsys.readouterr()
    # When alice keeps predicting for most of the grace
    answers = []
    for _ in range(5):
        answers.append(predict(alice_token, ClockedContext(clock=clock)))
        clock.advance(10)
    # Then she gets her right predictions, as before the outage
    assert [a["statusCode"] for a in answers] == [200] * 5
    assert json.loads(answers[-1]["body"])["model_version"] == version
    # And the operator is told once per key per minute (mapping and key ring), and it is counted
    stale_lines = [r for r in caplog.records if r.getMessage() == "serving last known good"]
    assert sorted(getattr(r, "cache", "") for r in stale_lines) == ["keyring", "tenant"]
    assert "StaleServed" in capsys.readouterr().out
    # When the outage outlasts the TTL and the grace
    clock.advance(TTL + GRACE)
    response = predict(alice_token, ClockedContext(clock=clock))
    # Then what the container knew is no longer used: the documented 503
    assert_contract_503(response)
    # When DynamoDB is back, Then she is served again, without a restart
    down.end()
    clock.advance(ttl_cache.BACKOFF_CAP_SECONDS)
    assert predict(alice_token, ClockedContext(clock=clock))["statusCode"] == 200


@pytest.mark.parametrize("change", ["tenant-disabled", "tokens-revoked"])
def test_grace_never_overrides_a_successful_read_that_says_disabled_or_revoked(
    demo: Stack, alice_token: str, clock: FakeClock, change: str
) -> None:
    # Given a warm container serving alice's last known mapping through a DynamoDB outage
    warm(alice_token, clock)
    clock.advance(TTL + 1)
    down = inject(current_runtime().dynamodb, "GetItem", FAULTS["internal-error"], clock)
    assert predict(alice_token, ClockedContext(clock=clock))["statusCode"] == 200
    # When DynamoDB is back, and the read it answers says the tenant is disabled (or her tokens revoked)
    down.end()
    if change == "tenant-disabled":
        set_tenant_status(current_runtime(), "tenant-a", active=False)
    else:
        revoke_tokens(current_runtime(), "tenant-a")
    clock.advance(ttl_cache.BACKOFF_CAP_SECONDS)  # the next refresh is due
    response = predict(alice_token, ClockedContext(clock=clock))
    # Then that answer applies at once, well within the grace: refused, not served from before
    assert response["statusCode"] == (403 if change == "tenant-disabled" else 401)


def test_grace_zero_fails_closed(
    demo: Stack, alice_token: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a warm container configured with STALE_GRACE_SECONDS=0
    monkeypatch.setenv("STALE_GRACE_SECONDS", "0")
    warm(alice_token, clock)
    # When the mapping's TTL has passed and DynamoDB throttles
    clock.advance(TTL + 1)
    inject(current_runtime().dynamodb, "GetItem", FAULTS["throttling"], clock)
    response = predict(alice_token, ClockedContext(clock=clock))
    # Then nothing stale is served: the 503, as without the feature
    assert_contract_503(response)


# --- 3. no retry storm --------------------------------------------------------------------------


def test_a_failing_refresh_is_not_retried_on_every_request(
    demo: Stack, alice_token: str, clock: FakeClock
) -> None:
    # Given a fresh container and DynamoDB throttling the tenant's mapping, which it never read
    use_runtime()
    down = inject(
        current_runtime().dynamodb, "GetItem", FAULTS["throttling"], clock, when=key_starts("tenant#")
    )
    assert_contract_503(predict(alice_token, ClockedContext(clock=clock)))
    first = down.calls
    # When twenty more requests come within the backoff
    answers = [predict(alice_token, ClockedContext(clock=clock)) for _ in range(20)]
    # Then they get the 503 at once, and DynamoDB was not asked again
    for answer in answers:
        assert_contract_503(answer)
    assert down.calls == first
    # When the backoff has passed, Then one request tries again (and only one)
    clock.advance(ttl_cache.BACKOFF_CAP_SECONDS)
    predict(alice_token, ClockedContext(clock=clock))
    predict(alice_token, ClockedContext(clock=clock))
    assert first < down.calls <= 2 * first
    # When DynamoDB recovers, Then the tenant is served after at most one more backoff
    down.end()
    clock.advance(ttl_cache.BACKOFF_CAP_SECONDS)
    assert predict(alice_token, ClockedContext(clock=clock))["statusCode"] == 200


def test_cached_tenants_cost_dynamodb_one_refresh_per_backoff_during_an_outage(
    demo: Stack, alice_token: str, clock: FakeClock
) -> None:
    # Given a warm container, and DynamoDB down after the mapping's TTL
    warm(alice_token, clock)
    clock.advance(TTL + 1)
    down = inject(current_runtime().dynamodb, "GetItem", FAULTS["connection-refused"], clock)
    # When alice sends fifty requests in a row
    started = clock.now
    answers = [predict(alice_token, ClockedContext(clock=clock)) for _ in range(50)]
    # Then all are served, and DynamoDB saw a few refreshes of the two keys (mapping, key ring),
    # each with its retries, as their backoffs ran out: not two calls per request
    assert {a["statusCode"] for a in answers} == {200}
    assert clock.now - started < 2 * ttl_cache.BACKOFF_CAP_SECONDS
    assert down.calls <= 2 * 2 * deadlines.MAX_ATTEMPTS


def test_a_refresh_with_a_last_known_good_value_is_tried_once_not_retried(
    demo: Stack, alice_token: str, clock: FakeClock
) -> None:
    # Given a warm container, and DynamoDB stalled (every read times out) after the mapping's TTL
    warm(alice_token, clock)
    clock.advance(TTL + 1)
    stalled = inject(
        current_runtime().dynamodb, "GetItem", FAULTS["read-timeout"], clock, when=key_starts("tenant#")
    )
    context = ClockedContext(clock=clock)
    # When alice predicts
    response = predict(alice_token, context)
    # Then she is served from last known good after one attempt: no retries held her up
    assert response["statusCode"] == 200
    assert stalled.calls == 1
    assert context.elapsed <= deadlines.ATTEMPT_SECONDS + 0.1


def test_bobs_token_is_refused_while_alices_is_served_from_last_known_good(
    demo: Stack, alice_token: str, bob_token: str, clock: FakeClock
) -> None:
    # Given a container that has only served alice, and DynamoDB down after the TTL
    warm(alice_token, clock)
    clock.advance(TTL + 1)
    inject(current_runtime().dynamodb, "GetItem", FAULTS["connection-refused"], clock)
    # When bob, whose mapping this container never read, and alice predict
    bob_event = load_event("predict_bob", bob_token=bob_token)
    bob = predict_app.lambda_handler(bob_event, ClockedContext(clock=clock))
    alice = predict(alice_token, ClockedContext(clock=clock))
    # Then bob gets the 503 (nothing known of him is used, nor alice's), and alice her answer
    assert_contract_503(bob)
    assert alice["statusCode"] == 200


def test_a_new_token_of_a_tenant_served_from_last_known_good_is_still_verified(
    demo: Stack, alice_token: str, clock: FakeClock
) -> None:
    # Given a warm container serving alice from last known good through an outage
    warm(alice_token, clock)
    forged = token_for("alice", "tenant-a")[:-8] + "AAAAAAAA"  # a signature no key made
    clock.advance(TTL + 1)
    inject(current_runtime().dynamodb, "GetItem", FAULTS["connection-refused"], clock)
    assert predict(alice_token, ClockedContext(clock=clock))["statusCode"] == 200
    # When a token for her tenant arrives with a signature no key of the ring made
    response = predict(forged, ClockedContext(clock=clock))
    # Then it is refused like any bad token: grace keeps state, it skips no check
    assert response["statusCode"] == 401
