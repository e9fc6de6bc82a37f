"""Model registration: what may be registered, in which format it is served, and the proof.

Formats accepted (by file name):
- `.onnx`: checked as a graph (`check_onnx`) and served as it is.
- `.skops`: audited without being loaded (`model_serving.sklearn_models.audit_skops`), loaded
  with exactly the audited types, checked for consistency, converted to ONNX.
- `.pkl`, `.pickle`, `.joblib`: only with `trust_pickle=True` (the operator vouches that they
  trained it: loading a pickle runs whatever code it holds, here, on the operator's machine).
  Then as a skops file. A pickle is never stored or served.

A converted model is compared with the original on a probe set (the operator's sample rows, else
rows generated from the model's own parameters): identical labels, probabilities within 1e-5.
An estimator skl2onnx cannot convert is stored as an audited skops file instead, served only
where the template attaches the scikit-learn layer.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from model_runtime.table import ModelRecord
from model_serving.models import ONNX, SKOPS, OnnxModel, onnx_outputs, onnx_session
from model_serving.sklearn_models import UnsafeModel, check_consistency, load_audited, load_skops

MAX_MODEL_BYTES = 64 * 1024 * 1024
PROBABILITY_TOLERANCE = 1e-5
GENERATED_PROBE_ROWS = 512
PICKLE = "pickle"
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib"})
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
_ONNX_FLOAT, _ONNX_INT64, _ONNX_STRING = 1, 7, 8


class RegistrationError(Exception):
    """The model is refused; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class Probe:
    """The result of comparing the served model with the original (or, for an ONNX upload,
    running it): `disagreements` of `rows` rows from `source`."""

    rows: int
    disagreements: int
    source: str  # "sample", "generated"

    def describe(self) -> str:
        return f"{self.rows - self.disagreements}/{self.rows} {self.source} rows agree"


@dataclass(frozen=True, slots=True)
class Registration:
    """What is stored and pinned: the served bytes and the facts the mapping records."""

    data: bytes
    model_format: str  # how it is served: "onnx" or "skops"
    source_format: str  # what the operator gave: "onnx", "skops" or "pickle"
    n_features: int
    classes: list[Any]
    sklearn_version: str  # the runtime a skops model needs; "" for ONNX
    has_probabilities: bool
    probe: Probe

    def record(self, sha256: str, registered_at: int) -> ModelRecord:
        """The registration record stored beside the model (`list-versions`, `rollback`)."""
        return ModelRecord(
            sha256=sha256,
            model_format=self.model_format,
            source_format=self.source_format,
            n_features=self.n_features,
            classes=tuple(self.classes),
            sklearn_version=self.sklearn_version,
            has_probabilities=self.has_probabilities,
            registered_at=registered_at,
            probe_rows=self.probe.rows,
            probe_disagreements=self.probe.disagreements,
            probe_source=self.probe.source,
        )


def source_format(filename: str, data: bytes) -> str:
    """The format a file claims by its name; a pickle's first byte counts whatever the name."""
    suffix = Path(filename).suffix.lower()
    if suffix in PICKLE_SUFFIXES or data[:1] == b"\x80":  # PROTO opcode: pickle protocol 2 and later
        return PICKLE
    if suffix == ".onnx":
        return ONNX
    if suffix == ".skops":
        return SKOPS
    raise RegistrationError(f"unknown model format {suffix or '(no extension)'}: use .onnx or .skops")


def register(
    filename: str, data: bytes, *, trust_pickle: bool = False, sample: npt.NDArray[np.float64] | None = None
) -> Registration:
    """Check a model file and turn it into what is served; `RegistrationError` if refused."""
    kind = source_format(filename, data)
    if kind == PICKLE and not trust_pickle:
        raise RegistrationError(
            "refusing a pickle: loading one runs any code it holds. Register an .onnx or .skops "
            "file, or pass --trust-pickle for a model you trained yourself"
        )
    if len(data) > MAX_MODEL_BYTES:
        raise RegistrationError(f"the model file is larger than {MAX_MODEL_BYTES} bytes")
    if kind == ONNX:
        return _register_onnx(data, sample)
    estimator = _load_pickle(data) if kind == PICKLE else _load_skops(data)
    return _register_estimator(estimator, kind, sample)


# --- scikit-learn estimators ------------------------------------------------------------------


