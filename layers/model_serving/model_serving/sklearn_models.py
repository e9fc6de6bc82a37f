"""scikit-learn estimators from skops files: audited without being loaded, then loaded with exactly
the audited types, then checked for consistency before anything predicts with them.

Used by predict only where the template attaches the scikit-learn layer (scikit-learn, scipy,
skops), for estimators that cannot be converted to ONNX; and by the operator CLI at registration.
A skops file is a zip of numpy arrays and a JSON schema naming every type it holds: the audit
reads that schema (no object is built) and refuses any type outside the allowlist (`_is_allowed`),
naming it and the estimator that holds it. Two node kinds that call a constructor are admitted,
each only in the exact shape skops gives it, because gradient boosting models hold them:
numpy's `RandomState` restored from plain data (`_is_plain_random_state`) and scikit-learn's
Cython losses built from at most one number (`_is_plain_loss`).

scikit-learn's trees index their node arrays without bounds checks, so an audited file can still
hold a tree that reads past a row (a "4-feature" tree testing feature 12): `check_consistency`
refuses such a model before it predicts.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

# Node kinds of the skops schema that build data, never call a function named in the file.
_DATA_LOADERS = frozenset(
    {"DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode", "NdArrayNode", "ObjectNode", "TreeNode"}
)
_BUILTINS = frozenset(f"builtins.{name}" for name in ("dict", "list", "tuple", "str", "int", "float", "bool"))
# Internal objects fitted estimators hold (tree node storage, loss and link functions).
_SKLEARN_INTERNALS = frozenset({"sklearn.tree._tree.Tree"})
_SKLEARN_INTERNAL_MODULES = ("sklearn._loss.",)
_MODULE_NAME = re.compile(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+")
MAX_SCHEMA_BYTES = 16 * 1024 * 1024
# skops 0.16 loads a RandomStateNode (module skops.io._numpy) as `RandomState()` followed by
# `set_state(<its content>)`: no other call, when the class is numpy's RandomState and the content
# is what `RandomState.get_state(legacy=False)` gives: the MT19937 key array and three numbers.
# A fitted gradient boosting model holds one per tree (`random_state` given or not).
_RANDOM_STATE = "numpy.random.mtrand.RandomState"
_RANDOM_STATE_FIELDS = frozenset({"bit_generator", "state", "has_gauss", "gauss"})
_MT19937_FIELDS = frozenset({"key", "pos"})
# skops loads a LossNode (module skops.io._sklearn, a ReduceNode) as `<the class it names>(*args)`, then
# sets its attributes when there are any. A gradient boosting model holds one of scikit-learn's
# Cython losses, saved with at most one number (Huber's delta, the pinball quantile, the Tweedie
# power) and no attributes: admitted only so, for the losses skops itself allows.
_LOSSES = frozenset(
    f"sklearn._loss._loss.{name}"
    for name in (
        "CyAbsoluteError",
        "CyExponentialLoss",
        "CyHalfBinomialLoss",
        "CyHalfGammaLoss",
        "CyHalfMultinomialLoss",
        "CyHalfPoissonLoss",
        "CyHalfSquaredError",
        "CyHalfTweedieLoss",
        "CyHalfTweedieLossIdentity",
        "CyHuberLoss",
        "CyPinballLoss",
    )
)


class UnsafeModel(Exception):
    """The file holds something outside the allowlist, or a model inconsistent with itself.

    `estimator` names the estimator that holds what the audit refused, where it knows it."""

    def __init__(self, message: str, estimator: str | None = None) -> None:
        super().__init__(message)
        self.estimator = estimator


def sklearn_version() -> str:
    import sklearn  # noqa: PLC0415

    return str(sklearn.__version__)


def _schema(data: bytes) -> Any:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                raise UnsafeModel("the skops schema is too large")
            return json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise UnsafeModel("the file is not a skops file") from error


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    stack = [schema]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if "__module__" in value or "__loader__" in value:
                yield value
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _node_ids(nodes: list[dict[str, Any]]) -> Counter[Any]:
    """How often each `__id__` occurs. skops builds a repeated id as the node first seen with it
    (its load memo), so one node can stand in for another elsewhere in the file: nodes sharing an
    id must at least be of one kind (a repeated RandomState is saved anew each time, with fresh ids
    inside, so repetitions are not byte-equal)."""
    kinds: dict[Any, tuple[Any, str]] = {}
    counts: Counter[Any] = Counter()
    for node in nodes:
        if "__id__" in node:
            if type(node["__id__"]) is not int:
                raise UnsafeModel("the skops file has a node id that is not a number")
            counts[node["__id__"]] += 1
            if kinds.setdefault(node["__id__"], _kind(node)) != _kind(node):
                raise UnsafeModel("the skops file gives nodes of two kinds one id")
    return counts


def _kind(node: Any) -> tuple[Any, str]:
    if not isinstance(node, dict):
        return None, ""
    return node.get("__loader__"), f"{node.get('__module__')}.{node.get('__class__')}"


def _json_value(node: Any) -> Any:
    """What a JsonNode holds (JSON data), or None for any other node."""
    if _kind(node)[0] != "JsonNode" or not isinstance(node.get("content"), str):
        return None
    try:
        return json.loads(node["content"])
    except ValueError:
        return None


def _is_dict_of(node: Any, keys: frozenset[str]) -> bool:
    """A plain dict node holding exactly `keys`, each a plain string."""
    if _kind(node) != ("DictNode", "builtins.dict"):
        return False
    content, key_types = node.get("content"), node.get("key_types")
    types = key_types.get("content") if _kind(key_types) == ("ListNode", "builtins.list") else None
    return (
        isinstance(content, dict)
        and set(content) == keys
        and isinstance(types, list)
        and len(types) == len(keys)
        and all(_kind(t) == ("TypeNode", "builtins.str") for t in types)
    )


def _is_plain_loss(node: dict[str, Any]) -> bool:
    """A LossNode of one of `_LOSSES`, built from at most one number and no attributes."""
    loader, name = _kind(node)
    reduce = node.get("__reduce__")
    args: Any = reduce.get("args") if isinstance(reduce, dict) and set(reduce) == {"args"} else None
    values = args.get("content") if _kind(args) == ("TupleNode", "builtins.tuple") else None
    return (
        loader == "LossNode"
        and name in _LOSSES
        and isinstance(values, list)
        and len(values) <= 1
        and all(type(_json_value(value)) in (int, float) for value in values)
        and _is_dict_of(node.get("content"), frozenset())
    )


def _is_plain_random_state(node: dict[str, Any], ids: Counter[Any]) -> bool:
    """A RandomStateNode of numpy's RandomState whose content is exactly an MT19937 state:
    `{"bit_generator": "MT19937", "state": {"key": <array>, "pos": int}, "has_gauss": int,
    "gauss": float}`, the array loaded by numpy without pickle; its dicts and array are its own
    (no other node has their ids, so the load memo cannot put another dict in their place)."""
    content: Any = node.get("content")
    if _kind(node) != ("RandomStateNode", _RANDOM_STATE) or not _is_dict_of(content, _RANDOM_STATE_FIELDS):
        return False
    fields = content["content"]
    state = fields["state"]
    if not _is_dict_of(state, _MT19937_FIELDS):
        return False
    key = state["content"]["key"]
    if any(ids[part.get("__id__")] != 1 for part in (content, state, key)):
        return False
    return (
        _json_value(fields["bit_generator"]) == "MT19937"
        and type(_json_value(fields["has_gauss"])) is int
        and type(_json_value(fields["gauss"])) in (int, float)
        and type(_json_value(state["content"]["pos"])) is int
        and _kind(key) == ("NdArrayNode", "numpy.ndarray")
        and key.get("type") == "numpy"
    )


def _is_allowed(name: str) -> bool:
    module, _, attribute = name.rpartition(".")
    if name in _BUILTINS or name in ("numpy.ndarray", "numpy.dtype"):
        return True
    if module in ("numpy", "numpy.dtypes"):
        found = getattr(np if module == "numpy" else np.dtypes, attribute, None)
        return isinstance(found, type) and (module == "numpy.dtypes" or issubclass(found, np.generic))
    if not _MODULE_NAME.fullmatch(module) or "test" in module:
        return False
    if name in _SKLEARN_INTERNALS or name.startswith(_SKLEARN_INTERNAL_MODULES):
        return True
    from sklearn.base import BaseEstimator  # noqa: PLC0415

    try:  # a scikit-learn module is imported by name, never a name the file made up elsewhere
        found = getattr(importlib.import_module(module), attribute, None)
    except ImportError:
        return False
    return isinstance(found, type) and issubclass(found, BaseEstimator)


def audit_skops(data: bytes) -> list[str]:
    """Every type the skops file names, sorted; `UnsafeModel` naming the first one not allowed.

    Reads the schema only: nothing in the file is constructed or called.
    """
    schema = _schema(data)
    nodes = list(_nodes(schema))
    ids = _node_ids(nodes)
    # The estimator the file holds, for the messages (an operator registered it by that name).
    named = schema.get("__class__") if _kind(schema)[0] == "ObjectNode" else None
    estimator = named if isinstance(named, str) and named.isidentifier() else None
    of = f"'s {estimator}" if estimator else ""
    names: set[str] = set()
    admitted = set()  # the node kinds that call code, in the exact shape skops gives them
    for node in nodes:
        loader = node.get("__loader__")
        name = f"{node.get('__module__', '?')}.{node.get('__class__', '?')}"
        if (loader == "RandomStateNode" and _is_plain_random_state(node, ids)) or (
            loader == "LossNode" and _is_plain_loss(node)
        ):
            admitted.add(name)
            continue
        if loader is not None and loader not in _DATA_LOADERS:
            raise UnsafeModel(
                f"the skops file{of} holds a {loader} ({name}), which would call code", estimator
            )
        names.add(name)
    for name in sorted(names):
        if not _is_allowed(name):
            raise UnsafeModel(
                f"the skops file{of} holds type {name}, which is not a scikit-learn estimator part", estimator
            )
    return sorted(names | admitted)


def load_audited(data: bytes) -> Any:
    """The object in a skops file, loaded trusting exactly the types `audit_skops` allowed."""
    import skops.io  # noqa: PLC0415

    return skops.io.loads(data, trusted=audit_skops(data))


def load_skops(data: bytes) -> SklearnModel:
    """Audit, load with exactly the audited types, then check the model's consistency."""
    model = load_audited(data)
    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, int) or not hasattr(model, "predict"):
        raise UnsafeModel("the model is not a fitted estimator recording n_features_in_")
    check_consistency(model, n_features)
    return SklearnModel(model)


