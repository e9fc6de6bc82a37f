"""Predict serving registered models: ONNX answers as scikit-learn does, probabilities on request,
the model card names the format, skops models where the scikit-learn runtime is present, and
`inferctl rollback` brings a previous version back.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io
from model_runtime import ttl_cache
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid

from functions.predict.app import lambda_handler
from inferctl.cli import main
from inferctl.onboarding import list_versions, put_model
from tests.support import (
    MODELS_DIR,
    FakeLambdaContext,
    Stack,
    assert_problem,
    current_runtime,
    load_event,
    served_digest,
    use_runtime,
)


def predict(token: str, body: dict[str, Any], context: FakeLambdaContext) -> dict[str, Any]:
    event = load_event("predict_alice", alice_token=token)
    return lambda_handler({**event, "body": json.dumps(body)}, context)


def ok(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response["body"]
    body: dict[str, Any] = json.loads(response["body"])
    return body


@pytest.mark.parametrize(
    ("token_name", "model_file", "data_set"),
    [("alice_token", "model_user_a.pkl", load_iris), ("bob_token", "model_user_b.pkl", load_wine)],
)
def test_served_predictions_equal_scikit_learns_on_the_whole_data_set(
    request: pytest.FixtureRequest,
    context: FakeLambdaContext,
    token_name: str,
    model_file: str,
    data_set: Callable[..., Any],
) -> None:
    # Given the demo tenant (onboarded from the trusted pickle, served as ONNX) and its data set
    token = request.getfixturevalue(token_name)
    X, _ = data_set(return_X_y=True)
    reference = joblib.load(MODELS_DIR / model_file)
    # When every row is sent in one request, with probabilities
    body = ok(predict(token, {"instances": X.tolist(), "parameters": {"probabilities": True}}, context))
    # Then the labels are scikit-learn's, and the probabilities within 1e-5 of its own
    assert body["predictions"] == reference.predict(X).tolist()
    assert np.abs(np.asarray(body["probabilities"]) - reference.predict_proba(X)).max() <= 1e-5
    assert body["model_version"] == served_digest(model_file)[:12]


def test_probabilities_are_only_sent_when_asked_for(alice_token: str, context: FakeLambdaContext) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2]]
    assert set(ok(predict(alice_token, {"instances": rows}, context))) == {"predictions", "model_version"}
    off = ok(predict(alice_token, {"instances": rows, "parameters": {"probabilities": False}}, context))
    assert "probabilities" not in off
    on = ok(predict(alice_token, {"instances": rows, "parameters": {"probabilities": True}}, context))
    assert list(on) == ["predictions", "probabilities", "model_version"]
    assert len(on["probabilities"][0]) == 3  # one column per class of the model card


@pytest.mark.parametrize(
    "parameters",
    [{"probabilities": 1}, {"probabilities": "true"}, {"top_k": 2}, [], "probabilities", None],
)
def test_any_other_parameter_is_a_400(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str], parameters: Any
) -> None:
    response = predict(alice_token, {"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": parameters}, context)
    assert_problem(response, 400)
    assert s3_calls.count("GetObject") == 0  # refused before the model is fetched


def test_a_value_past_float32_range_is_a_400(alice_token: str, context: FakeLambdaContext) -> None:
    response = predict(alice_token, {"instances": [[5.1, 3.5, 1.4, 1e300]]}, context)
    assert assert_problem(response, 400)["detail"] == "instances[0][3] is out of range for this model."


def test_the_model_card_names_the_format(alice_token: str, context: FakeLambdaContext) -> None:
    card = json.loads(lambda_handler(load_event("model_card", alice_token=alice_token), context)["body"])
    assert card["format"] == "onnx"
    assert "sklearn_version" not in card  # ONNX needs no scikit-learn


def test_a_skops_model_is_served_by_the_scikit_learn_runtime(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tenant-a republished with an estimator skl2onnx cannot convert, and no mapping cache
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    use_runtime()
    X, y = load_iris(return_X_y=True)
    model = NearestCentroid().fit(X, y)
    facts = put_model(
        current_runtime(),
        "tenant-a",
        bytes(skops.io.dumps(model)),
        None,
        new_tenant=False,
        filename="c.skops",
    )
    assert facts.model_format == "skops"
    # When alice predicts / Then the audited skops model answers, as scikit-learn does
    assert ok(predict(alice_token, {"instances": X[:20].tolist()}, context))["predictions"] == (
        model.predict(X[:20]).tolist()
    )
    card = json.loads(lambda_handler(load_event("model_card", alice_token=alice_token), context)["body"])
    assert (card["format"], card["sklearn_version"]) == ("skops", facts.sklearn_version)


# --- versions -------------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    use_runtime()
    return code, out.getvalue()


def test_rollback_then_predict_is_answered_by_the_previous_version(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tenant-a's first version, then a second one published
    clock = [1000.0]
    monkeypatch.setattr(ttl_cache, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    first = demo.tenant("tenant-a")
    X, y = load_iris(return_X_y=True)
    second_model = LogisticRegression(C=0.01, max_iter=1000).fit(X, y)
    with monkeypatch.context() as later:  # registered after the first
        later.setattr("time.time", lambda: 2_000_000_000.0)
        second = put_model(
            current_runtime(),
            "tenant-a",
            bytes(skops.io.dumps(second_model)),
            None,
            new_tenant=False,
            filename="v2.skops",
        )
    rows = {"instances": X.tolist()}
    assert ok(predict(alice_token, rows, context))["model_version"] == second.version
    # When the operator lists the versions and rolls back
    code, listing = run_cli("list-versions", "tenant-a")
    assert code == 0
    assert [line.split()[0] for line in listing.splitlines()[1:]] == [first.model_version, "*"]
    code, out = run_cli("rollback", "tenant-a")
    assert code == 0, out
    # Then after the mapping TTL the previous version answers, with its own predictions
    clock[0] += current_runtime().settings.mapping_ttl_seconds + 1
    body = ok(predict(alice_token, rows, context))
    assert body["model_version"] == first.model_version
    assert body["predictions"] == joblib.load(MODELS_DIR / "model_user_a.pkl").predict(X).tolist()
    # And the listing marks it current
    current = [v for v in list_versions(current_runtime(), "tenant-a") if v.current]
    assert [v.sha256 for v in current] == [first.model_sha256]


def test_rollback_to_a_named_version_and_refusals(demo: Stack) -> None:
    first = demo.tenant("tenant-b")
    # Nothing before the only version
    assert run_cli("rollback", "tenant-b")[0] == 1
    # A digest prefix too short, or matching nothing, is refused
    assert run_cli("rollback", "tenant-b", "--to", first.model_sha256[:6])[0] == 1
    assert run_cli("rollback", "tenant-b", "--to", "0" * 12)[0] == 1
    # The current version cannot be "rolled back" to
    assert run_cli("rollback", "tenant-b", "--to", first.model_sha256[:12])[0] == 1
    # A version whose object changed is refused
    put_model(
        current_runtime(),
        "tenant-b",
        (MODELS_DIR / "model_user_a.pkl").read_bytes(),
        None,
        new_tenant=False,
        filename="a.pkl",
        trust_pickle=True,
        allow_interface_change=True,  # 4 features where tenant-b's take 13
    )

    current_runtime().s3.put_object(Bucket=demo.bucket, Key=first.model_key, Body=b"tampered")
    code, _ = run_cli("rollback", "tenant-b", "--to", first.model_sha256[:12], "--allow-interface-change")
    assert code == 1
    assert demo.tenant("tenant-b").model_sha256 != first.model_sha256