def _load_pickle(data: bytes) -> Any:
    import joblib  # noqa: PLC0415
    from sklearn.exceptions import InconsistentVersionWarning  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(io.BytesIO(data))
        except InconsistentVersionWarning as mismatch:
            wanted = mismatch.current_sklearn_version
            raise RegistrationError(
                f"the model was saved with scikit-learn {mismatch.original_sklearn_version}, not {wanted}: "
                f"re-train or re-export it with {wanted}"
            ) from None
        except Exception as error:
            raise RegistrationError("the file is not a joblib/pickle model") from error


def _load_skops(data: bytes) -> Any:
    try:
        return load_audited(data)
    except UnsafeModel as error:
        raise RegistrationError(str(error)) from None
    except Exception as error:
        raise RegistrationError(f"the skops file cannot be loaded: {type(error).__name__}") from error


def _estimator_facts(model: Any) -> tuple[int, list[Any]]:
    from sklearn.base import BaseEstimator, is_classifier  # noqa: PLC0415
    from sklearn.exceptions import NotFittedError  # noqa: PLC0415
    from sklearn.utils.validation import check_is_fitted  # noqa: PLC0415

    if not isinstance(model, BaseEstimator) or not is_classifier(model):
        raise RegistrationError(f"the model is a {type(model).__name__}, not a scikit-learn classifier")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise RegistrationError("the model is not fitted") from None
    n_features = getattr(model, "n_features_in_", None)
    classes = getattr(model, "classes_", None)
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1 or classes is None:
        raise RegistrationError("the model does not record n_features_in_ and classes_")
    labels = [c.item() if hasattr(c, "item") else c for c in classes]
    if not all(type(label) in (int, str) for label in labels):
        raise RegistrationError("the model's class labels are not integers or strings")
    try:
        check_consistency(model, n_features)
    except UnsafeModel as error:
        raise RegistrationError(f"the model is inconsistent: {error}") from None
    return n_features, labels


def _register_estimator(model: Any, kind: str, sample: npt.NDArray[np.float64] | None) -> Registration:
    import sklearn  # noqa: PLC0415

    n_features, classes = _estimator_facts(model)
    rows, source = _probe_rows(model, n_features, sample)
    onnx_bytes = _convert(model, n_features)
    if onnx_bytes is not None:
        check_onnx(onnx_bytes)
        served: Any = OnnxModel(onnx_bytes)
        data, served_format, version = onnx_bytes, ONNX, ""
    else:  # served by the scikit-learn layer, from an audited skops file
        import skops.io  # noqa: PLC0415

        data, served_format, version = skops.io.dumps(model), SKOPS, sklearn.__version__
        try:
            served = load_skops(data)
        except UnsafeModel as error:
            raise RegistrationError(f"the model cannot be converted to ONNX, and as skops: {error}") from None
    disagreements = _disagreements(model, served, rows)
    if disagreements:
        raise RegistrationError(
            f"the {served_format} model disagrees with the original on {disagreements} of {len(rows)} "
            f"{source} probe rows"
        )
    return Registration(
        data=data,
        model_format=served_format,
        source_format=kind,
        n_features=n_features,
        classes=classes,
        sklearn_version=version,
        has_probabilities=served.has_probabilities,
        probe=Probe(len(rows), 0, source),
    )


def _convert(model: Any, n_features: int) -> bytes | None:
    """The estimator as an ONNX graph (float input [N, n_features], no ZipMap), or None when
    skl2onnx has no converter for it."""
    from skl2onnx import to_onnx  # noqa: PLC0415
    from skl2onnx.common.data_types import FloatTensorType  # noqa: PLC0415

    try:
        graph = to_onnx(
            model,
            initial_types=[("X", FloatTensorType([None, n_features]))],
            options={id(model): {"zipmap": False}},
        )
    except (RuntimeError, NotImplementedError, ValueError, TypeError):
        return None
    return bytes(graph.SerializeToString())


def _disagreements(original: Any, served: Any, rows: npt.NDArray[np.float64]) -> int:
    """Rows whose label differs, or whose probabilities differ by more than the tolerance."""
    expected = original.predict(rows)
    got = np.asarray(served.predict(rows))
    bad = expected.astype(object) != got.astype(object)
    if hasattr(original, "predict_proba") and served.has_probabilities:
        gap = np.abs(original.predict_proba(rows) - np.asarray(served.predict_proba(rows)))
        bad |= (gap > PROBABILITY_TOLERANCE).any(axis=1)
    return int(bad.sum())


