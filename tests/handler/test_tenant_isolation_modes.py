"""Tenant isolation in depth (decision 0017): predict runs each request only for the verified
token's tenant, and reads that tenant's mapping and model only with credentials vended for it.

Predict is invoked with the context Lambda gives in tenant isolation mode (`tenant_id`) and the
authorizer context API Gateway passes on (the tenant and its tenant-data session, vended by the
authorizer's own code against moto's STS). Every S3 and DynamoDB request is recorded with the
access key that signed it, so "before any mapping or model is read" and "with the vended
credentials" are observed, not assumed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from model_runtime.table import TenantChange
from model_runtime.tenant_credentials import TenantCredentials
from model_serving.models import PredictRuntime

from functions.authorizer import app as authorizer_app
from functions.predict import app as predict_app
from functions.predict.app import lambda_handler
from local.sam_local import SAM_LOCAL_PREDICT_ENVIRONMENT
from tests.support import FakeLambdaContext, Stack, assert_problem, load_event, token_for, use_runtime


@dataclass
class TenantContext(FakeLambdaContext):
    """The Python runtime's context of a tenant-isolated function: it names the invocation's tenant."""

    tenant_id: str | None = None


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    access_key: str
    body: str

    @property
    def reads_a_mapping(self) -> bool:
        return self.service == "dynamodb" and '"tenant#' in self.body


@pytest.fixture
def isolated(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> PredictRuntime:
    """A fresh predict container deployed as the template's default: per-tenant, vended credentials."""
    monkeypatch.setenv("TENANT_ISOLATION", "per-tenant")
    monkeypatch.setenv("TENANT_DATA_CREDENTIALS", "authorizer")
    return use_runtime(monkeypatch=monkeypatch)


@pytest.fixture
def calls(isolated: PredictRuntime) -> list[Call]:
    """Every S3 and DynamoDB request of this container's clients, own or vended, as it is signed."""
    recorded: list[Call] = []

    def record(request_signer: Any, operation_name: str, request: Any, signing_name: str, **_: Any) -> None:
        service = signing_name
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        recorded.append(Call(service, operation_name, request_signer._credentials.access_key, body))

    isolated.botocore_session.register("before-sign.s3", record)
    isolated.botocore_session.register("before-sign.dynamodb", record)
    return recorded


class Logs:
    """What the functions log: the records (pytest's caplog sees every Powertools logger, children
    included) and what Powertools' handlers write (pointed at the test's captured stdout)."""

    def __init__(
        self,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self._capsys = capsys
        self._caplog = caplog
        for module in (predict_app, authorizer_app):
            monkeypatch.setattr(module.logger.registered_handler, "stream", sys.stdout)
        capsys.readouterr()
        self._written = ""

    def read(self) -> str:
        """Every line written and every record, with its extra fields."""
        captured = self._capsys.readouterr()
        self._written += captured.out + captured.err
        records = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in self._caplog.records)
        return self._written + records

    def security_events(self) -> list[str]:
        return [r.security_event for r in self._caplog.records if hasattr(r, "security_event")]


