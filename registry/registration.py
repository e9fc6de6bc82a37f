"""Model registration: what may be registered, in which format it is served, and the proof.

Formats accepted (by file name):
- `.onnx`: checked as a graph (`check_onnx`) and served as it is.
- `.skops`: audited without being loaded (`model_serving.sklearn_models.audit_skops`), loaded
  with exactly the audited types, checked for consistency, converted to ONNX.
- XGBoost `.json`/`.ubj` and LightGBM `.txt`: read by their own libraries (`registry.native`:
  formats that hold no code), then converted as an estimator is.
- `.pkl`, `.pickle`, `.joblib`: only with `trust_pickle=True` (the operator vouches that they
  trained it: loading a pickle runs whatever code it holds, here, on the operator's machine).
  Then as a skops file. A pickle is never stored or served.

A converted model is compared with the original on a probe set (`registry.proof`: the operator's
sample rows, else rows generated from the model's own parameters, on and beside every tree
threshold): identical labels, probabilities within 1e-5, regression values within 1e-5 relative.
How each family is converted is `registry.families`. An estimator skl2onnx cannot convert is
stored as an audited skops file instead, served only where the template attaches the
scikit-learn layer.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from model_runtime.table import CLASSIFICATION, REGRESSION, ModelRecord
from model_serving.answers import FLOAT32, out_of_range
from model_serving.models import ONNX, SKOPS, OnnxModel, onnx_outputs, onnx_session
from model_serving.sklearn_models import UnsafeModel, check_consistency, load_audited, load_skops

from registry import families
from registry.onnx_graph import GraphRefused, check_graph
from registry.proof import Disagreement, disagreeing_rows, generated_rows, missing_value_rows
from registry.run_probe import TooSlow, refuse_slow_graph

MAX_MODEL_BYTES = 64 * 1024 * 1024
# A feature name is a key of the request's JSON rows: none of the bytes the payload's byte counts
# treat as structure (payload._refuse_by_byte_counts), no escapes, printable, bounded.
_FEATURE_NAME_FORBIDDEN = frozenset(',[]{}"\\:')
MAX_FEATURE_NAME_CHARS = 128
PICKLE = "pickle"
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib"})
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
_ONNX_FLOAT, _ONNX_INT64, _ONNX_STRING, _ONNX_DOUBLE = 1, 7, 8, 11
_ONNX_NUMBERS = (_ONNX_FLOAT, _ONNX_DOUBLE)


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
    task: str = CLASSIFICATION
    feature_names: tuple[str, ...] | None = None
    accepts_missing: bool = False

    def record(self, sha256: str, registered_at_ns: int) -> ModelRecord:
        """The registration record stored beside the model (`list-versions`, `rollback`)."""
        return ModelRecord(
            sha256=sha256,
            model_format=self.model_format,
            source_format=self.source_format,
            n_features=self.n_features,
            classes=tuple(self.classes),
            sklearn_version=self.sklearn_version,
            has_probabilities=self.has_probabilities,
            registered_at=registered_at_ns // 1_000_000_000,
            registered_at_ns=registered_at_ns,
            probe_rows=self.probe.rows,
            probe_disagreements=self.probe.disagreements,
            probe_source=self.probe.source,
            task=self.task,
            feature_names=self.feature_names,
            accepts_missing=self.accepts_missing,
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
    from registry.native import native_format  # noqa: PLC0415 - see _load_native

    native = native_format(filename, data)
    if native is not None:
        return native
    raise RegistrationError(
        f"unknown model format {suffix or '(no extension)'}: use .onnx, .skops, XGBoost .json/.ubj "
        "or LightGBM .txt"
    )


def register(
    filename: str,
    data: bytes,
    *,
    trust_pickle: bool = False,
    sample: npt.NDArray[np.float64] | None = None,
    feature_names: tuple[str, ...] | None = None,
) -> Registration:
    """Check a model file and turn it into what is served; `RegistrationError` if refused.

    `feature_names` name the columns (else the estimator's `feature_names_in_`, if fitted on a
    DataFrame); clients may then send rows as objects keyed by them."""
    kind = source_format(filename, data)
    if kind == PICKLE and not trust_pickle:
        raise RegistrationError(
            "refusing a pickle: loading one runs any code it holds. Register an .onnx or .skops "
            "file, or pass --trust-pickle for a model you trained yourself"
        )
    if len(data) > MAX_MODEL_BYTES:
        raise RegistrationError(f"the model file is larger than {MAX_MODEL_BYTES} bytes")
    if kind == ONNX:
        registration = _register_onnx(data, sample)
        return replace(
            registration, feature_names=_feature_names(feature_names, None, registration.n_features)
        )
    if kind not in (PICKLE, SKOPS):
        estimator = _load_native(kind, data)
    else:
        estimator = _load_pickle(data) if kind == PICKLE else _load_skops(data)
    registration = _register_estimator(estimator, kind, sample)
    names = _feature_names(
        feature_names, getattr(estimator, "feature_names_in_", None), registration.n_features
    )
    return replace(registration, feature_names=names)


def _feature_names(given: tuple[str, ...] | None, fitted: Any, n_features: int) -> tuple[str, ...] | None:
    names = given if given is not None else None if fitted is None else tuple(str(n) for n in fitted)
    if names is None:
        return None
    if len(names) != n_features:
        raise RegistrationError(
            f"{len(names)} feature names for a model of {n_features} features: give exactly one name "
            "per column, in order (--feature-names a,b,c)"
        )
    if len(set(names)) != len(names):
        raise RegistrationError("the feature names repeat a name: give each column its own")
    for name in names:
        if (
            not 1 <= len(name) <= MAX_FEATURE_NAME_CHARS
            or not name.isprintable()
            or set(name) & _FEATURE_NAME_FORBIDDEN
        ):
            raise RegistrationError(
                f"feature names are 1-{MAX_FEATURE_NAME_CHARS} printable characters without "
                ', [ ] { } " : or \\: rename the columns with --feature-names'
            )
    return names


# --- scikit-learn estimators ------------------------------------------------------------------


def _load_native(kind: str, data: bytes) -> Any:
    # Imported here: registry.native imports scikit-learn, which an ONNX registration never needs
    # (functions/register registers ONNX uploads without it: decision 0016).
    from registry.native import NativeModelError, load_native  # noqa: PLC0415

    try:
        return load_native(kind, data)
    except NativeModelError as error:
        raise RegistrationError(str(error)) from None


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
        raise RegistrationError(f"{error}: {_other_ways(error.estimator)}") from None
    except Exception as error:
        raise RegistrationError(f"the skops file cannot be loaded: {type(error).__name__}") from error


def _other_ways(estimator: str | None) -> str:
    """What registers an estimator whose skops file the audit refuses: both ways convert it to ONNX."""
    what = f"the {estimator}" if estimator else "the model"
    return (
        f"convert {what} to ONNX (skl2onnx, zipmap off: docs/models.md) and register the .onnx, "
        "or register its pickle with --trust-pickle"
    )


def _estimator_facts(model: Any) -> tuple[int, list[Any], str]:
    """The estimator's width, class labels (none for a regressor) and task."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor  # noqa: PLC0415
    from sklearn.exceptions import NotFittedError  # noqa: PLC0415
    from sklearn.utils.validation import check_is_fitted  # noqa: PLC0415

    if not isinstance(model, BaseEstimator) or not (is_classifier(model) or is_regressor(model)):
        raise RegistrationError(
            f"the model is a {type(model).__name__}, not a scikit-learn classifier or regressor"
        )
    task = CLASSIFICATION if is_classifier(model) else REGRESSION
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise RegistrationError("the model is not fitted") from None
    n_features = getattr(model, "n_features_in_", None)
    classes = getattr(model, "classes_", None)
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
        raise RegistrationError("the model does not record n_features_in_")
    labels: list[Any] = []
    if task == CLASSIFICATION:
        if classes is None or np.ndim(classes) != 1:
            raise RegistrationError("the classifier does not record one list of classes_")
        labels = [c.item() if hasattr(c, "item") else c for c in classes]
        if not all(type(label) in (int, str) for label in labels):
            raise RegistrationError("the model's class labels are not integers or strings")
    try:
        check_consistency(model, n_features)
    except UnsafeModel as error:
        raise RegistrationError(f"the model is inconsistent: {error}") from None
    return n_features, labels, task


