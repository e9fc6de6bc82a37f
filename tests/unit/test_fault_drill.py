"""The fault drill's judgement (`local.fault_drill`), on synthetic results: which answers break the
contract, when a phase fails the acceptance, and what the table shows. The drill itself
(`make fault-drill`) starts processes and takes minutes: it is not part of `make test`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from local.fault_drill import (
    DYNAMODB_THROTTLED,
    S3_SLOWDOWN,
    SECURITY_HEADERS,
    Answer,
    FaultProxy,
    PhaseResult,
    aws_service,
    check_answer,
    contract_problem,
    drill_parameters,
    function_timeout,
    recovered,
    table,
    verdict,
)
from local.resources import load_template
from tests.support import EXPECTED_SECURITY_HEADERS

TIMEOUT = 10.0


def served(phase: str, tenant: str, seconds: float = 0.02) -> Answer:
    return Answer(phase, "predict", tenant, 200, seconds)


def phase_of(name: str, answers: list[Answer], seconds: float = 10.0, **asks: Any) -> PhaseResult:
    return PhaseResult(name, seconds, answers, **asks)


def healthy(rate_per_tenant: int = 50) -> PhaseResult:
    answers = [served("healthy", t) for t in ("tenant-a", "tenant-b") for _ in range(rate_per_tenant * 10)]
    return phase_of("healthy", answers)


def unavailable(phase: str, route: str = "login", seconds: float = 0.01) -> Answer:
    return Answer(phase, route, None if route == "login" else "tenant-a", 503, seconds)


# --- one answer -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [0, 500, 502, 504])
def test_no_answer_and_gateway_errors_always_fail(status: int) -> None:
    # Given an answer with one of the statuses the contract never allows, however fast
    answer = Answer("moto killed", "predict", "tenant-a", status, 0.01)
    # Then it is a failure, whatever else it carried
    assert check_answer(answer, TIMEOUT) is not None


def test_an_answer_later_than_the_function_timeout_fails_even_if_correct() -> None:
    late = Answer("moto stalled", "predict", "tenant-a", 200, TIMEOUT + 0.5)
    assert check_answer(late, TIMEOUT) == "predict: answered after 10.5 s (timeout 10 s)"
    assert check_answer(Answer("moto stalled", "predict", "tenant-a", 200, TIMEOUT - 0.5), TIMEOUT) is None


def test_an_answer_the_client_found_off_contract_fails() -> None:
    answer = Answer("healthy", "predict", "tenant-a", 503, 0.01, "503 without Retry-After")
    assert check_answer(answer, TIMEOUT) == "predict: 503 without Retry-After"


# --- what the client checks on the wire ---------------------------------------------------------


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    reply._content = json.dumps(body).encode()
    reply.headers.update(SECURITY_HEADERS if headers is None else headers)
    return reply


def problem_503(**headers: str) -> requests.Response:
    body = {"type": "x", "title": "Service Unavailable", "status": 503, "detail": "..."}
    reply = response(503, body)
    reply.headers.update({"Content-Type": "application/problem+json", "Retry-After": "1"} | headers)
    return reply


def test_the_drills_security_headers_are_the_readmes_six() -> None:
    assert SECURITY_HEADERS == EXPECTED_SECURITY_HEADERS


def test_a_503_problem_with_retry_after_and_the_six_headers_is_the_contract() -> None:
    assert contract_problem(problem_503(), lambda _: False) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"Retry-After": ""}, "503 without Retry-After"),
        ({"Content-Type": "application/json"}, "503 that is not problem+json"),
        ({"X-Frame-Options": ""}, "503 without X-Frame-Options"),
    ],
)
def test_a_503_missing_part_of_the_contract_is_named(change: dict[str, str], expected: str) -> None:
    assert contract_problem(problem_503(**change), lambda _: False) == expected


def test_a_200_must_be_the_right_prediction() -> None:
    # Given the answer the tenant's own model gives
    right = response(200, {"predictions": [0], "model_version": "abc"})
    wrong = response(200, {"predictions": [2], "model_version": "abc"})
    is_right = lambda body: body["predictions"] == [0]  # noqa: E731
    # Then only that answer is the contract
    assert contract_problem(right, is_right) is None
    assert contract_problem(wrong, is_right) == "200 with a wrong answer"


@pytest.mark.parametrize("status", [401, 403, 429])
def test_any_other_refusal_is_off_contract(status: int) -> None:
    reply = response(status, {"status": status})
    assert contract_problem(reply, lambda _: True) == f"{status} (neither an answer nor a 503)"


def test_a_bare_gateway_502_is_named_by_its_missing_headers() -> None:
    reply = response(502, {"message": "Internal server error"}, headers={})
    problem = contract_problem(reply, lambda _: True)
    assert problem is not None and problem.startswith("502 without Cache-Control")


# --- a phase -------------------------------------------------------------------------------------


def test_a_clean_drill_passes() -> None:
    # Given a healthy phase, and an outage in which both tenants stayed served at full speed while
    # logins got the 503
    outage = [served("moto killed", t) for t in ("tenant-a", "tenant-b") for _ in range(500)]
    outage += [unavailable("moto killed") for _ in range(20)]
    phases = [
        healthy(),
        phase_of("moto killed", outage, must_serve_cached=True, must_keep_half_throughput=True),
    ]
    # Then the verdict has nothing to say
    assert verdict(phases, TIMEOUT, tenants=2) == []


def test_one_bad_answer_fails_the_drill_and_is_counted() -> None:
    # Given an outage with two bare 502s among correct answers
    outage = [served("moto stalled", "tenant-a") for _ in range(100)]
    outage += [Answer("moto stalled", "predict", "tenant-b", 502, 0.5, "502 without Cache-Control")] * 2
    failures = verdict([healthy(), phase_of("moto stalled", outage)], TIMEOUT, tenants=2)
    assert failures == ["moto stalled: 2 x predict: 502"]


def test_a_cached_tenant_not_served_throughout_fails_where_the_acceptance_asks_it() -> None:
    # Given a stall in which tenant-b got one contract-conforming 503 among its predictions
    answers = [served("stall", t) for t in ("tenant-a", "tenant-b") for _ in range(50)]
    answers.append(unavailable("stall", route="predict"))
    answers[-1] = Answer("stall", "predict", "tenant-b", 503, 0.01)
    # Then that is acceptable where nothing is asked of cached tenants (throttling), not in a stall
    assert verdict([healthy(), phase_of("stall", answers)], TIMEOUT, tenants=2) == []
    assert verdict([healthy(), phase_of("stall", answers, must_serve_cached=True)], TIMEOUT, tenants=2) == [
        "stall: 1 of 2 cached tenants served throughout"
    ]


def test_throughput_under_half_the_healthy_fails_with_aws_dead() -> None:
    # Given a healthy 100 predictions/s, and 40/s with AWS dead
    slow = [served("moto killed", t) for t in ("tenant-a", "tenant-b") for _ in range(200)]
    dead = phase_of("moto killed", slow, must_keep_half_throughput=True)
    assert healthy().served_rate() == 100
    assert dead.served_rate() == 40
    # Then the drill fails and says by how much
    assert verdict([healthy(), dead], TIMEOUT, tenants=2) == [
        "moto killed: 40.0 correct predictions/s, under half the healthy 100.0/s"
    ]


def test_a_phase_without_any_prediction_fails() -> None:
    assert verdict([healthy(), phase_of("moto killed", [])], TIMEOUT, tenants=2) == [
        "moto killed: no prediction was answered"
    ]


def test_recovery_needs_a_login_and_every_tenants_last_prediction_right() -> None:
    after = [unavailable("after"), *(served("after", t) for t in ("tenant-a", "tenant-b"))]
    assert not recovered(phase_of("after", after))  # no login got through yet
    after.append(Answer("after", "login", None, 200, 0.1))
    assert recovered(phase_of("after", after))
    after.append(Answer("after", "predict", "tenant-b", 503, 0.01))  # tenant-b's last one failed
    assert not recovered(phase_of("after", after))


def test_a_stall_not_recovered_fails() -> None:
    stalled = phase_of("stall", [served("stall", "tenant-a")], recovered=False)
    assert verdict([healthy(), stalled], TIMEOUT, tenants=1) == ["stall: did not recover without a restart"]


def test_the_table_has_a_row_per_phase_with_statuses_and_times() -> None:
    answers = [served("outage", "tenant-a", 0.01 * i) for i in range(1, 101)]
    answers.append(Answer("outage", "predict", "tenant-b", 0, 20.0))
    rows = table([phase_of("outage", answers, recovered=True)]).splitlines()
    assert rows[0].startswith("| fault | requests | answers by status | p50 s | p99 s | max s |")
    assert rows[2] == "| outage | 101 | none: 1 200: 100 | 0.510 | 1.000 | 20.000 | 10.0 | 1 | yes |"


# --- the drill's set-up ------------------------------------------------------------------------


def test_the_drill_lowers_the_ttl_below_a_phase_and_keeps_the_grace_above_two() -> None:
    template = load_template()
    parameters = drill_parameters(template, seconds=25)
    assert int(parameters["MappingTtlSeconds"]) < 25  # a stall outlasts the mapping cache
    if "StaleGraceSeconds" in template["Parameters"]:  # issue #27's grace
        assert int(parameters["StaleGraceSeconds"]) >= 2 * 25
    assert function_timeout(template) == 10  # predict's and login's (Globals); the authorizer's is 5


def test_the_proxy_answers_only_the_faulted_services_calls() -> None:
    proxy = FaultProxy("http://127.0.0.1:9")  # never started: `injected` decides without sockets
    assert proxy.injected("dynamodb") is None  # no fault: everything is forwarded
    proxy.fault = "dynamodb-throttling"
    assert proxy.injected("dynamodb") == DYNAMODB_THROTTLED
    assert proxy.injected("s3") is None and proxy.injected("kms") is None
    proxy.fault = "s3-slowdown"
    assert proxy.injected("s3") == S3_SLOWDOWN
    assert proxy.injected("dynamodb") is None
    proxy.stop()


def test_the_service_comes_from_the_sigv4_credential_scope() -> None:
    authorization = (
        "AWS4-HMAC-SHA256 Credential=local/20261206/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert aws_service(authorization) == "dynamodb"
    assert aws_service("Bearer x") == ""
