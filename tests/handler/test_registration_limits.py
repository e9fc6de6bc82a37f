"""What registration refuses so that serving never has to: a model the cache would not keep (it
would be fetched and parsed on every request), and a username that a machine client's id could
share (cut-offs are per subject: disabling one would cut off the other).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from model_serving.models import ModelCache, largest_cached_file

from functions.predict.app import lambda_handler
from inferctl.onboarding import OnboardingError, create_user, put_model
from tests.support import (
    MODELS_DIR,
    FakeLambdaContext,
    Stack,
    current_runtime,
    load_event,
    served_bytes,
    token_for,
    use_runtime,
)

MODEL_A = served_bytes("model_user_a.pkl")  # what tenant-a is served: its ONNX conversion


def publish_model_a(cache_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_CACHE_BYTES", str(cache_bytes))
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    use_runtime()
    data = (MODELS_DIR / "model_user_a.pkl").read_bytes()
    runtime = current_runtime()
    put_model(runtime, "tenant-a", data, None, new_tenant=False, filename="a.pkl", trust_pickle=True)


def test_a_model_the_cache_would_not_keep_is_refused_at_registration(
    demo: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a predict cache one byte too small for tenant-a's served model
    too_small = len(MODEL_A) * ModelCache.MEMORY_PER_FILE_BYTE - 1
    # When the operator publishes it / Then it is refused, saying why and what to change
    with pytest.raises(OnboardingError, match="ModelCacheBytes") as refused:
        publish_model_a(too_small, monkeypatch)
    assert f"at most {largest_cached_file(too_small)}" in str(refused.value)


def test_a_model_that_registers_is_cached(
    demo: Stack, monkeypatch: pytest.MonkeyPatch, context: FakeLambdaContext
) -> None:
    # Given a predict cache exactly big enough for tenant-a's served model, and the model published
    publish_model_a(len(MODEL_A) * ModelCache.MEMORY_PER_FILE_BYTE, monkeypatch)
    # When alice predicts
    event = load_event("predict_alice", alice_token=token_for("alice", "tenant-a"))
    response: dict[str, Any] = lambda_handler(event, context)
    # Then it is answered, and the model stays in the cache for the next request
    assert response["statusCode"] == 200, response["body"]
    assert len(json.loads(response["body"])["predictions"]) >= 1
    tenant = demo.tenant("tenant-a")
    assert (tenant.tenant_id, tenant.model_sha256) in current_runtime().models


@pytest.mark.parametrize("username", ["mc_0123456789abcdef01234567", "MC_carol", "mc_"])
def test_a_username_shaped_like_a_client_id_is_refused(demo: Stack, username: str) -> None:
    with pytest.raises(OnboardingError, match="reserved for machine clients"):
        create_user(current_runtime(), username, "a-long-enough-password", "tenant-a")
    assert current_runtime().table.get_user(username) is None