def _has_probabilities(model: Any) -> bool:
    try:  # SVC(probability=False) raises on the attribute
        return hasattr(model, "predict_proba")
    except AttributeError:
        return False


def _register_estimator(model: Any, kind: str, sample: npt.NDArray[np.float64] | None) -> Registration:
    import sklearn  # noqa: PLC0415

    n_features, classes, task = _estimator_facts(model)
    rows, source = _probe_rows(model, n_features, sample)
    family = families.family_of(model, task)
    probabilities = task == CLASSIFICATION and _has_probabilities(model)
    refusals: list[str] = []
    for precision in family.precisions:
        try:
            onnx_bytes = families.convert(model, n_features, family, precision)
        except families.ConversionFailed as error:  # the converter's own reason, for the refusal below
            refusals.append(f"ONNX {precision}: {error}")
            continue
        onnx_bytes = _served_outputs(onnx_bytes, probabilities)
        try:  # ONNX Runtime implements some ops for float only (SVMRegressor, say)
            check_onnx(onnx_bytes, n_features, classes=classes if task == CLASSIFICATION else None)
        except RegistrationError as error:
            refusals.append(f"ONNX {precision}: {error}")
            continue
        served: Any = OnnxModel(onnx_bytes)
        wrong = disagreeing_rows(model, served, rows, regression=task == REGRESSION)
        if not wrong:
            return Registration(
                data=onnx_bytes,
                model_format=ONNX,
                source_format=kind,
                n_features=n_features,
                classes=classes,
                sklearn_version="",
                has_probabilities=served.has_probabilities,
                probe=Probe(len(rows), 0, source),
                task=task,
                accepts_missing=_accepts_missing(model, served, rows, task),
            )
        refusals.append(f"ONNX {precision} disagrees on {Disagreement(wrong, len(rows)).describe()}")
    import skops.io  # noqa: PLC0415

    try:
        data = skops.io.dumps(model)
        served = load_skops(data)
    except (UnsafeModel, TypeError, ValueError, AttributeError) as error:
        tried = "; ".join(refusals)
        raise RegistrationError(
            f"the {type(model).__name__} cannot be served: {tried}; as skops: {error}. "
            "Check with --sample of your own rows, or register another estimator"
        ) from None
    wrong = disagreeing_rows(model, served, rows, regression=task == REGRESSION)
    if wrong:
        raise RegistrationError(
            f"the skops model disagrees with the original on {Disagreement(wrong, len(rows)).describe()} "
            f"of the {source} rows"
        )
    return Registration(
        data=data,
        model_format=SKOPS,
        source_format=kind,
        n_features=n_features,
        classes=classes,
        sklearn_version=sklearn.__version__,
        has_probabilities=served.has_probabilities,
        probe=Probe(len(rows), 0, source),
        task=task,
        accepts_missing=_accepts_missing(model, served, rows, task),
    )


