"""What a tenant's ONNX graph may hold (registry/onnx_graph.py): no external data in any place a
tensor can live, found by one generic walk; only the operators the converters emit for the
supported families (a test per family of the zoo); nothing whose size comes from input values.
Registration refuses such a graph before ONNX Runtime ever sees it."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from model_serving.models import onnx_session
from onnx import TensorProto, helper

from registry.onnx_graph import (
    ALLOWED_OPERATORS,
    OPERATORS,
    GraphRefused,
    check_graph,
    graphs,
    refuse_external_data,
    refuse_operators,
    tensors,
)
from registry.registration import RegistrationError, register
from tests.hostile_graphs import (
    PLACES,
    add,
    branch,
    constant_of_shape,
    embedded,
    graph,
    loop_from_input,
    model,
)


@pytest.mark.parametrize("place", PLACES)
def test_external_data_is_refused_wherever_the_tensor_lives(place: str) -> None:
    # Given a model with one tensor whose bytes are in a file, in this place
    hostile = PLACES[place]()
    # When the walk looks at it, then it is refused, naming external data
    with pytest.raises(GraphRefused, match="external data"):
        refuse_external_data(hostile)


@pytest.mark.parametrize("place", PLACES)
def test_the_walk_finds_the_tensor_in_every_place(place: str) -> None:
    # Given the same models
    hostile = PLACES[place]()
    # Then the generic walk yields the external tensor among the tensors it visits
    assert any(t.data_location == TensorProto.EXTERNAL for t in tensors(hostile))


def test_an_external_data_entry_alone_is_refused() -> None:
    # Given a tensor that says DEFAULT but still carries an external_data entry
    tensor = embedded("W", [1.0] * 4)
    tensor.external_data.add(key="location", value="secret.bin")
    # Then it is refused too: ONNX tools read the entry
    with pytest.raises(GraphRefused, match="external data"):
        refuse_external_data(model(graph([add()], initializer=[tensor])))


def test_a_converted_model_with_embedded_tensors_passes_the_walk() -> None:
    # Given an MLP as skl2onnx converts it (its weights are initializers)
    served = _converted("MLPClassifier", double=False)
    # Then the walk finds its tensors, and none is external
    assert len(list(tensors(served))) >= 4
    refuse_external_data(served)


# --- registration: refused before ONNX Runtime sees the graph -----------------------------------


@pytest.fixture
def no_onnx_runtime(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if anything builds an ONNX Runtime session."""
    built: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        built.append("session")
        raise AssertionError("ONNX Runtime was given the graph")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    return built


