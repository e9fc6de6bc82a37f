"""`model_serving.models`: integrity before parsing, no pickle ever, refusals remembered, version
rollout, and the cache bound.

A pickle runs code when it is loaded, so the tests use a real exploit (a pickle that creates a
marker file when loaded) and check that the marker never appears, whatever the mapping says about
it: predict has no code path that unpickles.
"""

from __future__ import annotations

import io
import json
import pathlib
import sys
from types import SimpleNamespace
from typing import Any

import joblib
import pytest
import skops.io
from model_runtime import table, ttl_cache
from model_serving.models import ModelCache, fetch_model_object, load_verified, sha256_hex
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.predict import app as predict_app
from functions.predict.app import lambda_handler
from inferctl.onboarding import put_model
from tests.support import (
    MODELS_DIR,
    FakeLambdaContext,
    Stack,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    onboard,
    response_header,
    served_bytes,
    use_runtime,
)

MODEL_A = served_bytes("model_user_a.pkl")  # ONNX, 4 features
MODEL_B = served_bytes("model_user_b.pkl")  # ONNX, 13 features
COST_A = len(MODEL_A) * ModelCache.MEMORY_PER_FILE_BYTE  # what each counts against the cache bound
COST_B = len(MODEL_B) * ModelCache.MEMORY_PER_FILE_BYTE


def other_model_a() -> bytes:
    """A second version of model A: another regularisation, as an audited skops file."""
    X, y = load_iris(return_X_y=True)
    return skops.io.dumps(LogisticRegression(C=0.5, max_iter=1000, random_state=0).fit(X, y))


GENERIC_DETAIL = "The model is temporarily unavailable."


class TouchOnLoad:
    """Unpickling this calls `Path.touch(marker)`: any code would run the same way."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[pathlib.Path]]:
        return (pathlib.Path.touch, (self.marker,))


def malicious_pickle(marker: pathlib.Path) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(TouchOnLoad(marker), buffer)
    return buffer.getvalue()


def assert_generic_503(response: dict[str, Any], stack: Stack, tenant: table.Tenant) -> None:
    """A 503 problem that tells the client nothing about where or why."""
    problem = assert_problem(response, 503)
    assert_security_headers(response)
    assert response_header(response, "Retry-After") is not None
    assert problem["detail"] == GENERIC_DETAIL
    for secret in (
        stack.bucket,
        stack.table_name,
        tenant.model_key,
        tenant.model_sha256,
        "models/",
        "pickle",
    ):
        assert secret not in response["body"]


class StdoutRecords:
    """What the function writes to stdout (log lines and EMF metrics), one JSON object a line."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def start(self) -> None:
        # The service logger's handler holds the stream that was stdout at import; pytest swaps
        # sys.stdout per test phase, so point the handler at the test body's captured stdout.
        handler = predict_app.logger.registered_handler
        self._monkeypatch.setattr(handler, "stream", sys.stdout)
        self._capsys.readouterr()

    def records(self) -> list[dict[str, Any]]:
        lines = self._capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture
