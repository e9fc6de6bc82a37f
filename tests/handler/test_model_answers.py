"""One way in and out of a model (`model_serving.answers`), for every format: rows beyond the range
of the model's input precision are a 400 naming their position, and an answer holding NaN or an
infinity is a 422 problem, never `NaN` in a 200 nor a 500. Every body parses as strict JSON.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import numpy as np
import pytest
import skops.io
from model_serving.answers import FLOAT32, FLOAT64, INPUT_LIMITS, answer
from model_serving.sklearn_models import SklearnModel
from sklearn.datasets import load_iris
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading
from sklearn.tree import DecisionTreeClassifier

from functions.predict.app import lambda_handler
from inferctl.onboarding import put_model
from tests.support import FakeLambdaContext, Stack, current_runtime, load_event, use_runtime

NO_FINITE_ANSWER = "The model gave no finite answer for these rows."


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str) -> Any:
    """What a strict client reads: NaN, Infinity and -Infinity are errors, as RFC 8259 says."""
    return json.loads(text, parse_constant=_refuse_constant)


def predict(token: str, rows: list[list[float]], context: FakeLambdaContext, **parameters: bool) -> Any:
    event = load_event("predict_alice", alice_token=token)
    body: dict[str, Any] = {"instances": rows}
    if parameters:
        body["parameters"] = parameters
    response = lambda_handler({**event, "body": json.dumps(body)}, context)
    return response["statusCode"], strict_json(response["body"])


def serve_as_tenant_a(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Republish tenant-a with `model` as an audited skops file (no ONNX converter for it), whatever
    its interface (tests/handler/test_model_interface.py guards that rule)."""
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    use_runtime()
    facts = put_model(
        current_runtime(),
        "tenant-a",
        skops.io.dumps(model),
        None,
        new_tenant=False,
        filename="m.skops",
        allow_interface_change=True,
    )
    assert facts.model_format == "skops"


IRIS_X, IRIS_Y = load_iris(return_X_y=True)


# --- an ONNX tenant (the demo tenant-a: LogisticRegression served as a float32 graph) ------------


def test_an_onnx_answer_with_nan_probabilities_is_a_422_not_invalid_json(
    alice_token: str, context: FakeLambdaContext
) -> None:
    # Given rows inside float32's range on which the graph's softmax overflows (the review's case)
    rows = [[3e38, -3e38, 3e38, -3e38]]
    # When alice asks for probabilities
    status, body = predict(alice_token, rows, context, probabilities=True)
    # Then no NaN is written: a 422 problem with a fixed detail, which parses as strict JSON
    assert status == 422
    assert body["detail"] == NO_FINITE_ANSWER
    assert "predictions" not in body


def test_an_onnx_row_past_float32_is_a_400_naming_its_position(
    alice_token: str, context: FakeLambdaContext
) -> None:
    status, body = predict(alice_token, [[5.1, 3.5, 1.4, 0.2], [1.0, 4e38, 1.0, 1.0]], context)
    assert status == 400
    assert body["detail"] == "instances[1][1] is out of range for this model."


def test_an_onnx_row_at_float32_max_is_answered(alice_token: str, context: FakeLambdaContext) -> None:
    # The range is inclusive: float32's largest finite value reaches the graph as itself
    largest = INPUT_LIMITS[FLOAT32]
    status, body = predict(alice_token, [[largest, 1.0, 1.0, 1.0]], context)
    assert status == 200, body
    assert len(body["predictions"]) == 1


# --- a skops tenant (scikit-learn in float64) ------------------------------------------------------


