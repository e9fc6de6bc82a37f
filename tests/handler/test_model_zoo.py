"""The model zoo: every family of `registry.families` registered from a trusted pickle without
`--sample`, then served through predict on its whole data set and on the registry's own probe
rows (on and beside every tree threshold), equal to the original estimator: identical labels,
probabilities within 1e-5, regression values within 1e-5 relative.

Beside the zoo, what the new model shapes allow and refuse: a regressor's probabilities, `null`
where a model does or does not take missing values, object rows keyed by the feature names.
Datasets and tree counts are small on purpose: this file runs on two shared cores.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator, is_regressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from xgboost import XGBClassifier, XGBRegressor

from functions.predict.app import lambda_handler
from inferctl.cli import main
from inferctl.onboarding import OnboardingError, create_user, put_model
from registry.proof import generated_rows
from tests.support import FakeLambdaContext, Stack, assert_problem, current_runtime, load_event, token_for

Rows = npt.NDArray[np.float64]
DATA: dict[str, Callable[[], tuple[Rows, Rows]]] = {
    "iris": lambda: load_iris(return_X_y=True),
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "diabetes": lambda: load_diabetes(return_X_y=True),
}

# A forest's classes can tie (as many trees for each); float32 sums in ONNX Runtime break such a tie
# differently from scikit-learn's float64 mean, so forests whose probes tie are served as skops.
TIES = "onnx float32 or skops"
# (estimator, data set, how it is served): the supported-families table of docs/model-families.md.
ZOO: dict[str, tuple[Callable[[], BaseEstimator], str, str]] = {
    "LogisticRegression (scaled pipeline)": (
        lambda: make_pipeline(StandardScaler(), LogisticRegression()),
        "breast_cancer",
        "onnx float32",
    ),
    "SVC with probabilities": (lambda: SVC(probability=True, random_state=0), "iris", "onnx float32"),
    "SVC": (SVC, "iris", "onnx float32"),
    "LinearSVC": (LinearSVC, "iris", "onnx float32"),
    # Iris holds duplicate rows, whose neighbours tie: the registry refuses k-NN there (below).
    "KNeighborsClassifier": (KNeighborsClassifier, "breast_cancer", "onnx float32"),
    "MLPClassifier": (lambda: MLPClassifier(max_iter=300, random_state=0), "iris", "onnx float32"),
    "GaussianNB": (GaussianNB, "iris", "onnx float64"),
    "DecisionTreeClassifier": (
        lambda: DecisionTreeClassifier(random_state=0),
        "breast_cancer",
        "onnx float32",
    ),
    "RandomForestClassifier": (
        lambda: RandomForestClassifier(n_estimators=20, random_state=0),
        "breast_cancer",
        TIES,
    ),
    "ExtraTreesClassifier": (
        lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
        "breast_cancer",
        TIES,
    ),
    "GradientBoostingClassifier": (
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
        "iris",
        "onnx float32",
    ),
    "HistGradientBoostingClassifier": (
        lambda: HistGradientBoostingClassifier(max_iter=10),
        "breast_cancer",
        "onnx float64",
    ),
    "HistGradientBoostingRegressor": (
        lambda: HistGradientBoostingRegressor(max_iter=10),
        "diabetes",
        "onnx float64",
    ),
    "XGBClassifier": (lambda: XGBClassifier(n_estimators=10), "iris", "onnx float32"),
    "XGBRegressor": (lambda: XGBRegressor(n_estimators=10), "diabetes", "onnx float32"),
    "LGBMClassifier": (lambda: LGBMClassifier(n_estimators=10, verbose=-1), "breast_cancer", "onnx float64"),
    "LGBMRegressor": (lambda: LGBMRegressor(n_estimators=10, verbose=-1), "diabetes", "onnx float64"),
    "LinearRegression": (LinearRegression, "diabetes", "onnx float64"),
    "Ridge (scaled pipeline)": (lambda: make_pipeline(StandardScaler(), Ridge()), "diabetes", "onnx float64"),
    "SVR": (SVR, "diabetes", "onnx float32"),
    "KNeighborsRegressor": (KNeighborsRegressor, "diabetes", "onnx float64"),
    "MLPRegressor": (lambda: MLPRegressor(max_iter=200, random_state=0), "diabetes", "onnx float64"),
    "DecisionTreeRegressor": (
        lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
        "diabetes",
        "onnx float32",
    ),
    "RandomForestRegressor": (
        lambda: RandomForestRegressor(n_estimators=10, max_depth=8, random_state=0),
        "diabetes",
        "onnx float32",
    ),
    "GradientBoostingRegressor": (
        lambda: GradientBoostingRegressor(n_estimators=10, random_state=0),
        "diabetes",
        "onnx float32",
    ),
}


def loaded_precision(stack: Stack, tenant_id: str) -> str:
    """The input precision of the tenant's served ONNX graph, as predict loads it."""
    loaded: Any = current_runtime().models.get(stack.tenant(tenant_id))
    return str(loaded.input_precision)