@pytest.mark.parametrize(
    "place",
    ["sparse tensor attribute", "sparse initializer of a subgraph", "tensor list attribute in a branch body"],
)
def test_registration_refuses_external_data_before_onnx_runtime_sees_it(
    place: str, no_onnx_runtime: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the file the graph points at, in the operator's working directory
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.bin").write_bytes(b"SECRETSECRETSECR")
    # When the operator registers the graph
    with pytest.raises(RegistrationError, match="external data"):
        register("model.onnx", PLACES[place]().SerializeToString())
    # Then no session was built
    assert no_onnx_runtime == []


def test_onnx_runtime_sessions_find_no_external_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a graph whose Constant's sparse value lives in a file of the working directory
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.bin").write_bytes(b"SECRETSECRETSECR")
    hostile = PLACES["sparse tensor attribute"]().SerializeToString()
    rows = {"X": np.zeros((1, 4), dtype=np.float32)}
    # (a plain session from the bytes reads it: the defence below is what stops it)
    plain = ort.InferenceSession(hostile, providers=["CPUExecutionProvider"])
    assert plain.run(None, rows)[0].tobytes() == b"SECRETSECRETSECR"
    # When registration and predict build their session (model_serving.models.onnx_session)
    # Then ONNX Runtime looks in an empty directory and finds nothing
    with pytest.raises(Exception, match="does not exist"):
        onnx_session(hostile)


# --- the operator allowlist -------------------------------------------------------------------


def test_a_data_driven_loop_is_refused_at_registration(no_onnx_runtime: list[str]) -> None:
    # Given a graph like the review's: a Loop run as many times as the request's values say
    # When it is registered, then it is refused, naming the operator and what a graph must be
    with pytest.raises(RegistrationError, match=r"ONNX operator Loop .*converted estimator"):
        register("model.onnx", loop_from_input().SerializeToString())
    assert no_onnx_runtime == []


def test_a_data_driven_constant_of_shape_is_refused_at_registration(no_onnx_runtime: list[str]) -> None:
    with pytest.raises(RegistrationError, match=r"ONNX operator ConstantOfShape .*converted estimator"):
        register("model.onnx", constant_of_shape(shape_from_input=True).SerializeToString())
    assert no_onnx_runtime == []


def test_a_size_argument_must_be_a_constant_even_for_an_allowed_operator() -> None:
    # Given a converter row that allowed ConstantOfShape (none does today)
    allowed = ALLOWED_OPERATORS | {("", "ConstantOfShape")}
    # Then its shape from an initializer is admitted, and a shape computed from X is refused
    refuse_operators(constant_of_shape(shape_from_input=False), allowed)
    with pytest.raises(GraphRefused, match="takes its size from the input's values"):
        refuse_operators(constant_of_shape(shape_from_input=True), allowed)


def test_an_initializer_that_a_caller_can_feed_is_not_a_constant() -> None:
    # Given the constant shape, but also declared as a graph input (IR < 4: a default value)
    allowed = ALLOWED_OPERATORS | {("", "ConstantOfShape")}
    overridable = constant_of_shape(shape_from_input=False)
    overridable.graph.input.append(helper.make_tensor_value_info("shape", TensorProto.INT64, [2]))
    # Then it is refused: whoever runs the graph could feed any shape
    with pytest.raises(GraphRefused, match="ConstantOfShape"):
        refuse_operators(overridable, allowed)


def test_a_subgraph_input_that_shadows_an_outer_constant_is_not_a_constant() -> None:
    # Given (with ConstantOfShape allowed) a Scan body whose per-row input is named like the
    # outer graph's constant shape, and sizes a ConstantOfShape with it
    allowed = ALLOWED_OPERATORS | {("", "ConstantOfShape")}
    body = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["Y"])],
        "body",
        [helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    scan = helper.make_node("Scan", ["X"], ["Y"], body=body, num_scan_inputs=1)
    init = [helper.make_tensor("shape", TensorProto.INT64, [2], [1, 4])]
    # Then the body's size comes from the request's rows, and is refused
    with pytest.raises(GraphRefused, match="ConstantOfShape takes its size"):
        refuse_operators(model(graph([scan], initializer=init)), allowed)


@pytest.mark.parametrize(
    ("op", "domain"),
    [("Tile", ""), ("Range", ""), ("Expand", ""), ("Resize", ""), ("If", ""), ("MyOp", "evil")],
)
def test_operators_outside_the_table_are_refused(op: str, domain: str) -> None:
    hostile = model(graph([helper.make_node(op, ["X", "W"], ["Y"], domain=domain)]))
    with pytest.raises(GraphRefused, match=rf"operator {'evil.' if domain else ''}{op} is not served"):
        refuse_operators(hostile)


def test_operators_in_a_scan_body_are_checked_too() -> None:
    # Given a Scan (k-NN uses one) whose body holds a Loop
    body = branch([helper.make_node("Loop", ["n", "c"], ["Y"])])
    hostile = model(graph([helper.make_node("Scan", ["X"], ["Y"], body=body, num_scan_inputs=1)]))
    # Then the Loop is found and refused
    with pytest.raises(GraphRefused, match="operator Loop"):
        refuse_operators(hostile)


def test_operators_in_a_function_body_are_checked_too() -> None:
    function = helper.make_function(
        "",
        "Add",
        ["X", "W"],
        ["Y"],
        [helper.make_node("Loop", ["n", "c"], ["Y"])],
        [helper.make_opsetid("", 17)],
    )
    with pytest.raises(GraphRefused, match="operator Loop"):
        refuse_operators(model(graph([add()]), functions=[function]))


# --- the zoo: every supported family, converted, is admitted -------------------------------------


def _zoo() -> dict[str, tuple[Any, str]]:
    """family -> (unfitted estimator, "classifier" | "regressor" | "binary" | "strings" | "positive")."""
    from sklearn import ensemble, linear_model, naive_bayes, neighbors, neural_network, svm, tree  # noqa: PLC0415
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler  # noqa: PLC0415

    return {
        "LogisticRegression": (linear_model.LogisticRegression(max_iter=300), "classifier"),
        "LogisticRegression, string labels": (linear_model.LogisticRegression(max_iter=300), "strings"),
        "RidgeClassifier": (linear_model.RidgeClassifier(), "classifier"),
        "SGDClassifier (log loss)": (linear_model.SGDClassifier(loss="log_loss"), "classifier"),
        "Perceptron": (linear_model.Perceptron(), "binary"),
        "LinearSVC": (svm.LinearSVC(), "classifier"),
        "SVC without probabilities": (svm.SVC(), "classifier"),
        "SVC with probabilities": (svm.SVC(probability=True), "binary"),
        "NuSVC": (svm.NuSVC(), "classifier"),
        "KNeighborsClassifier": (neighbors.KNeighborsClassifier(), "classifier"),
        "KNeighborsClassifier (distance), string labels": (
            neighbors.KNeighborsClassifier(weights="distance"),
            "strings",
        ),
        "MLPClassifier": (neural_network.MLPClassifier(max_iter=50), "classifier"),
        "MLPClassifier (tanh)": (neural_network.MLPClassifier(activation="tanh", max_iter=50), "binary"),
        "GaussianNB": (naive_bayes.GaussianNB(), "classifier"),
        "BernoulliNB": (naive_bayes.BernoulliNB(), "classifier"),
        "MultinomialNB": (naive_bayes.MultinomialNB(), "positive"),
        "DecisionTreeClassifier": (tree.DecisionTreeClassifier(), "classifier"),
        "RandomForestClassifier": (ensemble.RandomForestClassifier(5), "classifier"),
        "ExtraTreesClassifier": (ensemble.ExtraTreesClassifier(5), "classifier"),
        "GradientBoostingClassifier": (ensemble.GradientBoostingClassifier(n_estimators=5), "classifier"),
        "GradientBoostingClassifier, binary": (ensemble.GradientBoostingClassifier(n_estimators=5), "binary"),
        "BaggingClassifier": (ensemble.BaggingClassifier(n_estimators=3), "classifier"),
        "pipeline: imputer, scaler, logistic regression": (
            make_pipeline(SimpleImputer(), StandardScaler(), linear_model.LogisticRegression()),
            "classifier",
        ),
        "pipeline: median imputer, robust scaler, random forest": (
            make_pipeline(
                SimpleImputer(strategy="median"), RobustScaler(), ensemble.RandomForestClassifier(5)
            ),
            "classifier",
        ),
        "pipeline: min-max scaler, SVC": (
            make_pipeline(MinMaxScaler(), svm.SVC(probability=True)),
            "classifier",
        ),
        "LinearRegression": (linear_model.LinearRegression(), "regressor"),
        "Ridge": (linear_model.Ridge(), "regressor"),
        "Lasso": (linear_model.Lasso(), "regressor"),
        "ElasticNet": (linear_model.ElasticNet(), "regressor"),
        "SGDRegressor": (linear_model.SGDRegressor(), "regressor"),
        "LinearSVR": (svm.LinearSVR(), "regressor"),
        "SVR": (svm.SVR(), "regressor"),
        "NuSVR": (svm.NuSVR(), "regressor"),
        "KNeighborsRegressor": (neighbors.KNeighborsRegressor(), "regressor"),
        "MLPRegressor": (neural_network.MLPRegressor(max_iter=50), "regressor"),
        "DecisionTreeRegressor": (tree.DecisionTreeRegressor(), "regressor"),
        "RandomForestRegressor": (ensemble.RandomForestRegressor(5), "regressor"),
        "ExtraTreesRegressor": (ensemble.ExtraTreesRegressor(5), "regressor"),
        "GradientBoostingRegressor": (ensemble.GradientBoostingRegressor(n_estimators=5), "regressor"),
        "pipeline: imputer, scaler, ridge": (
            make_pipeline(SimpleImputer(), StandardScaler(), linear_model.Ridge()),
            "regressor",
        ),
    }


ZOO = list(_zoo())


@cache
def _converted(family: str, double: bool) -> onnx.ModelProto:
    from skl2onnx import to_onnx  # noqa: PLC0415
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType  # noqa: PLC0415

    estimator, kind = _zoo()[family]
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(60, 4))
    targets: Any = rows @ [1.0, -2.0, 0.5, 0.0]
    if kind != "regressor":
        classes = 2 if kind == "binary" else 3
        targets = np.digitize(targets, np.quantile(targets, np.linspace(0, 1, classes + 1)[1:-1]))
        if kind == "strings":
            targets = np.array(["low", "mid", "high"])[targets]
    if kind == "positive":
        rows = np.abs(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        estimator.fit(rows, targets)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = (
        {id(final): {"zipmap": False}}
        if kind != "regressor" and type(final).__name__ != "LinearSVC"
        else None
    )
    tensor = DoubleTensorType if double else FloatTensorType
    return to_onnx(estimator, initial_types=[("X", tensor([None, 4]))], options=options)


@pytest.mark.parametrize("family", ZOO)
def test_every_family_of_the_zoo_converted_by_skl2onnx_is_admitted(family: str) -> None:
    # Given the family's estimator, fitted and converted (float input, zipmap off)
    converted = _converted(family, double=False)
    # Then its graph passes the walk and the allowlist
    check_graph(converted)


@pytest.mark.parametrize(
    "family",
    ["RandomForestClassifier", "GradientBoostingRegressor", "pipeline: imputer, scaler, logistic regression"],
)
def test_families_converted_with_double_input_are_admitted(family: str) -> None:
    check_graph(_converted(family, double=True))


def test_the_table_lists_only_what_the_zoo_uses() -> None:
    # Given every graph of the zoo, float and double
    used = set()
    for family in ZOO:
        for double in (
            (False, True) if family in {"RandomForestClassifier", "GradientBoostingRegressor"} else (False,)
        ):
            for each, _ in graphs(_converted(family, double)):
                used |= {(node.domain, node.op_type) for node in each.node}
    # Then the skl2onnx row holds exactly those operators: nothing admitted that no family needs
    assert OPERATORS["skl2onnx"] == used
