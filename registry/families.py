"""The families of estimators the registry serves: one row each, and the conversion they share.

A row says which estimators it covers (by class name; a pipeline is the family of its last step),
their task, the precision of the served graph's input, and how the proof probes them
(`registry.proof`). An estimator no row names is tried with the default row of its task, and the
proof decides; one that no converter handles is served as an audited skops file, as before.

Why the precisions (measured 2026-12-06, scikit-learn 1.9.1, skl2onnx 1.20.0, ONNX Runtime 1.31.1):
- scikit-learn's own trees (decision trees, random forests, extra trees, gradient boosting) round
  every input to float32 and compare it with a float64 threshold. skl2onnx stores the threshold
  rounded to the *nearest* float32, which can lie above it: an input that rounds onto that value
  goes left in ONNX and right in scikit-learn (a 50-tree forest disagreed on 67 of 1024 probes).
  Rounding each threshold *down* to a float32 (`_thresholds_rounded_down`) keeps the estimator's
  answers identical (a float32 input is at most the threshold exactly when it is at most the
  largest float32 at most the threshold) and makes the float32 graph exact on every input. A
  float64 graph would not help here: skl2onnx 1.20 writes tree classifiers' thresholds as float32
  attributes (`op_version=1`) whatever the input type.
- Regressors are converted with a float64 input where skl2onnx can (linear models, k-NN, MLP),
  so values stay within 1e-5 relative; float32 otherwise, and the proof checks the tolerance.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from model_runtime.table import CLASSIFICATION, REGRESSION

FLOAT32 = "float32"
FLOAT64 = "float64"
SKL2ONNX, XGBOOST, LIGHTGBM = "skl2onnx", "onnxmltools (XGBoost)", "onnxmltools (LightGBM)"
# onnxmltools 1.16 converts up to ONNX opset 15.
ONNXMLTOOLS_OPSET = 15
# ai.onnx.ml 3 lets ONNX Runtime's tree ensembles take double attributes; "" is the ONNX opset.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True, slots=True)
class Family:
    """One row of the table: which estimators, their task, the served precisions to try in turn."""

    name: str
    estimators: frozenset[str]
    task: str
    precisions: tuple[str, ...]
    sklearn_trees: bool = False  # thresholds rounded down to float32 before conversion
    exact_thresholds: bool = False  # float64 graphs get the estimator's own float64 thresholds
    converter: str = SKL2ONNX


def _row(
    name: str,
    task: str,
    precisions: tuple[str, ...],
    *estimators: str,
    trees: bool = False,
    exact_thresholds: bool = False,
    converter: str = SKL2ONNX,
) -> Family:
    return Family(name, frozenset(estimators), task, precisions, trees, exact_thresholds, converter)


FAMILIES: tuple[Family, ...] = (
    _row(
        "linear models", CLASSIFICATION, (FLOAT32,), "LogisticRegression", "SGDClassifier", "RidgeClassifier"
    ),
    _row("linear SVMs", CLASSIFICATION, (FLOAT32,), "LinearSVC"),
    _row("kernel SVMs", CLASSIFICATION, (FLOAT32,), "SVC", "NuSVC"),
    _row("k-nearest neighbours", CLASSIFICATION, (FLOAT32,), "KNeighborsClassifier"),
    _row("neural networks", CLASSIFICATION, (FLOAT32,), "MLPClassifier"),
    # float32 exponentials put GaussianNB's probabilities 1e-5 off on rows far from the data.
    _row("naive Bayes", CLASSIFICATION, (FLOAT64, FLOAT32), "GaussianNB"),
    _row(
        "scikit-learn trees",
        CLASSIFICATION,
        (FLOAT32,),
        "DecisionTreeClassifier",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "GradientBoostingClassifier",
        trees=True,
    ),
    _row(
        "histogram gradient boosting",
        CLASSIFICATION,
        (FLOAT64,),
        "HistGradientBoostingClassifier",
        exact_thresholds=True,
    ),
    _row(
        "linear regression",
        REGRESSION,
        (FLOAT64, FLOAT32),
        "LinearRegression",
        "Ridge",
        "Lasso",
        "ElasticNet",
        "SGDRegressor",
    ),
    _row("support vector regression", REGRESSION, (FLOAT64, FLOAT32), "SVR", "LinearSVR", "NuSVR"),
    _row("k-nearest neighbours regression", REGRESSION, (FLOAT64, FLOAT32), "KNeighborsRegressor"),
    _row("neural network regression", REGRESSION, (FLOAT64, FLOAT32), "MLPRegressor"),
    _row(
        "scikit-learn regression trees",
        REGRESSION,
        (FLOAT32,),
        "DecisionTreeRegressor",
        "RandomForestRegressor",
        "ExtraTreesRegressor",
        "GradientBoostingRegressor",
        trees=True,
    ),
    _row(
        "histogram gradient boosting regression",
        REGRESSION,
        (FLOAT64,),
        "HistGradientBoostingRegressor",
        exact_thresholds=True,
    ),
    # XGBoost rounds inputs to float32 and keeps float32 split values: a float32 graph is exact.
    _row("XGBoost", CLASSIFICATION, (FLOAT32,), "XGBClassifier", converter=XGBOOST),
    _row("XGBoost regression", REGRESSION, (FLOAT32,), "XGBRegressor", converter=XGBOOST),
    # LightGBM compares float64 inputs with float64 thresholds, as HistGradientBoosting does.
    _row(
        "LightGBM",
        CLASSIFICATION,
        (FLOAT64,),
        "LGBMClassifier",
        "LightGBMTextClassifier",
        exact_thresholds=True,
        converter=LIGHTGBM,
    ),
    _row(
        "LightGBM regression",
        REGRESSION,
        (FLOAT64,),
        "LGBMRegressor",
        "LightGBMTextRegressor",
        exact_thresholds=True,
        converter=LIGHTGBM,
    ),
)
DEFAULT = {
    CLASSIFICATION: _row("other classifiers", CLASSIFICATION, (FLOAT32,)),
    REGRESSION: _row("other regressors", REGRESSION, (FLOAT64, FLOAT32)),
}


def final_estimator(model: Any) -> Any:
    """The estimator that predicts: a pipeline's last step, else the model itself."""
    steps = getattr(model, "steps", None)
    return final_estimator(steps[-1][1]) if steps else model