def _trees(model: Any) -> Iterator[Any]:
    tree = getattr(model, "tree_", None)
    if tree is not None:
        yield tree
    members = getattr(model, "estimators_", None)
    if members is not None:
        for member in np.ravel(np.asarray(members, dtype=object)):
            yield from _trees(member)
    for _, step in getattr(model, "steps", None) or ():
        yield from _trees(step)


def check_consistency(model: Any, n_features: int) -> None:
    """Refuse a model that would read past a row of `n_features` values.

    Trees: every split's feature index is below `n_features`, and every child index is a node of
    the same tree. Linear models: the coefficient matrix has `n_features` columns.
    """
    for tree in _trees(model):
        node_count = int(tree.node_count)
        features = np.asarray(tree.feature)
        left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
        splits = left != -1
        if int(tree.n_features) != n_features or (features[splits] >= n_features).any():
            raise UnsafeModel(
                f"a tree reads feature {int(features[splits].max(initial=0))} but the model declares "
                f"{n_features} features"
            )
        if (features[splits] < 0).any() or ((left >= node_count) | (right >= node_count)).any():
            raise UnsafeModel("a tree's node indices are out of range")
        if ((left == -1) != (right == -1)).any() or (left[splits] <= 0).any() or (right[splits] <= 0).any():
            raise UnsafeModel("a tree's node indices are out of range")
    coef = getattr(model, "coef_", None)
    if coef is not None and np.ndim(coef) >= 1 and np.shape(coef)[-1] != n_features:
        raise UnsafeModel(f"the coefficients have {np.shape(coef)[-1]} columns, not {n_features}")