def _probe_rows(
    model: Any, n_features: int, sample: npt.NDArray[np.float64] | None
) -> tuple[npt.NDArray[np.float64], str]:
    if sample is not None:
        if sample.ndim != 2 or sample.shape[1] != n_features or len(sample) == 0:
            raise RegistrationError(f"the sample must be rows of {n_features} numbers")
        return sample, "sample"
    return generated_rows(model, n_features), "generated"


def generated_rows(model: Any, n_features: int, count: int = GENERATED_PROBE_ROWS) -> npt.NDArray[np.float64]:
    """Rows spread over where the model's own parameters say it changes its mind: around each
    tree's split thresholds, and for other models around the origin at the scale of the
    coefficients. Thresholds themselves are included, where float rounding would show."""
    from model_serving.sklearn_models import _trees  # noqa: PLC0415

    rng = np.random.default_rng(0)
    low, high = np.full(n_features, -1.0), np.full(n_features, 1.0)
    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    for tree in _trees(model):
        splits = np.asarray(tree.children_left) != -1
        for feature, value in zip(
            np.asarray(tree.feature)[splits], np.asarray(tree.threshold)[splits], strict=True
        ):
            thresholds[int(feature)].append(float(value))
    for j, values in enumerate(thresholds):
        if values:
            span = max(values) - min(values)
            low[j], high[j] = min(values) - 0.25 * span - 1, max(values) + 0.25 * span + 1
    coef = getattr(model, "coef_", None)
    if coef is not None and not any(thresholds):
        intercept = np.abs(np.ravel(getattr(model, "intercept_", 0.0))).max(initial=0.0)
        weights = np.abs(np.atleast_2d(coef)).max(axis=0)
        scale = (1.0 + intercept) / np.maximum(weights, 1e-6) / np.sqrt(n_features)
        low, high = -3 * scale, 3 * scale
    rows = rng.uniform(low, high, size=(count, n_features))
    # Rows that sit on a threshold for one feature, in turn.
    edges = [(j, t) for j, values in enumerate(thresholds) for t in values]
    if edges:
        picked = rng.choice(len(edges), size=min(count, len(edges)), replace=False)
        on_edge = rows[: len(picked)].copy()
        for row, k in zip(on_edge, picked, strict=True):
            row[edges[k][0]] = edges[k][1]
        rows = np.vstack([rows, on_edge])
    return np.asarray(rows, dtype=np.float64)


# --- ONNX graphs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnnxFacts:
    n_features: int
    classes: list[Any]
    has_probabilities: bool