def _served_outputs(data: bytes, probabilities: bool) -> bytes:
    """The converted graph with only what predict serves: a classifier's label output and, when
    the estimator has `predict_proba`, its probabilities (a LinearSVC's or an SVC's decision
    scores are not probabilities); a regressor's one output of values."""
    import onnx  # noqa: PLC0415

    model = onnx.load_model_from_string(data)
    outputs = list(model.graph.output)
    types = [value.type.tensor_type.elem_type for value in outputs]
    labels = [o for o, t in zip(outputs, types, strict=True) if t in (_ONNX_INT64, _ONNX_STRING)]
    if not labels:
        return data
    kept = labels[:1] + ([o for o in outputs if o not in labels][:1] if probabilities else [])
    del model.graph.output[:]
    model.graph.output.extend(kept)
    return bytes(model.SerializeToString())


def _accepts_missing(model: Any, served: Any, rows: npt.NDArray[np.float64], task: str) -> bool:
    """True when the original answers rows holding NaN and the served model answers them alike."""
    probes = missing_value_rows(rows)
    try:
        model.predict(probes)
    except ValueError:  # "Input X contains NaN": the estimator does not take missing values
        return False
    try:
        return not disagreeing_rows(model, served, probes, regression=task == REGRESSION)
    except Exception:
        return False


def _probe_rows(
    model: Any, n_features: int, sample: npt.NDArray[np.float64] | None
) -> tuple[npt.NDArray[np.float64], str]:
    if sample is not None:
        if sample.ndim != 2 or sample.shape[1] != n_features or len(sample) == 0:
            raise RegistrationError(f"the sample must be rows of {n_features} numbers")
        if (position := out_of_range(sample, FLOAT32)) is not None:  # what every format takes
            i, j = position
            raise RegistrationError(f"sample row {i}, value {j} is beyond float32's range (|x| <= 3.4e38)")
        return sample, "sample"
    return generated_rows(model, n_features), "generated"


# --- ONNX graphs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnnxFacts:
    n_features: int
    classes: list[Any]
    has_probabilities: bool
    task: str = CLASSIFICATION


