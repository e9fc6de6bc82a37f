"""A deleted model on AWS: predict's role has no s3:ListBucket, so S3 answers GetObject on the
missing key with 403 AccessDenied, not 404 NoSuchKey (moto, which enforces no IAM, says
NoSuchKey). Both are a missing model (docs/decisions/0007-access-denied-is-a-missing-model.md):
refused and logged for the operator, the integrity metric raised, the refusal remembered.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from functions.predict import app as predict_app
from tests.support import FakeLambdaContext, Stack, assert_problem, current_runtime, load_event

ACCESS_DENIED = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}


def s3_answers_like_aws_without_list_bucket(stack: Stack, calls: list[str]) -> None:
    """Every GetObject gets S3's 403 AccessDenied, as AWS answers a caller without s3:ListBucket
    for a key that does not exist; the call goes through botocore's own error path."""

    def access_denied(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        calls.append("GetObject")
        return AWSResponse(f"https://{stack.bucket}.s3.amazonaws.com/", 403, {}, None), ACCESS_DENIED

    current_runtime().s3.meta.events.register("before-call.s3.GetObject", access_denied)


def stdout_records(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_access_denied_on_the_model_is_a_refused_missing_model_remembered_for_the_ttl(
    demo: Stack,
    alice_token: str,
    context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given tenant-a's model object deleted on AWS, where predict cannot list the bucket
    tenant = demo.tenant("tenant-a")
    current_runtime().s3.delete_object(Bucket=demo.bucket, Key=tenant.model_key)
    calls: list[str] = []
    s3_answers_like_aws_without_list_bucket(demo, calls)
    monkeypatch.setattr(predict_app.logger.registered_handler, "stream", sys.stdout)
    capsys.readouterr()
    # When alice asks for predictions three times within the mapping TTL
    event = load_event("predict_alice", alice_token=alice_token)
    responses = [predict_app.lambda_handler(event, context) for _ in range(3)]
    # Then each is the model's generic 503, never naming the bucket or the key
    for response in responses:
        problem = assert_problem(response, 503)
        assert problem["detail"] == "The model is temporarily unavailable."
        assert demo.bucket not in response["body"] and tenant.model_key not in response["body"]
    # And the operator got one refusal saying the model is missing, and the integrity metric
    records = stdout_records(capsys)
    refusals = [r for r in records if r.get("security_event") == "model_refused"]
    assert [r["reason"] for r in refusals] == ["missing"]
    assert any("ModelIntegrityFailure" in r for r in records if "_aws" in r)
    assert not any("DependencyFailure" in r for r in records if "_aws" in r)
    # And the refusal was remembered: S3 was asked once, not on every request
    assert calls == ["GetObject"]


def test_other_s3_errors_stay_dependency_failures(
    demo: Stack, alice_token: str, context: FakeLambdaContext
) -> None:
    # Given S3 throttling predict's read (a fault of the moment, not a missing model)
    def slow_down(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}
        return AWSResponse("https://s3.amazonaws.com/", 503, {}, None), error

    current_runtime().s3.meta.events.register("before-call.s3.GetObject", slow_down)
    # When alice predicts / Then it is the retryable dependency 503, and not remembered as refused
    event = load_event("predict_alice", alice_token=alice_token)
    assert_problem(predict_app.lambda_handler(event, context), 503)
    tenant = demo.tenant("tenant-a")
    assert current_runtime().models._refused_until((tenant.tenant_id, tenant.model_sha256)) == 0.0