def pickled(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def onboard_model(tenant_id: str, model: Any, **options: Any) -> str:
    """Register `model` as a new tenant from a trusted pickle (no sample); a token of its user."""
    runtime = current_runtime()
    put_model(
        runtime,
        tenant_id,
        pickled(model),
        None,
        new_tenant=True,
        filename="m.pkl",
        trust_pickle=True,
        **options,
    )
    create_user(runtime, f"user-{tenant_id}", "zoo-password-1", tenant_id)
    return token_for(f"user-{tenant_id}", tenant_id)


def predict(token: str, body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("predict_alice", alice_token=token)
    return lambda_handler({**event, "body": json.dumps(body)}, FakeLambdaContext())


def ok(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response["body"]
    body: dict[str, Any] = json.loads(response["body"])
    return body


def model_card(token: str) -> dict[str, Any]:
    card: dict[str, Any] = ok(
        lambda_handler(load_event("model_card", alice_token=token), FakeLambdaContext())
    )
    return card


def served(token: str, rows: Rows, *, probabilities: bool) -> tuple[list[Any], list[list[float]]]:
    """Predictions (and probabilities) for every row, in batches of the default max_batch."""
    predictions: list[Any] = []
    columns: list[list[float]] = []
    for start in range(0, len(rows), 1000):
        body: dict[str, Any] = {"instances": rows[start : start + 1000].tolist()}
        if probabilities:
            body["parameters"] = {"probabilities": True}
        answer = ok(predict(token, body))
        predictions += answer["predictions"]
        columns += answer.get("probabilities", [])
    return predictions, columns


@pytest.mark.parametrize("family", sorted(ZOO))
def test_every_family_registers_without_a_sample_and_serves_the_originals_answers(
    stack: Stack, family: str
) -> None:
    # Given an estimator of the family, fitted on a data set scikit-learn ships
    make, data_set, expected_format = ZOO[family]
    X, y = DATA[data_set]()
    model = make().fit(X, y)
    regression = is_regressor(model)
    # When the operator registers its pickle (trusted, no --sample)
    token = onboard_model("zoo", model)
    card = model_card(token)
    format_and_precision = card["format"]
    if card["format"] == "onnx":
        format_and_precision += " " + loaded_precision(stack, "zoo")
    assert format_and_precision in expected_format.split(" or ")
    assert card["task"] == ("regression" if regression else "classification")
    # Then predict answers the whole data set and the registry's probe rows as the original does
    rows = np.vstack([X, generated_rows(model, X.shape[1])])
    probabilities = not regression and hasattr(model, "predict_proba")
    predictions, columns = served(token, rows, probabilities=probabilities)
    if regression:
        expected = model.predict(rows)
        scale = np.maximum(np.abs(expected), np.abs(expected).mean())
        assert (np.abs(np.asarray(predictions) - expected) <= 1e-5 * scale).all()
    else:
        assert predictions == model.predict(rows).tolist()
        if probabilities:
            assert np.abs(np.asarray(columns) - model.predict_proba(rows)).max() <= 1e-5


# --- regressors -----------------------------------------------------------------------------------


def test_a_regressors_probabilities_are_a_400_before_the_model_is_fetched(
    stack: Stack, s3_calls: list[str]
) -> None:
    # Given a regression tenant
    X, y = DATA["diabetes"]()
    token = onboard_model("prices", LinearRegression().fit(X, y))
    s3_calls.clear()
    # When its client asks for probabilities
    response = predict(token, {"instances": X[:2].tolist(), "parameters": {"probabilities": True}})
    # Then it is a 400 that says why, and no model was fetched
    assert "regressor" in assert_problem(response, 400)["detail"]
    assert "GetObject" not in s3_calls
    # And the model card says what the tenant's model is
    card = model_card(token)
    assert (card["task"], card["classes"], card["accepts_missing"]) == ("regression", None, False)


# --- missing values -------------------------------------------------------------------------------


def test_null_is_a_400_for_a_model_that_cannot_take_missing_values(
    stack: Stack, alice_token: str, s3_calls: list[str]
) -> None:
    # Given the demo tenant (a LogisticRegression: NaN is an error to it)
    s3_calls.clear()
    # When a row holds null / Then 400, naming the position, before any model fetch
    response = predict(alice_token, {"instances": [[5.1, None, 1.4, 0.2]]})
    assert assert_problem(response, 400)["detail"] == "instances[0][1] must be a finite number."
    assert "GetObject" not in s3_calls


@pytest.mark.parametrize(
    ("make", "data_set"),
    [
        (lambda: make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)), "iris"),
        (lambda: HistGradientBoostingClassifier(max_iter=10), "breast_cancer"),
    ],
    ids=["SimpleImputer pipeline", "HistGradientBoosting"],
)
def test_null_is_served_as_missing_for_a_model_proven_to_take_it(
    stack: Stack, make: Callable[[], BaseEstimator], data_set: str
) -> None:
    # Given a model built for missing values: registration probes it with NaN
    X, y = DATA[data_set]()
    model = make().fit(X, y)
    token = onboard_model("imputed", model)
    assert model_card(token)["accepts_missing"] is True
    # When rows hold null in every position in turn
    rows = X[:8].copy()
    rows[np.arange(8), np.arange(8) % X.shape[1]] = np.nan
    instances = [[None if np.isnan(v) else float(v) for v in row] for row in rows]
    answer = ok(predict(token, {"instances": instances, "parameters": {"probabilities": True}}))
    # Then the answers are the original's on NaN
    assert answer["predictions"] == model.predict(rows).tolist()
    assert np.abs(np.asarray(answer["probabilities"]) - model.predict_proba(rows)).max() <= 1e-5
    # And a value past a float32 graph's range is still refused beside a null
    if loaded_precision(stack, "imputed") == "float32":
        past_range = [None, *X[0, 1:].tolist()]
        past_range[1] = 1e300
        detail = assert_problem(predict(token, {"instances": [past_range]}), 400)["detail"]
        assert detail == "instances[0][1] is out of range for this model."
    # And NaN and Infinity literals are still refused
    for literal in (b"NaN", b"Infinity"):
        values = [str(v).encode() for v in X[0].tolist()]
        body = b'{"instances": [[' + b", ".join([literal, *values[1:]]) + b"]]}"
        event = {**load_event("predict_alice", alice_token=token), "body": body.decode()}
        assert_problem(lambda_handler(event, FakeLambdaContext()), 400)


# --- named features -------------------------------------------------------------------------------

NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


@pytest.fixture
def named(stack: Stack) -> str:
    """A tenant whose model was registered with --feature-names; its user's token."""
    X, y = DATA["iris"]()
    return onboard_model("named", LogisticRegression(max_iter=500).fit(X, y), feature_names=NAMES)


def test_object_rows_keyed_by_the_feature_names_are_served_in_any_key_order(named: str) -> None:
    X, _ = DATA["iris"]()
    assert model_card(named)["feature_names"] == list(NAMES)
    as_arrays = ok(predict(named, {"instances": X[:5].tolist()}))["predictions"]
    objects = [dict(reversed(list(zip(NAMES, row, strict=True)))) for row in X[:5].tolist()]
    assert ok(predict(named, {"instances": objects}))["predictions"] == as_arrays


@pytest.mark.parametrize(
    ("row", "case"),
    [
        ({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}, "missing key"),
        (
            {
                "sepal_length": 5.1,
                "sepal_width": 3.5,
                "petal_length": 1.4,
                "petal_width": 0.2,
                "zz_secret": 1,
            },
            "unknown key",
        ),
        ({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "zz_secret": 0.2}, "renamed key"),
    ],
)
def test_an_object_row_not_keyed_by_exactly_the_feature_names_is_a_400_that_does_not_echo_it(
    named: str, s3_calls: list[str], row: dict[str, float], case: str
) -> None:
    s3_calls.clear()
    detail = assert_problem(predict(named, {"instances": [row]}), 400)["detail"]
    assert detail.startswith("instances[0] must be keyed by exactly the model's 4 feature names")
    assert "zz_secret" not in detail
    assert "GetObject" not in s3_calls


def test_an_object_row_with_a_duplicate_key_is_a_400(named: str) -> None:
    row = '{"sepal_length": 1, "sepal_width": 2, "petal_length": 3, "petal_width": 4, "petal_width": 5}'
    body = '{"instances": [' + row + "]}"
    event = {**load_event("predict_alice", alice_token=named), "body": body}
    assert "petal_width" not in assert_problem(lambda_handler(event, FakeLambdaContext()), 400)["detail"]


def test_object_rows_are_a_400_for_a_model_without_feature_names(alice_token: str) -> None:
    response = predict(alice_token, {"instances": [dict(zip(NAMES, [5.1, 3.5, 1.4, 0.2], strict=True))]})
    assert assert_problem(response, 400)["detail"] == "instances[0] must be a list of numbers."


def test_feature_names_of_the_wrong_count_are_refused_in_one_line(
    stack: Stack, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a 4-feature model file
    X, y = DATA["iris"]()
    path = tmp_path / "m.pkl"
    path.write_bytes(pickled(LogisticRegression(max_iter=500).fit(X, y)))
    # When the operator names 3 features / Then a one-line refusal, and no tenant
    code = main(
        ["create-tenant", "t3", "--model", str(path), "--trust-pickle", "--feature-names", "a,b,c"],
        stdout=io.StringIO(),
    )
    error = capsys.readouterr().err
    assert code != 0
    assert error.count("\n") == 1 and "3 feature names for a model of 4 features" in error
    assert current_runtime().table.get_tenant("t3") is None


def test_a_knn_model_whose_neighbours_tie_on_its_training_rows_is_refused_naming_the_rows(
    stack: Stack,
) -> None:
    # Given k-NN fitted on Iris, whose duplicate rows have tied neighbours that ONNX Runtime's
    # TopK picks differently (the probabilities differ by 0.2 on some training rows)
    X, y = DATA["iris"]()
    model = KNeighborsClassifier().fit(X, y)
    # When it is registered / Then refused: the rows that disagree, and what to do next
    with pytest.raises(OnboardingError) as refused:
        onboard_model("knn", model)
    message = str(refused.value)
    assert "ONNX float32 disagrees on" in message and "probe rows (rows " in message
    assert "KNeighborsClassifier" in message and "--sample" in message


# --- XGBoost and LightGBM native files --------------------------------------------------------------


def native_file(model: Any, suffix: str, tmp_path: Path) -> bytes:
    path = tmp_path / f"model{suffix}"
    if suffix == ".txt":
        model.booster_.save_model(str(path))
    else:
        model.save_model(str(path))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("make", "data_set", "suffix"),
    [
        (lambda: XGBClassifier(n_estimators=5), "iris", ".json"),
        (lambda: XGBRegressor(n_estimators=5), "diabetes", ".ubj"),
        (lambda: LGBMClassifier(n_estimators=5, verbose=-1), "breast_cancer", ".txt"),
        (lambda: LGBMRegressor(n_estimators=5, verbose=-1), "diabetes", ".txt"),
    ],
    ids=["XGBoost JSON", "XGBoost UBJSON", "LightGBM text classifier", "LightGBM text regressor"],
)
def test_a_native_xgboost_or_lightgbm_file_registers_without_trusting_a_pickle(
    stack: Stack, tmp_path: Path, make: Callable[[], Any], data_set: str, suffix: str
) -> None:
    # Given the library's own model file (trees and parameters, no code)
    X, y = DATA[data_set]()
    model = make().fit(X, y)
    data = native_file(model, suffix, tmp_path)
    # When it is registered without --trust-pickle
    runtime = current_runtime()
    facts = put_model(runtime, "native", data, None, new_tenant=True, filename=f"m{suffix}")
    create_user(runtime, "user-native", "zoo-password-1", "native")
    token = token_for("user-native", "native")
    # Then it is served as ONNX, equal to the library's own answers on the data set and the probes
    assert (facts.model_format, facts.source_format) == (
        "onnx",
        "lightgbm" if suffix == ".txt" else "xgboost",
    )
    rows = np.vstack([X, generated_rows(model, X.shape[1])])
    predictions, _ = served(token, rows, probabilities=False)
    expected = model.predict(rows)
    assert np.allclose(np.asarray(predictions, dtype=np.float64), expected, rtol=1e-5, atol=0)


def test_a_json_file_that_is_not_an_xgboost_model_is_refused_in_one_line(stack: Stack) -> None:
    with pytest.raises(OnboardingError, match="not a readable xgboost model"):
        put_model(current_runtime(), "native", b'{"learner": 1}', None, new_tenant=True, filename="m.json")
    assert current_runtime().table.get_tenant("native") is None