def test_a_skops_row_far_past_its_range_is_a_400_not_a_500(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tenant-a served by a skops NearestCentroid (which raises ValueError at 1e308)
    serve_as_tenant_a(NearestCentroid().fit(IRIS_X, IRIS_Y), monkeypatch)
    # When alice sends a finite row beyond the float64 range the check allows
    status, body = predict(alice_token, [[1e308, 1, 1, 1]], context)
    # Then it is the client's 400, naming where, not an unhandled 500
    assert status == 400, body
    assert body["detail"] == "instances[0][0] is out of range for this model."


def test_a_skops_row_inside_its_range_is_answered(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the skops NearestCentroid, and a row at the float64 limit (past float32's range)
    model = NearestCentroid().fit(IRIS_X, IRIS_Y)
    serve_as_tenant_a(model, monkeypatch)
    row = [INPUT_LIMITS[FLOAT64], -1.0, 1e39, 1.0]
    # When alice predicts / Then scikit-learn answers it, as it does in-process
    status, body = predict(alice_token, [row], context, probabilities=True)
    assert status == 200, body
    assert body["predictions"] == model.predict(np.array([row])).tolist()


def test_a_skops_answer_with_nan_probabilities_is_a_422(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a skops LabelSpreading, whose probabilities are NaN for any row far from its data
    serve_as_tenant_a(LabelSpreading().fit(IRIS_X, IRIS_Y), monkeypatch)
    # When alice asks for probabilities of such a row
    status, body = predict(alice_token, [[100.0, 100.0, 100.0, 100.0]], context, probabilities=True)
    # Then the answer is refused, never written as NaN
    assert (status, body["detail"]) == (422, NO_FINITE_ANSWER)
    # And without probabilities its labels are finite, and served
    status, body = predict(alice_token, [[100.0, 100.0, 100.0, 100.0]], context)
    assert status == 200 and body["predictions"] == [0]


def test_a_skops_estimator_that_raises_inside_is_a_422_not_a_500(
    demo: Stack, alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pipeline whose scaler was fitted on a feature of scale 4e-161: a row inside the range
    # overflows there, and NearestCentroid then raises ValueError on the infinity
    X = IRIS_X.copy()
    X[:, 0] = 1e-160 * (1 + np.arange(len(X)) * 0.01)
    serve_as_tenant_a(make_pipeline(StandardScaler(), NearestCentroid()).fit(X, IRIS_Y), monkeypatch)
    # When alice sends such a row
    status, body = predict(alice_token, [[1e149, 1.0, 1.0, 1.0]], context)
    # Then the tenant's model failing is a 422 with the fixed detail
    assert (status, body["detail"]) == (422, NO_FINITE_ANSWER)


# --- the range follows the model's input precision -----------------------------------------------


def test_scikit_learn_trees_take_float32_and_other_estimators_float64() -> None:
    # scikit-learn's trees cast rows to float32 and raise past its range; NearestCentroid does not
    tree = SklearnModel(DecisionTreeClassifier(random_state=0).fit(IRIS_X, IRIS_Y))
    centroid = SklearnModel(NearestCentroid().fit(IRIS_X, IRIS_Y))
    assert (tree.input_precision, centroid.input_precision) == (FLOAT32, FLOAT64)
    # And a row just past float32's range is a 400 for the tree, an answer for the other
    rows = np.array([[4e38, 1.0, 1.0, 1.0]])
    with pytest.raises(Exception, match=r"instances\[0\]\[0\] is out of range"):
        answer(tree, rows, probabilities=False, model_version="v")
    assert strict_json(answer(centroid, rows, probabilities=True, model_version="v").body)["predictions"]


def test_the_float64_limit_keeps_distance_models_finite() -> None:
    # Given a distance-based model (squares of differences), and rows at +-limit in every feature
    limit = INPUT_LIMITS[FLOAT64]
    model = SklearnModel(NearestCentroid().fit(IRIS_X, IRIS_Y))
    rows = np.array([[limit, -limit, limit, -limit], [-limit] * 4])
    # Then its answer is finite (at 1.3e154 the same model answers NaN: answers.py)
    body = strict_json(answer(model, rows, probabilities=True, model_version="v").body)
    assert np.isfinite(body["probabilities"]).all()