@pytest.fixture
def logs(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Logs:
    return Logs(capsys, caplog, monkeypatch)


def vended(runtime: PredictRuntime, tenant_id: str) -> TenantCredentials:
    """What the authorizer vends for `tenant_id` (its own code: `Runtime.tenant_credentials`)."""
    return runtime.tenant_credentials.for_tenant(tenant_id)


def predict_event(
    token: str, tenant_id: str, credentials: TenantCredentials | None, rows_of: str = "alice"
) -> dict[str, Any]:
    """`rows_of`'s predict event (rows that fit alice's or bob's model) with `token` and a context."""
    event = load_event(f"predict_{rows_of}", **{f"{rows_of}_token": token})
    authorizer = {"tenant_id": tenant_id, **(credentials.to_context() if credentials else {})}
    event["requestContext"]["authorizer"] = authorizer
    return event


def reads_of_tenant_data(calls: list[Call]) -> list[Call]:
    """Model reads (S3) and mapping reads (the `tenant#...` items)."""
    return [c for c in calls if c.service == "s3" or c.reads_a_mapping]


# --- allowed ------------------------------------------------------------------------------------


def test_an_invocation_for_the_tokens_tenant_is_served_with_the_vended_credentials(
    isolated: PredictRuntime, calls: list[Call]
) -> None:
    # Given alice's token, the session the authorizer vends for tenant-a, and Lambda naming tenant-a
    credentials = vended(isolated, "tenant-a")
    event = predict_event(token_for("alice", "tenant-a"), "tenant-a", credentials)
    # When predict serves it
    response = lambda_handler(event, TenantContext(tenant_id="tenant-a"))
    # Then alice gets her predictions
    assert response["statusCode"] == 200, response["body"]
    # And the mapping and the model were read, with tenant-a's session alone
    reads = reads_of_tenant_data(calls)
    assert {c.service for c in reads} == {"s3", "dynamodb"}
    assert {c.access_key for c in reads} == {credentials.access_key_id}
    # And predict's own keys read nothing but the key ring
    own = [c for c in calls if c.access_key != credentials.access_key_id]
    assert own and all(c.service == "dynamodb" and '"keyring"' in c.body for c in own)


def test_a_warm_request_with_the_same_credentials_creates_no_client(isolated: PredictRuntime) -> None:
    credentials = vended(isolated, "tenant-a")
    event = predict_event(token_for("alice", "tenant-a"), "tenant-a", credentials)
    assert lambda_handler(event, TenantContext(tenant_id="tenant-a"))["statusCode"] == 200
    clients = isolated.tenant_clients.get(credentials, "tenant-a")
    # When the same session comes again
    assert lambda_handler(event, TenantContext(tenant_id="tenant-a"))["statusCode"] == 200
    # Then the same clients serve it
    assert (
        isolated.tenant_clients.get(credentials, "tenant-a") is clients and len(isolated.tenant_clients) == 1
    )


# --- refused before any mapping or model is read ----------------------------------------------


@pytest.mark.parametrize("invoked_as", ["tenant-b", None])
def test_an_invocation_for_another_tenant_or_none_is_refused_before_any_read(
    isolated: PredictRuntime, calls: list[Call], logs: Logs, invoked_as: str | None
) -> None:
    # Given alice's token and her own vended session, but Lambda naming tenant-b (routed into
    # tenant-b's environment) or no tenant at all
    event = predict_event(token_for("alice", "tenant-a"), "tenant-a", vended(isolated, "tenant-a"))
    calls.clear()
    # When predict is invoked
    response = lambda_handler(event, TenantContext(tenant_id=invoked_as))
    # Then it is the fixed 403, and no mapping or model was read
    assert response["statusCode"] == 403
    assert assert_problem(response, 403)["detail"] == "This identity has no active model."
    assert reads_of_tenant_data(calls) == []
    assert len(isolated.models) == 0
    # And the operator's log has the security event
    assert logs.security_events() == ["tenant_environment_mismatch"]


def test_an_environment_that_served_one_tenant_refuses_another(isolated: PredictRuntime) -> None:
    # Given an environment that served tenant-a
    alice = predict_event(token_for("alice", "tenant-a"), "tenant-a", vended(isolated, "tenant-a"))
    assert lambda_handler(alice, TenantContext(tenant_id="tenant-a"))["statusCode"] == 200
    # When Lambda hands it an invocation of tenant-b (bob's own token and session)
    bob = predict_event(token_for("bob", "tenant-b"), "tenant-b", vended(isolated, "tenant-b"))
    response = lambda_handler(bob, TenantContext(tenant_id="tenant-b"))
    # Then it is refused: tenant-b's model is never loaded where tenant-a's was
    assert response["statusCode"] == 403
    assert {key[0] for key in isolated.models._entries} == {"tenant-a"}


def test_missing_vended_credentials_are_refused_before_any_read(
    isolated: PredictRuntime, calls: list[Call], logs: Logs
) -> None:
    # Given alice's token and Lambda naming tenant-a, but no session in the authorizer context
    event = predict_event(token_for("alice", "tenant-a"), "tenant-a", None)
    calls.clear()
    response = lambda_handler(event, TenantContext(tenant_id="tenant-a"))
    # Then 403, nothing of tenant data read (predict's own keys never stand in), a security line
    assert response["statusCode"] == 403
    assert reads_of_tenant_data(calls) == []
    assert logs.security_events() == ["tenant_credentials_missing"]


def test_an_authorizer_context_naming_another_tenant_is_refused_before_any_read(
    isolated: PredictRuntime, calls: list[Call]
) -> None:
    # Given alice's token, Lambda naming tenant-a, but a context naming tenant-b with its session
    event = predict_event(token_for("alice", "tenant-a"), "tenant-b", vended(isolated, "tenant-b"))
    calls.clear()
    response = lambda_handler(event, TenantContext(tenant_id="tenant-a"))
    # Then it is refused (as any token the authorizer did not vouch for) and nothing was read
    assert response["statusCode"] == 401
    assert reads_of_tenant_data(calls) == []


def test_another_tenants_session_is_refused_before_any_read(
    isolated: PredictRuntime, calls: list[Call], logs: Logs
) -> None:
    # Given alice's token, Lambda and the context naming tenant-a, but tenant-b's session (only
    # the authorizer writes the context: this is the most a forged one could hold)
    event = predict_event(token_for("alice", "tenant-a"), "tenant-a", vended(isolated, "tenant-b"))
    calls.clear()
    response = lambda_handler(event, TenantContext(tenant_id="tenant-a"))
    # Then STS's name for the session is not tenant-a's: refused before any mapping or model read
    assert response["statusCode"] == 403
    assert reads_of_tenant_data(calls) == [] and len(isolated.models) == 0
    assert logs.security_events() == ["tenant_credentials_foreign"]


def test_a_session_seen_for_one_tenant_is_refused_for_another_in_a_shared_environment(
    demo: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shared environment that served bob with tenant-b's session
    monkeypatch.setenv("TENANT_ISOLATION", "shared")
    monkeypatch.setenv("TENANT_DATA_CREDENTIALS", "authorizer")
    runtime = use_runtime(monkeypatch=monkeypatch)
    tenant_b = vended(runtime, "tenant-b")
    bob = predict_event(token_for("bob", "tenant-b"), "tenant-b", tenant_b, "bob")
    assert lambda_handler(bob, TenantContext())["statusCode"] == 200
    # When alice's request comes with that same session
    alice = predict_event(token_for("alice", "tenant-a"), "tenant-a", tenant_b)
    # Then it is refused (its cached clients remember whose session it is), tenant-a never loaded
    assert lambda_handler(alice, TenantContext())["statusCode"] == 403
    assert {key[0] for key in runtime.models._entries} == {"tenant-b"}


# --- shared mode ----------------------------------------------------------------------------------


def test_shared_mode_serves_invocations_without_a_tenant_id_still_with_vended_credentials(
    demo: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANT_ISOLATION", "shared")
    monkeypatch.setenv("TENANT_DATA_CREDENTIALS", "authorizer")
    runtime = use_runtime(monkeypatch=monkeypatch)
    alice = predict_event(token_for("alice", "tenant-a"), "tenant-a", vended(runtime, "tenant-a"))
    bob = predict_event(token_for("bob", "tenant-b"), "tenant-b", vended(runtime, "tenant-b"), "bob")
    # Then one environment serves both tenants, each with its own session
    assert lambda_handler(alice, TenantContext())["statusCode"] == 200
    assert lambda_handler(bob, TenantContext())["statusCode"] == 200
    assert len(runtime.tenant_clients) == 2
    # And without a session it refuses, as in per-tenant mode
    assert (
        lambda_handler(predict_event(token_for("bob", "tenant-b"), "tenant-b", None), TenantContext())[
            "statusCode"
        ]
        == 403
    )


def test_under_sam_local_predict_serves_without_an_authorizer_with_its_own_credentials(
    demo: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given predict configured as `make sam-local` runs it (no authorizer there: nothing vends a
    # session nor names the invocation's tenant)
    for name, value in SAM_LOCAL_PREDICT_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    runtime = use_runtime(monkeypatch=monkeypatch)
    # When alice's request comes with no authorizer context and no tenant id
    event = load_event("predict_alice", alice_token=token_for("alice", "tenant-a"))
    response = lambda_handler(event, TenantContext())
    # Then her own model answers, read with predict's own credentials (on AWS its role reads no
    # tenant data, so this setting would fail closed there)
    assert response["statusCode"] == 200, response["body"]
    assert len(runtime.tenant_clients) == 0


# --- credentials never in a log or an answer -------------------------------------------------------


def test_vended_secrets_are_never_logged_nor_answered(isolated: PredictRuntime, logs: Logs) -> None:
    # Given sessions of both tenants, and requests that succeed, are refused, or fail
    a, b = vended(isolated, "tenant-a"), vended(isolated, "tenant-b")
    alice, bob = token_for("alice", "tenant-a"), token_for("bob", "tenant-b")
    answers = [
        lambda_handler(predict_event(alice, "tenant-a", a), TenantContext(tenant_id="tenant-a")),
        lambda_handler(predict_event(alice, "tenant-a", b), TenantContext(tenant_id="tenant-b")),
        lambda_handler(predict_event(bob, "tenant-a", a), TenantContext(tenant_id="tenant-a")),
        lambda_handler(predict_event("forged", "tenant-a", a), TenantContext(tenant_id="tenant-a")),
    ]
    assert [answer["statusCode"] for answer in answers] == [200, 403, 401, 401]
    # Then no secret half of any session is in any log line or any answer
    written = logs.read() + json.dumps(answers)
    for credentials in (a, b):
        assert credentials.secret_access_key not in written
        assert credentials.session_token not in written
    assert a.secret_access_key not in repr(a) and a.session_token not in repr(a)


def test_the_authorizer_passes_the_session_on_but_never_logs_it(isolated: PredictRuntime, logs: Logs) -> None:
    # Given tenant-a with an API key (the authorizer denies a tenant without one)
    isolated.table.update_tenant("tenant-a", TenantChange(api_key="key-of-tenant-a-0123456789"), 0)
    event = load_event("authorizer_alice", alice_token=token_for("alice", "tenant-a"))
    # When the authorizer allows alice
    answer = authorizer_app.lambda_handler(event, FakeLambdaContext())
    # Then its context holds tenant-a's session for predict, and its log none of the secrets
    credentials = TenantCredentials.from_context(answer["context"])
    assert credentials is not None and answer["context"]["tenant_id"] == "tenant-a"
    written = logs.read()
    assert credentials.secret_access_key not in written and credentials.session_token not in written


def test_a_session_is_vended_for_the_tokens_tenant_tagged_with_it(isolated: PredictRuntime) -> None:
    credentials = vended(isolated, "tenant-a")
    sts = isolated.botocore_session.create_client(
        "sts",
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )
    # Then it is a session of the tenant-data role, named for the tenant (CloudTrail shows it)
    arn = sts.get_caller_identity()["Arn"]
    assert ":assumed-role/" in arn and arn.endswith("/tenant-tenant-a")
    assert isolated.settings.tenant_data_role_arn.rpartition("/")[2] in arn


def test_sts_failing_with_no_session_is_the_authorizers_dependency_failure(
    isolated: PredictRuntime, monkeypatch: pytest.MonkeyPatch, logs: Logs
) -> None:
    # Given tenant-a with an API key, and STS failing before any session was vended
    isolated.table.update_tenant("tenant-a", TenantChange(api_key="key-of-tenant-a-0123456789"), 0)

    def down(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "AssumeRole")

    monkeypatch.setattr(isolated.sts, "assume_role", down)
    event = load_event("authorizer_alice", alice_token=token_for("alice", "tenant-a"))
    # When the authorizer is asked about alice's request
    with pytest.raises(Exception) as raised:
        authorizer_app.lambda_handler(event, FakeLambdaContext())
    # Then it is the dependency failure (API Gateway's AUTHORIZER_CONFIGURATION_ERROR: the
    # template's 503), never a 401 or an Allow without a session
    assert str(raised.value) == "Service Unavailable"
    assert "'aws_operation': 'AssumeRole'" in logs.read()  # the operator's line names the call