def _graphs(graph: Any) -> Any:
    """The graph and every subgraph held in node attributes (If, Loop, Scan bodies)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def check_onnx(data: bytes, n_features: int | None = None, *, classes: list[Any] | None = None) -> OnnxFacts:
    """Refuse a graph predict should not run: anything but one float or double input
    [N, n_features], ops outside `ai.onnx`/`ai.onnx.ml`, external data, a size past the cap, or
    outputs that give neither a label (and, where present, one probability per class) nor one
    output of regression values. `classes` are the converted estimator's; an uploaded graph's
    are read from its classifier node."""
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
    try:  # no external data anywhere, only the converters' operators (registry/onnx_graph.py)
        check_graph(model)
    except GraphRefused as error:
        raise RegistrationError(str(error)) from None
    try:  # after the scans above: the checker itself would look for external files
        onnx.checker.check_model(model)
    except Exception as error:
        raise RegistrationError(f"the file is not a valid ONNX model: {type(error).__name__}") from None
    width = _input_width(model.graph)
    if n_features is not None and width != n_features:
        raise RegistrationError(f"the ONNX input takes {width} features, the model {n_features}")
    task = CLASSIFICATION if _label_outputs(model.graph) else REGRESSION
    if task == CLASSIFICATION and classes is None:
        classes = _class_labels(model.graph)
    classes = classes if task == CLASSIFICATION and classes is not None else []
    has_probabilities = _check_outputs(model.graph, len(classes))
    _smoke_run(data, width, classes)
    return OnnxFacts(width, classes, has_probabilities, task)


def _label_outputs(graph: Any) -> list[Any]:
    return [
        value
        for value in graph.output
        if value.type.HasField("tensor_type")
        and value.type.tensor_type.elem_type in (_ONNX_INT64, _ONNX_STRING)
    ]


def _input_width(graph: Any) -> int:
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise RegistrationError(f"the ONNX model has {len(inputs)} inputs; one is served")
    tensor = inputs[0].type.tensor_type if inputs[0].type.HasField("tensor_type") else None
    if tensor is None or tensor.elem_type not in _ONNX_NUMBERS:
        raise RegistrationError("the ONNX input must be a float or double tensor")
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
        elif tensor.elem_type in _ONNX_NUMBERS and rank in (1, 2):
            probabilities.append(value)
    if not labels:  # a regressor: one output of values
        if len(probabilities) != 1:
            raise RegistrationError(
                "the ONNX model has no label output (int64 or string), nor one output of values"
            )
        return False
    probabilities = [value for value in probabilities if len(value.type.tensor_type.shape.dim) == 2]
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
        refuse_slow_graph(data)  # within the run budget on extreme rows (registry/run_probe.py)
        session = onnx_session(data)
        label, probabilities = onnx_outputs(session)
        double = session.get_inputs()[0].type == "tensor(double)"
        rows = np.random.default_rng(0).normal(size=(8, width)).astype(np.float64 if double else np.float32)
        name = session.get_inputs()[0].name
        got = session.run([label], {name: rows})[0]
        if probabilities is not None:
            proba = session.run([probabilities], {name: rows})[0]
            if proba.shape != (len(rows), len(classes)):
                raise RegistrationError("the ONNX probabilities do not have one column per class")
    except RegistrationError:
        raise
    except TooSlow as error:
        raise RegistrationError(str(error)) from None
    except Exception as error:
        raise RegistrationError(f"ONNX Runtime cannot run the model: {type(error).__name__}") from None
    if classes and not set(np.ravel(got).tolist()) <= set(classes):
        raise RegistrationError("the ONNX model answers labels outside its classes")
    if not classes and (len(got) != len(rows) or not np.isfinite(np.asarray(got, dtype=np.float64)).all()):
        raise RegistrationError("the ONNX regressor does not answer one finite value a row")


def _register_onnx(data: bytes, sample: npt.NDArray[np.float64] | None) -> Registration:
    facts = check_onnx(data)
    rows, source = _probe_rows(None, facts.n_features, sample)
    served = OnnxModel(data)
    labels = served.predict(rows)
    outside = sum(label not in facts.classes for label in labels) if facts.classes else 0
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
        task=facts.task,
    )


@dataclass(frozen=True, slots=True)
class Sample:
    """The operator's probe rows, and the names a CSV's header row gave the columns (or None)."""

    rows: npt.NDArray[np.float64]
    header: tuple[str, ...] | None = None


def _csv_header(text: str) -> tuple[str, ...] | None:
    """The first line's fields, if it is a header row (any field not a number), else None."""
    first = text.split("\n", 1)[0]
    fields = tuple(field.strip() for field in first.split(","))
    try:
        [float(field) for field in fields]
    except ValueError:
        return fields
    return None


def read_sample(path: str) -> Sample:
    """Probe rows from a file: a JSON list of rows (or `{"instances": [...]}`), or CSV numbers,
    with or without a header row naming the columns."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RegistrationError(f"cannot read {path}: {error.strerror or error}") from None
    header = None
    try:
        if text.lstrip().startswith(("[", "{")):
            document = json.loads(text)
            rows = document["instances"] if isinstance(document, dict) else document
            sample = np.asarray(rows, dtype=np.float64)
        else:
            text = text.lstrip()
            header = _csv_header(text)
            skip = 0 if header is None else 1
            sample = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, skiprows=skip)
    except (ValueError, KeyError, TypeError):
        raise RegistrationError(
            f"{path} is not a list of rows of numbers (JSON, or CSV whose first row may name the "
            "columns): drop anything else"
        ) from None
    if sample.ndim != 2 or not np.isfinite(sample).all():
        raise RegistrationError(f"{path} is not a list of rows of finite numbers")
    return Sample(sample, header)