def family_of(model: Any, task: str) -> Family:
    name = type(final_estimator(model)).__name__
    return next((f for f in FAMILIES if name in f.estimators and f.task == task), DEFAULT[task])


class ConversionFailed(Exception):
    """The converter could not convert the estimator; the message is its own reason, one line."""


def one_line(error: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message (skl2onnx's
    messages go on for a paragraph of advice after the first line)."""
    lines = str(error).strip().splitlines()
    first = lines[0].strip().rstrip(".") if lines else ""
    return f"{type(error).__name__}: {first[:200]}" if first else type(error).__name__


def convert(model: Any, n_features: int, family: Family, precision: str) -> bytes:
    """The estimator as an ONNX graph with one input [N, n_features] of `precision`, no ZipMap;
    `ConversionFailed` with the converter's own reason when it has no converter for the estimator
    or its converter fails on it."""
    if family.converter != SKL2ONNX:
        return _convert_with_onnxmltools(model, n_features, family, precision)
    from skl2onnx import to_onnx  # noqa: PLC0415
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType  # noqa: PLC0415

    tensor = DoubleTensorType if precision == FLOAT64 else FloatTensorType
    source = _thresholds_rounded_down(model) if family.sklearn_trees else model
    last = final_estimator(source)
    options = {id(last): {"zipmap": False}} if family.task == CLASSIFICATION else None
    for attempt in (options, None):  # LinearSVC's converter has no zipmap option: it emits none
        try:
            with _integer_missing_flags():
                graph = to_onnx(
                    source,
                    initial_types=[("X", tensor([None, n_features]))],
                    options=attempt,
                    target_opset=TARGET_OPSET,
                )
        except NameError as error:  # "Option 'zipmap' not in [...]"
            if attempt is None:
                raise ConversionFailed(f"skl2onnx: {one_line(error)}") from None
            continue
        except Exception as error:
            raise ConversionFailed(f"skl2onnx: {one_line(error)}") from None
        try:
            if family.exact_thresholds and precision == FLOAT64:
                return _with_exact_thresholds(graph, tree_thresholds(model))
            return bytes(graph.SerializeToString())
        except ConversionFailed:
            raise
        except Exception as error:  # a graph past protobuf's 2 GiB, say
            raise ConversionFailed(f"skl2onnx: {one_line(error)}") from None
    raise ConversionFailed("skl2onnx gave no graph")  # not reached: the last attempt returns or raises


def _trees(model: Any) -> Iterator[Any]:
    from model_serving.sklearn_models import _trees as sklearn_trees  # noqa: PLC0415

    return sklearn_trees(model)


def _thresholds_rounded_down(model: Any) -> Any:
    """A copy of the model whose tree thresholds are the largest float32 at most each threshold.

    scikit-learn compares float32(x) <= t; for a float32 value f, f <= t exactly when
    f <= round_down_32(t), so the copy predicts as the original does, and its thresholds survive
    skl2onnx's float32 attributes unchanged.
    """
    copied = copy.deepcopy(model)
    for tree in _trees(copied):
        thresholds = tree.threshold  # a writable view of the tree's nodes
        nearest = thresholds.astype(np.float32)
        down = np.where(
            nearest.astype(np.float64) > thresholds, np.nextafter(nearest, np.float32(-np.inf)), nearest
        )
        thresholds[:] = down.astype(np.float64)
    return copied


def _convert_with_onnxmltools(model: Any, n_features: int, family: Family, precision: str) -> bytes:
    """XGBoost and LightGBM through onnxmltools. Its converters take a float input only; a float64
    LightGBM graph is the float one given a double input (its tree ensemble takes doubles) and the
    model's own float64 thresholds."""
    import onnx  # noqa: PLC0415
    import onnxmltools  # noqa: PLC0415
    from onnxmltools.convert.common.data_types import FloatTensorType  # noqa: PLC0415

    types = [("X", FloatTensorType([None, n_features]))]
    from registry.native import LightGBMText  # noqa: PLC0415

    source = model.booster_ if isinstance(model, LightGBMText) else model  # a text file's Booster
    try:
        if family.converter == XGBOOST:
            graph = onnxmltools.convert_xgboost(source, initial_types=types, target_opset=ONNXMLTOOLS_OPSET)
        else:
            graph = onnxmltools.convert_lightgbm(
                source, initial_types=types, target_opset=ONNXMLTOOLS_OPSET, zipmap=False
            )
    except Exception as error:
        raise ConversionFailed(f"{family.converter}: {one_line(error)}") from None
    if precision == FLOAT32:
        return bytes(graph.SerializeToString())
    graph.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    return _with_exact_thresholds(graph, tree_thresholds(model), scores_as_double=False)


_TREE_ENSEMBLES = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
_COLLIDING_THRESHOLDS = (
    "two of its float64 thresholds round to one float32, so the graph cannot hold them exactly"
)


def _with_exact_thresholds(graph: Any, thresholds: list[float], *, scores_as_double: bool = True) -> bytes:
    """The graph with each tree node's float32 threshold replaced by the estimator's own float64
    one (ai.onnx.ml 3's `nodes_values_as_tensor`), so a float64 input is compared as the
    estimator compares it. skl2onnx 1.20 writes thresholds as float32 attributes whatever the
    input type; each is matched back to the one float64 threshold that rounds to it, and the
    graph is not lifted (`ConversionFailed`) when two thresholds round to the same float32."""
    import onnx  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    exact: dict[float, float] = {}
    for value in thresholds:
        rounded = float(np.float32(value))
        if exact.setdefault(rounded, value) != value:
            raise ConversionFailed(_COLLIDING_THRESHOLDS)
    casts = []
    for index, node in enumerate(graph.graph.node):
        if node.domain != "ai.onnx.ml" or node.op_type not in _TREE_ENSEMBLES:
            continue
        if scores_as_double:
            # Its scores are float whatever the input (the operator's schema); a graph that
            # skl2onnx built for a double input reads them as double.
            scores = len(node.output) - 1
            name = node.output[scores]
            node.output[scores] = f"{name}_float"
            cast = onnx.helper.make_node("Cast", [f"{name}_float"], [name], to=onnx.TensorProto.DOUBLE)
            casts.append((index + 1, cast))
        attributes = {attribute.name: attribute for attribute in node.attribute}
        modes = [mode.decode() for mode in attributes["nodes_modes"].strings]
        values = list(attributes["nodes_values"].floats)
        lifted = []
        for mode, value in zip(modes, values, strict=True):
            if mode == "LEAF":
                lifted.append(0.0)
            elif mode.startswith("BRANCH_") and float(np.float32(value)) in exact:
                lifted.append(exact[float(np.float32(value))])
            else:
                raise ConversionFailed(f"a {node.op_type} node holds a threshold the estimator does not")
        node.attribute.remove(attributes["nodes_values"])
        tensor = numpy_helper.from_array(np.asarray(lifted, dtype=np.float64))
        node.attribute.append(onnx.helper.make_attribute("nodes_values_as_tensor", tensor))
    for index, cast in reversed(casts):  # right after its tree node: the graph stays in order
        graph.graph.node.insert(index, cast)
    for opset in graph.opset_import:  # the tensor attributes are ai.onnx.ml 3's
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, 3)
    return bytes(graph.SerializeToString())


def tree_thresholds(model: Any) -> list[float]:
    from registry.proof import tree_thresholds as per_feature  # noqa: PLC0415

    n_features = int(model.n_features_in_)
    return [value for values in per_feature(model, n_features) for value in values]


@contextlib.contextmanager
def _integer_missing_flags() -> Iterator[None]:
    """skl2onnx 1.20 passes HistGradientBoosting leaves' missing-value flag as a Python bool, which
    onnx refuses in an integer list ("Expected an int, got a boolean"); while converting, its tree
    helper gets the same flag as an int."""
    from skl2onnx.common import tree_ensemble  # noqa: PLC0415

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original