def _graphs(graph: Any) -> Any:
    """The graph and every subgraph held in node attributes (If, Loop, Scan bodies)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def _tensors(graph: Any) -> Any:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors


def check_onnx(data: bytes, n_features: int | None = None) -> OnnxFacts:
    """Refuse a graph predict should not run: anything but one float input [N, n_features], ops
    outside `ai.onnx`/`ai.onnx.ml`, external data, a size past the cap, or outputs that do not
    give a label (and, where present, one probability per class)."""
    import onnx  # noqa: PLC0415

    if len(data) > MAX_MODEL_BYTES:
        raise RegistrationError(f"the ONNX model is larger than {MAX_MODEL_BYTES} bytes")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:
        raise RegistrationError(f"the file is not a valid ONNX model: {type(error).__name__}") from None
    if model.functions:
        raise RegistrationError(
            "the ONNX model defines its own functions; only ai.onnx and ai.onnx.ml ops are served"
        )
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise RegistrationError(f"the ONNX model imports the custom domain {opset.domain!r}")
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in ALLOWED_DOMAINS:
                raise RegistrationError(
                    f"the ONNX node {node.op_type} is in the custom domain {node.domain!r}"
                )
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
                raise RegistrationError("the ONNX model refers to external data")
    try:  # after the scans above: the checker itself would look for external files
        onnx.checker.check_model(model)
    except Exception as error:
        raise RegistrationError(f"the file is not a valid ONNX model: {type(error).__name__}") from None
    width = _input_width(model.graph)
    if n_features is not None and width != n_features:
        raise RegistrationError(f"the ONNX input takes {width} features, the model {n_features}")
    classes = _class_labels(model.graph)
    has_probabilities = _check_outputs(model.graph, len(classes))
    _smoke_run(data, width, classes)
    return OnnxFacts(width, classes, has_probabilities)


def _input_width(graph: Any) -> int:
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise RegistrationError(f"the ONNX model has {len(inputs)} inputs; one is served")
    tensor = inputs[0].type.tensor_type if inputs[0].type.HasField("tensor_type") else None
    if tensor is None or tensor.elem_type != _ONNX_FLOAT:
        raise RegistrationError("the ONNX input must be a float tensor")
    dims = tensor.shape.dim if tensor.HasField("shape") else []
    if (
        len(dims) != 2
        or dims[0].HasField("dim_value")
        or not dims[1].HasField("dim_value")
        or dims[1].dim_value < 1
    ):
        raise RegistrationError("the ONNX input must have the shape [N, n_features]")
    return int(dims[1].dim_value)


def _class_labels(graph: Any) -> list[Any]:
    import onnx  # noqa: PLC0415

    for node in graph.node:
        if node.domain != "ai.onnx.ml" or not node.op_type.endswith("Classifier"):
            continue
        for attribute in node.attribute:
            if attribute.name in ("classlabels_ints", "classlabels_int64s") and attribute.ints:
                return [int(v) for v in attribute.ints]
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [
                    onnx.helper.get_attribute_value(attribute)[i].decode()
                    for i in range(len(attribute.strings))
                ]
    raise RegistrationError("the ONNX model has no ai.onnx.ml classifier node naming its classes")


def _check_outputs(graph: Any, n_classes: int) -> bool:
    labels, probabilities = [], []
    for value in graph.output:
        if not value.type.HasField("tensor_type"):
            raise RegistrationError(
                f"the ONNX output {value.name!r} is not a tensor (convert with zipmap disabled)"
            )
        tensor = value.type.tensor_type
        rank = len(tensor.shape.dim)
        if tensor.elem_type in (_ONNX_INT64, _ONNX_STRING) and rank in (1, 2):
            labels.append(value)
        elif tensor.elem_type == _ONNX_FLOAT and rank == 2:
            probabilities.append(value)
    if not labels:
        raise RegistrationError("the ONNX model has no label output (int64 or string)")
    if probabilities:
        columns = probabilities[0].type.tensor_type.shape.dim[1]
        if columns.HasField("dim_value") and columns.dim_value != n_classes:
            raise RegistrationError(
                f"the ONNX probabilities have {columns.dim_value} columns for {n_classes} classes"
            )
    return bool(probabilities)


def _smoke_run(data: bytes, width: int, classes: list[Any]) -> None:
    """ONNX Runtime loads the graph and answers rows with known labels and one column per class."""
    try:
        session = onnx_session(data)
        label, probabilities = onnx_outputs(session)
        rows = np.random.default_rng(0).normal(size=(8, width)).astype(np.float32)
        name = session.get_inputs()[0].name
        got = session.run([label], {name: rows})[0]
        if probabilities is not None:
            proba = session.run([probabilities], {name: rows})[0]
            if proba.shape != (len(rows), len(classes)):
                raise RegistrationError("the ONNX probabilities do not have one column per class")
    except RegistrationError:
        raise
    except Exception as error:
        raise RegistrationError(f"ONNX Runtime cannot run the model: {type(error).__name__}") from None
    if not set(np.ravel(got).tolist()) <= set(classes):
        raise RegistrationError("the ONNX model answers labels outside its classes")


def _register_onnx(data: bytes, sample: npt.NDArray[np.float64] | None) -> Registration:
    facts = check_onnx(data)
    rows, source = _probe_rows(None, facts.n_features, sample)
    served = OnnxModel(data)
    labels = served.predict(rows)
    outside = sum(label not in facts.classes for label in labels)
    if outside:
        raise RegistrationError(
            f"the ONNX model answers labels outside its classes on {outside} of {len(rows)} rows"
        )
    return Registration(
        data=data,
        model_format=ONNX,
        source_format=ONNX,
        n_features=facts.n_features,
        classes=facts.classes,
        sklearn_version="",
        has_probabilities=facts.has_probabilities,
        probe=Probe(len(rows), outside, source),
    )


def read_sample(path: str) -> npt.NDArray[np.float64]:
    """Probe rows from a file: a JSON list of rows (or `{"instances": [...]}`), or CSV numbers."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RegistrationError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        if text.lstrip().startswith(("[", "{")):
            document = json.loads(text)
            rows = document["instances"] if isinstance(document, dict) else document
            sample = np.asarray(rows, dtype=np.float64)
        else:
            sample = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, KeyError, TypeError):
        raise RegistrationError(f"{path} is not a list of rows of numbers (JSON or CSV)") from None
    if sample.ndim != 2 or not np.isfinite(sample).all():
        raise RegistrationError(f"{path} is not a list of rows of finite numbers")
    return sample