class SklearnModel:
    """A fitted scikit-learn classifier loaded from an audited skops file.

    Rows are range-checked for `input_precision` (model_serving/answers.py) before they get here.
    An estimator can still fail inside on such rows (a scaler fitted on a near-constant feature
    overflows, and the next step raises `ValueError` on the infinity): that is the tenant's model
    giving no finite answer (`NoFiniteAnswer`, 422), never a 500.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        # scikit-learn's trees cast rows to float32 and raise past its range; others take float64.
        self._precision = np.dtype(np.float32 if next(_trees(model), None) is not None else np.float64)

    @property
    def estimator(self) -> Any:
        return self._model

    @property
    def n_features(self) -> int:
        return int(self._model.n_features_in_)

    @property
    def has_probabilities(self) -> bool:
        return hasattr(self._model, "predict_proba")

    @property
    def input_precision(self) -> np.dtype[Any]:
        return self._precision

    def predict(self, rows: npt.NDArray[np.float64]) -> list[Any]:
        try:
            return list(self._model.predict(rows).tolist())
        except ValueError:
            _no_finite_answer()

    def predict_proba(self, rows: npt.NDArray[np.float64]) -> list[list[float]]:
        from model_runtime.errors import BadRequest  # noqa: PLC0415

        if not self.has_probabilities:
            raise BadRequest("This model does not give probabilities.")
        try:
            probabilities = self._model.predict_proba(rows)
        except ValueError:
            _no_finite_answer()
        return [[float(p) for p in row] for row in probabilities.tolist()]


def _no_finite_answer() -> NoReturn:
    from model_runtime.errors import NoFiniteAnswer  # noqa: PLC0415

    raise NoFiniteAnswer() from None