def stdout(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> StdoutRecords:
    return StdoutRecords(capsys, monkeypatch)


def security_events(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("security_event") == "model_refused"]


def emitted_metric(records: list[dict[str, Any]], name: str) -> bool:
    return any(name in r for r in records if "_aws" in r)


def predict_as_alice(context: FakeLambdaContext, token: str) -> dict[str, Any]:
    return lambda_handler(load_event("predict_alice", alice_token=token), context)


def overwrite_model_object(stack: Stack, key: str, data: bytes) -> None:
    current_runtime().s3.put_object(Bucket=stack.bucket, Key=key, Body=data)


def pin_mapping(stack: Stack, tenant_id: str, **attributes: str) -> None:
    """Rewrite string attributes of a tenant's mapping, as an operator with table access could."""
    names = {f"#{k}": k for k in attributes}
    values = {f":{k}": {"S": v} for k, v in attributes.items()}
    current_runtime().dynamodb.update_item(
        TableName=stack.table_name,
        Key={"pk": {"S": table.tenant_pk(tenant_id)}},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attributes),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    current_runtime().tenants.clear()


# --- the exploit is real ----------------------------------------------------------------------------


def test_the_malicious_pickle_runs_code_when_loaded(tmp_path: pathlib.Path) -> None:
    # Given the exploit used below
    marker = tmp_path / "pwned"
    data = malicious_pickle(marker)
    # When it is deserialized with no check at all
    joblib.load(io.BytesIO(data))
    # Then its code ran: the refusal tests below are meaningful
    assert marker.exists()


# --- integrity -----------------------------------------------------------------------------------


def test_tampered_model_object_is_refused_before_loading(
    demo: Stack,
    alice_token: str,
    context: FakeLambdaContext,
    tmp_path: pathlib.Path,
    stdout: StdoutRecords,
) -> None:
    # Given someone with S3 write access replaced tenant-a's model object with an exploit
    tenant = demo.tenant("tenant-a")
    marker = tmp_path / "pwned"
    overwrite_model_object(demo, tenant.model_key, malicious_pickle(marker))
    stdout.start()
    # When alice asks for a prediction
    response = predict_as_alice(context, alice_token)
    # Then the client gets a generic 503
    assert_generic_503(response, demo, tenant)
    # And the exploit never ran: the digest was compared before deserializing
    assert not marker.exists()
    # And the operator gets a security log line and an integrity metric
    records = stdout.records()
    events = security_events(records)
    assert [(e["reason"], e["tenant_id"]) for e in events] == [("integrity", "tenant-a")]
    assert emitted_metric(records, "ModelIntegrityFailure")
    # And nothing was cached, so a repaired object will be picked up
    assert len(current_runtime().models) == 0


def test_a_mapping_that_pins_a_pickle_is_refused_even_when_the_digest_matches(
    demo: Stack,
    alice_token: str,
    context: FakeLambdaContext,
    tmp_path: pathlib.Path,
    stdout: StdoutRecords,
) -> None:
    # Given the exploit's own digest pinned in a mapping written before formats existed (a pickle)
    tenant = demo.tenant("tenant-a")
    marker = tmp_path / "pwned"
    data = malicious_pickle(marker)
    overwrite_model_object(demo, tenant.model_key, data)
    pin_mapping(demo, "tenant-a", model_sha256=sha256_hex(data), model_format="pickle")
    stdout.start()
    # When alice asks for a prediction
    response = predict_as_alice(context, alice_token)
    # Then it is refused with the generic 503, and the exploit never ran: no pickle is ever loaded
    assert_generic_503(response, demo, demo.tenant("tenant-a"))
    assert not marker.exists()
    # And the log says why
    records = stdout.records()
    assert [e["reason"] for e in security_events(records)] == ["format"]
    assert emitted_metric(records, "ModelIntegrityFailure")


def test_a_pinned_pickle_named_as_onnx_is_refused_without_running_it(
    demo: Stack, alice_token: str, context: FakeLambdaContext, tmp_path: pathlib.Path, stdout: StdoutRecords
) -> None:
    # Given the exploit pinned with its digest and the onnx format
    tenant = demo.tenant("tenant-a")
    marker = tmp_path / "pwned"
    data = malicious_pickle(marker)
    overwrite_model_object(demo, tenant.model_key, data)
    pin_mapping(demo, "tenant-a", model_sha256=sha256_hex(data), model_format="onnx")
    stdout.start()
    # When alice asks for a prediction / Then ONNX Runtime cannot parse it, and nothing ran
    assert_generic_503(predict_as_alice(context, alice_token), demo, demo.tenant("tenant-a"))
    assert not marker.exists()
    assert [e["reason"] for e in security_events(stdout.records())] == ["unreadable"]


def test_load_verified_refuses_wrong_digest_without_deserializing(
    demo: Stack, tmp_path: pathlib.Path
) -> None:
    # Given tenant-a's mapping and the exploit's bytes
    marker = tmp_path / "pwned"
    tenant = demo.tenant("tenant-a")
    # When the bytes are offered for loading under that mapping
    with pytest.raises(Exception, match="temporarily unavailable"):
        load_verified(tenant, malicious_pickle(marker))
    # Then nothing was deserialized
    assert not marker.exists()
    # And the genuine bytes do load
    assert load_verified(tenant, MODEL_A).n_features == 4


def test_missing_model_object_is_a_generic_503(
    demo: Stack, alice_token: str, context: FakeLambdaContext, stdout: StdoutRecords
) -> None:
    # Given tenant-a's model object was deleted from the bucket
    tenant = demo.tenant("tenant-a")
    current_runtime().s3.delete_object(Bucket=demo.bucket, Key=tenant.model_key)
    stdout.start()
    # When alice asks for a prediction
    response = predict_as_alice(context, alice_token)
    # Then the client gets the generic 503 and the operator a log line saying it is missing
    assert_generic_503(response, demo, tenant)
    assert [e["reason"] for e in security_events(stdout.records())] == ["missing"]


def test_a_refused_model_is_not_fetched_again_within_the_mapping_ttl(  # noqa: PLR0917 (fixtures)
    demo: Stack,
    alice_token: str,
    context: FakeLambdaContext,
    s3_calls: list[str],
    stdout: StdoutRecords,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given tenant-a's model object was tampered with, and a controllable clock
    clock = [1000.0]
    monkeypatch.setattr("model_serving.models.time.monotonic", lambda: clock[0])
    tenant = demo.tenant("tenant-a")
    overwrite_model_object(demo, tenant.model_key, b"tampered")
    s3_calls.clear()
    stdout.start()
    # When alice retries five times within the mapping TTL
    for _ in range(5):
        assert_generic_503(predict_as_alice(context, alice_token), demo, tenant)
    # Then the object was read from S3 once, and the operator got one security log line
    assert s3_calls.count("GetObject") == 1
    assert len(security_events(stdout.records())) == 1
    # When the TTL has passed / Then the next retry reads (and refuses, and logs) once more
    clock[0] += current_runtime().settings.mapping_ttl_seconds + 1
    assert_generic_503(predict_as_alice(context, alice_token), demo, tenant)
    assert s3_calls.count("GetObject") == 2
    assert len(security_events(stdout.records())) == 1


def test_a_refusal_does_not_outlive_a_new_version(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no mapping cache, and tenant-a refused for a tampered object
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    use_runtime()
    tenant = demo.tenant("tenant-a")
    overwrite_model_object(demo, tenant.model_key, b"tampered")
    assert predict_as_alice(context, alice_token)["statusCode"] == 503
    # When the operator publishes a repaired version / Then it is served at once
    put_model(current_runtime(), "tenant-a", other_model_a(), None, new_tenant=False, filename="v2.skops")
    assert predict_as_alice(context, alice_token)["statusCode"] == 200


# --- version rollout -------------------------------------------------------------------------------


def test_new_model_version_is_served_after_the_mapping_ttl_and_the_old_one_evicted(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a controllable clock for the mapping cache, and alice served by version 1
    clock = [1000.0]
    monkeypatch.setattr(ttl_cache, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    old = demo.tenant("tenant-a")
    first = predict_as_alice(context, alice_token)
    assert json.loads(first["body"])["model_version"] == old.model_version
    assert ("tenant-a", old.model_sha256) in current_runtime().models
    # When the operator publishes version 2
    facts = put_model(
        current_runtime(), "tenant-a", other_model_a(), 1000, new_tenant=False, filename="v2.skops"
    )
    assert facts.sha256 != old.model_sha256
    new_key = demo.tenant("tenant-a").model_key
    new_size = current_runtime().s3.head_object(Bucket=demo.bucket, Key=new_key)["ContentLength"]
    # Then within the mapping TTL the cached mapping still serves version 1
    clock[0] += current_runtime().settings.mapping_ttl_seconds - 1
    during = predict_as_alice(context, alice_token)
    assert json.loads(during["body"])["model_version"] == old.model_version
    # When the TTL has passed
    clock[0] += 2
    after = predict_as_alice(context, alice_token)
    # Then version 2 is served, and version 1 is no longer held in memory
    assert after["statusCode"] == 200
    assert json.loads(after["body"])["model_version"] == facts.sha256[:12]
    assert ("tenant-a", facts.sha256) in current_runtime().models
    assert ("tenant-a", old.model_sha256) not in current_runtime().models
    assert len(current_runtime().models) == 1
    assert current_runtime().models.total_bytes == new_size * ModelCache.MEMORY_PER_FILE_BYTE


def test_new_version_with_zero_mapping_ttl_is_served_on_the_next_request(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given mappings are not cached at all, and alice served by tenant-a's model
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    use_runtime()
    old = demo.tenant("tenant-a")
    assert predict_as_alice(context, alice_token)["statusCode"] == 200
    # When the operator points tenant-a at a 13-feature model
    model_b = (MODELS_DIR / "model_user_b.pkl").read_bytes()
    facts = put_model(
        current_runtime(),
        "tenant-a",
        model_b,
        1000,
        new_tenant=False,
        filename="b.pkl",
        trust_pickle=True,
        allow_interface_change=True,
    )
    # Then alice's next 4-feature batch no longer fits her model
    assert predict_as_alice(context, alice_token)["statusCode"] == 400
    # And a 13-feature batch is answered by the new version
    bob_rows = load_event("predict_bob")["body"]
    response = lambda_handler(
        {**load_event("predict_alice", alice_token=alice_token), "body": bob_rows}, context
    )
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["model_version"] == facts.sha256[:12]
    assert ("tenant-a", old.model_sha256) not in current_runtime().models


# --- the cache bound --------------------------------------------------------------------------------


def cache_of(max_bytes: int) -> ModelCache:
    """A model cache of its own, fetching through the handlers' S3 client (counted by `s3_calls`)."""
    runtime = current_runtime()
    return ModelCache(
        max_bytes, lambda tenant: fetch_model_object(runtime.s3, runtime.settings.model_bucket, tenant)
    )


@pytest.fixture
def small_tenants(demo: Stack) -> dict[str, table.Tenant]:
    """tenant-a (MODEL_A), tenant-c and tenant-d (same bytes), tenant-b (MODEL_B, larger)."""
    onboard("carol", "carol-local-demo", "tenant-c", "model_user_a.pkl")
    onboard("dave", "dave-local-demo", "tenant-d", "model_user_a.pkl")
    return {
        tenant_id: demo.tenant(tenant_id) for tenant_id in ("tenant-a", "tenant-b", "tenant-c", "tenant-d")
    }


def test_cache_never_exceeds_its_bound_and_evicts_the_least_recently_used(
    small_tenants: dict[str, table.Tenant],
) -> None:
    # Given a bound that holds two of the small models but not three
    cache = cache_of(2 * COST_A + COST_A // 2)
    a, c, d = small_tenants["tenant-a"], small_tenants["tenant-c"], small_tenants["tenant-d"]
    # When tenants a and c are served, then a again (so c is the least recently used), then d
    for tenant in (a, c, a, d):
        cache.get(tenant)
        # Then the bound holds after every request
        assert cache.total_bytes <= cache.max_bytes
    # Then c was evicted, and a and d are held
    assert ("tenant-c", c.model_sha256) not in cache
    assert ("tenant-a", a.model_sha256) in cache
    assert ("tenant-d", d.model_sha256) in cache
    assert cache.total_bytes == 2 * COST_A


def test_cache_bound_holds_across_mixed_sizes(
    small_tenants: dict[str, table.Tenant], s3_calls: list[str]
) -> None:
    # Given a bound smaller than the sum of all four tenants' models
    cache = cache_of(COST_B + 2 * COST_A)
    order = ["tenant-a", "tenant-b", "tenant-c", "tenant-d", "tenant-b", "tenant-a", "tenant-c"]
    # When they are served in turn
    for tenant_id in order:
        model = cache.get(small_tenants[tenant_id])
        # Then every request is answered by that tenant's model, and the bound always holds
        assert model.n_features == small_tenants[tenant_id].n_features
        assert cache.total_bytes <= cache.max_bytes
        # And the running total is exactly the size of what is held
        held = [t for t in small_tenants.values() if (t.tenant_id, t.model_sha256) in cache]
        assert cache.total_bytes == sum(COST_B if t.n_features == 13 else COST_A for t in held)
    # And models were refetched only after eviction: fewer fetches than requests
    assert s3_calls.count("GetObject") < len(order)


def test_model_bigger_than_the_bound_is_served_uncached_and_evicts_nothing(
    small_tenants: dict[str, table.Tenant], s3_calls: list[str]
) -> None:
    # Given a bound that holds the small models but not tenant-b's, with tenant-a cached
    cache = cache_of(COST_B - 1)
    a, b = small_tenants["tenant-a"], small_tenants["tenant-b"]
    cache.get(a)
    # When tenant-b is served twice
    first = cache.get(b)
    second = cache.get(b)
    # Then it is served each time, fetched each time, and never held
    assert first.n_features == second.n_features == 13
    assert ("tenant-b", b.model_sha256) not in cache
    assert s3_calls.count("GetObject") == 3
    # And it did not push tenant-a out to make room it would never use
    assert ("tenant-a", a.model_sha256) in cache
    assert cache.total_bytes == COST_A


def test_cache_is_keyed_by_tenant_and_digest(small_tenants: dict[str, table.Tenant]) -> None:
    # Given two tenants whose mappings pin the very same bytes
    cache = cache_of(10 * COST_B)
    a, c = small_tenants["tenant-a"], small_tenants["tenant-c"]
    assert a.model_sha256 == c.model_sha256
    # When both are served
    cache.get(a)
    cache.get(c)
    # Then each tenant has its own entry: no model object is shared across tenants
    assert len(cache) == 2
    assert cache.get(a) is not cache.get(c)


def test_warm_cache_serves_without_refetching(
    demo: Stack, alice_token: str, bob_token: str, context: FakeLambdaContext, s3_calls: list[str]
) -> None:
    # Given alice's and bob's models loaded once each
    for _ in range(3):
        assert predict_as_alice(context, alice_token)["statusCode"] == 200
        bob = lambda_handler(load_event("predict_bob", bob_token=bob_token), context)
        assert bob["statusCode"] == 200
    # Then each model was fetched from S3 exactly once
    assert s3_calls.count("GetObject") == 2
