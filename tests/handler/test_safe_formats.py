"""Safe formats first: gradient boosting models register from `skops.io.dump` files, and the skops
audit admits what they hold that calls code (a RandomState, a Cython loss) only in the exact shape
skops gives it; anything else is still refused in one line that names the estimator and the way
that works for it; a converter's failure is reported in its own words.

What it guards: `model_serving.sklearn_models.audit_skops` (`_is_plain_random_state`,
`_is_plain_loss`, `_node_ids`) and the refusals of `registry.registration`.
"""

from __future__ import annotations

import copy
import io
import json
import pathlib
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io
from model_serving.sklearn_models import UnsafeModel, audit_skops
from sklearn.base import BaseEstimator, ClassifierMixin, is_regressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
)
from sklearn.neighbors import KNeighborsClassifier

from functions.predict.app import lambda_handler
from registry.proof import generated_rows
from registry.registration import RegistrationError, register
from tests.support import FakeLambdaContext, Stack, current_runtime, load_event, token_for

IRIS = load_iris(return_X_y=True)
DIABETES = load_diabetes(return_X_y=True)


def skops_file(tmp_path: pathlib.Path, data: bytes, name: str = "model.skops") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def schema_of(data: bytes) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("schema.json"))


def with_schema(data: bytes, schema: Any) -> bytes:
    """The skops file with its schema.json replaced (the arrays beside it unchanged)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, json.dumps(schema) if name == "schema.json" else source.read(name))
    return out.getvalue()


def nodes(value: Any, loader: str | None = None) -> Iterator[dict[str, Any]]:
    """Every node of a schema (or those of one loader), outermost first."""
    if isinstance(value, dict):
        if "__loader__" in value and loader in (None, value["__loader__"]):
            yield value
        for child in value.values():
            yield from nodes(child, loader)
    elif isinstance(value, list):
        for child in value:
            yield from nodes(child, loader)


def predict(token: str, rows: np.ndarray[Any, Any]) -> list[Any]:
    predictions: list[Any] = []
    for start in range(0, len(rows), 1000):
        body = json.dumps({"instances": rows[start : start + 1000].tolist()})
        response = lambda_handler(
            {**load_event("predict_alice", alice_token=token), "body": body}, FakeLambdaContext()
        )
        assert response["statusCode"] == 200, response["body"]
        predictions += json.loads(response["body"])["predictions"]
    return predictions


def small_gradient_boosting() -> bytes:
    X, y = IRIS
    return bytes(skops.io.dumps(GradientBoostingClassifier(n_estimators=2, random_state=0).fit(X, y)))


# --- gradient boosting from skops.io.dump ----------------------------------------------------------

GRADIENT_BOOSTING: dict[str, tuple[Callable[[], Any], tuple[Any, Any]]] = {
    "GradientBoostingClassifier": (lambda: GradientBoostingClassifier(n_estimators=10), IRIS),
    "GradientBoostingClassifier(random_state=0)": (
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
        IRIS,
    ),
    "GradientBoostingRegressor(random_state=0)": (
        lambda: GradientBoostingRegressor(n_estimators=10, random_state=0),
        DIABETES,
    ),
    "GradientBoostingRegressor(loss='huber')": (
        lambda: GradientBoostingRegressor(n_estimators=10, loss="huber", random_state=0),
        DIABETES,
    ),
}


@pytest.mark.parametrize("case", list(GRADIENT_BOOSTING))
def test_gradient_boosting_saved_with_skops_registers_and_serves_the_originals_answers(
    stack: Stack, inferctl: Any, tmp_path: pathlib.Path, case: str
) -> None:
    # Given a gradient boosting model saved with skops.io.dump (it holds RandomStates and a loss)
    make, (X, y) = GRADIENT_BOOSTING[case]
    model = make().fit(X, y)
    path = tmp_path / "gb.skops"
    skops.io.dump(model, path)
    # When the operator registers the file, without --trust-pickle
    created = inferctl("create-tenant", "boosted", "--model", str(path))
    assert created.code == 0, created.err
    assert (
        inferctl(
            "create-user", "booster", "--tenant", "boosted", "--password-stdin", stdin="boost-pw-1\n"
        ).code
        == 0
    )
    # Then predict answers the data set and the registry's probe rows as the original does
    # (#17's equality: identical labels, regression values within 1e-5 relative)
    rows = np.vstack([X, generated_rows(model, X.shape[1])])
    served = predict(token_for("booster", "boosted"), rows)
    expected = model.predict(rows)
    if is_regressor(model):
        scale = np.maximum(np.abs(expected), np.abs(expected).mean())
        assert (np.abs(np.asarray(served) - expected) <= 1e-5 * scale).all()
    else:
        assert served == expected.tolist()


# --- a RandomState or a loss in any other shape is still refused -----------------------------------


def swapped_random_states(data: bytes, module: str, name: str) -> bytes:
    schema = schema_of(data)
    for node in nodes(schema, "RandomStateNode"):
        node["__module__"], node["__class__"] = module, name
    return with_schema(data, schema)


MARKER: list[pathlib.Path] = []


class TouchOnConstruct:
    """What a RandomStateNode naming this class would build: constructing it runs code."""

    def __init__(self) -> None:
        MARKER[0].touch()

    def set_state(self, state: Any) -> None:
        self.state = state


@pytest.fixture
def marker(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    MARKER[:] = [tmp_path / "ran"]
    yield MARKER[0]
    MARKER.clear()


def test_a_random_state_node_naming_another_class_runs_it_when_loaded_naively(marker: pathlib.Path) -> None:
    # Given a gradient boosting file whose RandomState nodes name a class that runs code
    data = swapped_random_states(small_gradient_boosting(), __name__, "TouchOnConstruct")
    # When skops loads it trusting what it names / Then the code runs: the exploit is real
    skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    assert marker.exists()


@pytest.mark.parametrize(
    ("module", "name"), [(__name__, "TouchOnConstruct"), ("builtins", "eval"), ("os", "system")]
)
def test_a_skops_file_whose_random_state_is_swapped_for_code_is_refused_in_one_line(
    stack: Stack, inferctl: Any, marker: pathlib.Path, module: str, name: str
) -> None:
    # Given the gradient boosting file with its RandomState nodes naming a callable
    data = swapped_random_states(small_gradient_boosting(), module, name)
    # When the operator registers it
    run = inferctl("create-tenant", "swapped", "--model", skops_file(marker.parent, data))
    # Then one line refuses it, naming what it holds and the estimator, and nothing ran or was written
    assert (run.code, run.out, run.err.count("\n")) == (1, "", 1), run.err
    assert f"holds a RandomStateNode ({module}.{name}), which would call code" in run.err
    assert "GradientBoostingClassifier" in run.err and "--trust-pickle" in run.err
    assert not marker.exists()
    assert current_runtime().table.get_tenant("swapped") is None


def first(schema: Any, loader: str) -> dict[str, Any]:
    return next(nodes(schema, loader))


def renumbered(node: dict[str, Any]) -> dict[str, Any]:
    """A copy of a node whose nodes get ids of their own (a copy alone would share the original's)."""
    copied = copy.deepcopy(node)
    for number, each in enumerate(nodes(copied)):
        if "__id__" in each:
            each["__id__"] = 10**15 + number
    return copied


def _named(schema: Any, loader: str, module: str, name: str) -> None:
    for node in nodes(schema, loader):  # all of them: repeated nodes share an id, and so a kind
        node["__module__"], node["__class__"] = module, name


def _extra_state_entry(schema: Any) -> None:
    """The state dict gains a key holding an estimator (an allowed type, but not an MT19937 state)."""
    content = first(schema, "RandomStateNode")["content"]
    content["content"]["extra"] = renumbered(first(schema, "ObjectNode"))
    content["key_types"]["content"].append(copy.deepcopy(content["key_types"]["content"][0]))


def _key_as_object(schema: Any) -> None:
    """The key array replaced by an estimator node (with an array's `type` field besides)."""
    state = first(schema, "RandomStateNode")["content"]["content"]["state"]
    state["content"]["key"] = renumbered(first(schema, "ObjectNode")["content"]["content"]["init_"])
    state["content"]["key"]["type"] = "numpy"


def _key_as_json(schema: Any) -> None:
    """The key array saved as JSON content (an object array) rather than read by numpy."""
    first(schema, "RandomStateNode")["content"]["content"]["state"]["content"]["key"]["type"] = "json"


def _other_bit_generator(schema: Any) -> None:
    first(schema, "RandomStateNode")["content"]["content"]["bit_generator"]["content"] = '"PCG64"'


def _state_shares_an_id(schema: Any) -> None:
    """The state dict takes the id of the estimator's own attribute dict: skops' load memo would
    build that dict in its place."""
    state = first(schema, "RandomStateNode")["content"]["content"]["state"]
    state["__id__"] = first(schema, "ObjectNode")["content"]["__id__"]


def _id_of_two_kinds(schema: Any) -> None:
    """A tuple node takes the id of a dict node (a different kind)."""
    first(schema, "TupleNode")["__id__"] = first(schema, "DictNode")["__id__"]


def _loss_with_two_arguments(schema: Any) -> None:
    args = first(schema, "LossNode")["__reduce__"]["args"]["content"]
    args[:] = [{"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": "1.0"}] * 2


def _loss_with_attributes(schema: Any) -> None:
    """Attributes on a loss are set with `__setstate__`: the estimator's attribute dict, say."""
    first(schema, "LossNode")["content"] = renumbered(first(schema, "ObjectNode")["content"])


MUTATIONS: dict[str, Callable[[Any], None]] = {
    "RandomState naming numpy.float64": lambda s: _named(s, "RandomStateNode", "numpy", "float64"),
    "RandomState naming an estimator": lambda s: _named(
        s, "RandomStateNode", "sklearn.linear_model", "LogisticRegression"
    ),
    "RandomState state with an extra entry": _extra_state_entry,
    "RandomState key that is an estimator": _key_as_object,
    "RandomState key that is not a numpy array file": _key_as_json,
    "RandomState of another bit generator": _other_bit_generator,
    "RandomState state sharing another dict's id": _state_shares_an_id,
    "one id for nodes of two kinds": _id_of_two_kinds,
    "loss naming an estimator": lambda s: _named(s, "LossNode", "sklearn.linear_model", "LogisticRegression"),
    "loss built from two numbers": _loss_with_two_arguments,
    "loss with attributes": _loss_with_attributes,
}


def test_the_genuine_gradient_boosting_file_passes_the_audit() -> None:
    # The control for the mutations below: unmutated, the same file is admitted
    assert "numpy.random.mtrand.RandomState" in audit_skops(small_gradient_boosting())


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_the_audit_admits_a_random_state_or_a_loss_only_in_the_shape_skops_gives_it(mutation: str) -> None:
    # Given the gradient boosting file with one node changed, every type in it otherwise allowed
    schema = schema_of(small_gradient_boosting())
    MUTATIONS[mutation](schema)
    # When it is audited / Then it is refused
    with pytest.raises(UnsafeModel):
        audit_skops(with_schema(small_gradient_boosting(), schema))


# --- refusals with a way forward -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "refused"),
    [
        (
            lambda: HistGradientBoostingClassifier(max_iter=3),
            "RandomGeneratorNode (numpy.random._generator.Generator)",
        ),
        (
            lambda: KNeighborsClassifier(algorithm="kd_tree"),
            "type sklearn.metrics._dist_metrics.EuclideanDistance64",
        ),
    ],
    ids=["HistGradientBoosting's Generator", "k-NN's distance metric"],
)
def test_a_skops_file_still_refused_names_the_estimator_and_the_way_that_works(
    make: Callable[[], Any], refused: str
) -> None:
    # Given an estimator whose skops file holds a type the audit refuses
    X, y = load_breast_cancer(return_X_y=True)
    model = make().fit(X, y)
    # When it is registered as skops / Then the refusal names what it holds, the estimator, and
    # the ways that register it (both convert it to ONNX)
    with pytest.raises(RegistrationError) as error:
        register("model.skops", bytes(skops.io.dumps(model)))
    message = str(error.value)
    name = type(model).__name__
    assert (
        f"the skops file's {name} holds a {refused}" in message
        or f"the skops file's {name} holds {refused}" in message
    )
    assert f"convert the {name} to ONNX" in message and "--trust-pickle" in message
    # And the way it names works: its pickle registers (converted to ONNX)
    assert register("model.pkl", joblib_bytes(model), trust_pickle=True).model_format == "onnx"


def joblib_bytes(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


class Majority(ClassifierMixin, BaseEstimator):
    """A classifier of the operator's own: skl2onnx has no converter for it, skops no trust."""

    def fit(self, rows: Any, y: Any) -> Majority:
        self.classes_, counts = np.unique(y, return_counts=True)
        self.n_features_in_ = rows.shape[1]
        self.majority_ = self.classes_[counts.argmax()]
        return self

    def predict(self, rows: Any) -> Any:
        return np.full(len(rows), self.majority_)


def test_a_converter_failure_reports_the_converters_own_reason_beside_the_skops_reason() -> None:
    # Given a trusted pickle of an estimator skl2onnx cannot convert and skops does not admit
    X, y = IRIS
    data = joblib_bytes(Majority().fit(X, y))
    # When it is registered
    with pytest.raises(RegistrationError) as error:
        register("majority.pkl", data, trust_pickle=True)
    # Then one line gives skl2onnx's own reason (its first line) and the skops audit's
    message = str(error.value)
    assert "\n" not in message
    assert (
        "ONNX float32: skl2onnx: MissingShapeCalculator: Unable to find a shape calculator for type"
        in message
    )
    assert f"as skops: the skops file's Majority holds type {__name__}.Majority" in message
