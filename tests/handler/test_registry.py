"""Model registration (`registry.registration`, `inferctl create-tenant`): only formats that cannot run
code, audited before loading, consistent with themselves, converted to ONNX and proven on a probe.

The exploits are real: each test that refuses one checks that the code it carries never ran (no
marker file), and a companion test shows the same payload does run when loaded naively.
"""

from __future__ import annotations

import io
import json
import pathlib
from typing import Any

import joblib
import numpy as np
import onnx
import pytest
import skops.io
from model_serving.models import sha256_hex
from model_serving.sklearn_models import UnsafeModel
from onnx import TensorProto, helper
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid

from inferctl.cli import main
from registry import families
from registry import registration as registry
from registry.registration import RegistrationError, register
from tests.support import (
    MODELS_DIR,
    Stack,
    current_runtime,
    served_bytes,
    use_runtime,
)

MODEL_A_PICKLE = (MODELS_DIR / "model_user_a.pkl").read_bytes()
MODEL_B_PICKLE = (MODELS_DIR / "model_user_b.pkl").read_bytes()


def _touch_then_load(marker: str, model: bytes) -> Any:
    """What the trojan's `__reduce__` calls: run code (touch a file), then hand back the genuine
    model, so the load looks like a success."""
    pathlib.Path(marker).touch()
    return joblib.load(io.BytesIO(model))


class Trojan:
    def __init__(self, marker: pathlib.Path, model: bytes) -> None:
        self.marker, self.model = marker, model

    def __reduce__(self) -> tuple[Any, tuple[str, bytes]]:
        return (_touch_then_load, (str(self.marker), self.model))


class Touch:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[pathlib.Path]]:
        return (pathlib.Path.touch, (self.marker,))


def pickled(obj: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


class TouchOnSetState:
    """Held by an estimator in a skops file: loading it (were it trusted) calls `__setstate__`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __getstate__(self) -> dict[str, Any]:
        return {"marker": self.marker}

    def __setstate__(self, state: dict[str, Any]) -> None:
        pathlib.Path(state["marker"]).touch()
        self.marker = state["marker"]


def trojan_skops(marker: pathlib.Path) -> bytes:
    model = joblib.load(io.BytesIO(MODEL_A_PICKLE))
    model.extra_ = TouchOnSetState(str(marker))
    return bytes(skops.io.dumps(model))


def liar_tree() -> Any:
    """The Wine decision tree claiming 4 features: it would read past each 4-value row."""
    model = joblib.load(io.BytesIO(MODEL_B_PICKLE))
    model.n_features_in_ = 4
    return model


def run_cli(*argv: str) -> int:
    code = main(list(argv), stdout=io.StringIO())
    use_runtime()
    return code


def bucket_and_table(stack: Stack) -> tuple[list[str], list[str]]:
    items = current_runtime().dynamodb.scan(TableName=stack.table_name)["Items"]
    objects = current_runtime().s3.list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    return sorted(json.dumps(i, sort_keys=True) for i in items), sorted(o["Key"] for o in objects)


# --- the exploits are real ----------------------------------------------------------------------


def test_the_trojan_pickle_runs_code_and_returns_the_genuine_model(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    model = joblib.load(io.BytesIO(pickled(Trojan(marker, MODEL_A_PICKLE))))
    assert marker.exists()
    assert model.n_features_in_ == 4


def test_the_skops_payload_runs_code_when_its_type_is_trusted(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    data = trojan_skops(marker)
    skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    assert marker.exists()


# --- pickles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", ["trojan", "plain"])
def test_a_pickle_without_trust_pickle_is_refused_before_it_is_read(
    stack: Stack, tmp_path: pathlib.Path, payload: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a trojan pickle (runs code, then returns the genuine Iris model) or a plain malicious one
    marker = tmp_path / "pwned"
    data = pickled(Trojan(marker, MODEL_A_PICKLE) if payload == "trojan" else Touch(marker))
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    before = bucket_and_table(stack)
    # When an operator registers it without --trust-pickle, even under another name
    renamed = tmp_path / "model.onnx"
    renamed.write_bytes(data)
    codes = [run_cli("create-tenant", "tenant-c", "--model", str(p)) for p in (path, renamed)]
    # Then it is refused, its code never ran, and nothing was written
    assert codes == [1, 1]
    assert capsys.readouterr().err.count("refusing a pickle") == 2
    assert not marker.exists()
    assert bucket_and_table(stack) == before


def test_a_trusted_pickle_is_converted_and_never_stored_as_a_pickle(stack: Stack) -> None:
    # When the demo model is registered as a trusted pickle
    assert (
        run_cli(
            "create-tenant", "tenant-c", "--model", str(MODELS_DIR / "model_user_a.pkl"), "--trust-pickle"
        )
        == 0
    )
    # Then the bucket holds its ONNX conversion and a registration record, and no pickle
    keys = [o["Key"] for o in current_runtime().s3.list_objects_v2(Bucket=stack.bucket)["Contents"]]
    assert sorted(k.rsplit(".", 1)[1] for k in keys) == ["json", "onnx"]
    for key in keys:
        assert current_runtime().s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()[:1] != b"\x80"


# --- skops --------------------------------------------------------------------------------------


def test_a_skops_file_naming_an_unsafe_type_is_refused_without_running_it(tmp_path: pathlib.Path) -> None:
    # Given a genuine estimator carrying an object whose loading runs code
    marker = tmp_path / "pwned"
    data = trojan_skops(marker)
    # When it is registered / Then it is refused, naming the type, and nothing ran
    with pytest.raises(RegistrationError, match=r"tests\.handler\.test_registry\.TouchOnSetState"):
        register("model.skops", data)
    assert not marker.exists()


def test_a_skops_file_that_would_call_a_function_is_refused(tmp_path: pathlib.Path) -> None:
    # Given a skops file holding a function reference (skops' FunctionNode)
    data = bytes(skops.io.dumps({"f": np.add}))
    # When it is registered / Then it is refused before anything is built
    with pytest.raises(RegistrationError, match=r"would call code|not a scikit-learn"):
        register("model.skops", data)


@pytest.mark.parametrize("as_file", ["liar.skops", "liar.pkl"])
def test_the_liar_tree_is_refused(as_file: str) -> None:
    # Given the Wine tree declaring 4 features, as skops or as a trusted pickle
    model = liar_tree()
    data = pickled(model) if as_file.endswith(".pkl") else bytes(skops.io.dumps(model))
    # When it is registered / Then it is refused for reading a feature it does not declare
    with pytest.raises(RegistrationError, match="reads feature 12 but the model declares 4"):
        register(as_file, data, trust_pickle=True)


def test_a_model_skl2onnx_cannot_convert_is_kept_as_audited_skops() -> None:
    # Given a fitted NearestCentroid (no ONNX converter) as a skops file
    X, y = load_iris(return_X_y=True)
    model = NearestCentroid().fit(X, y)
    # When it is registered
    registration = register("centroid.skops", bytes(skops.io.dumps(model)))
    # Then it is served as skops, for the scikit-learn runtime it was registered with
    assert (registration.model_format, registration.source_format) == ("skops", "skops")
    assert registration.sklearn_version
    assert registration.probe.disagreements == 0


# --- conversion and probe -----------------------------------------------------------------------


def test_the_demo_models_convert_and_agree_on_their_whole_data_sets() -> None:
    for name, data_set in (("model_user_a.pkl", load_iris), ("model_user_b.pkl", load_wine)):
        X, _ = data_set(return_X_y=True)
        registration = register(name, (MODELS_DIR / name).read_bytes(), trust_pickle=True, sample=X)
        assert registration.model_format == "onnx"
        assert registration.probe == registry.Probe(len(X), 0, "sample")


def test_a_conversion_that_disagrees_is_refused_with_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a converter that returns another model's graph (model A with other coefficients),
    # and a scikit-learn runtime that cannot take the model either
    X, y = load_iris(return_X_y=True)
    other = LogisticRegression(C=0.01, max_iter=1000).fit(X, y)
    family = families.family_of(other, "classification")
    other_graph = families.convert(other, 4, family, "float32")
    monkeypatch.setattr(families, "convert", lambda *args: other_graph)

    def no_skops(data: bytes) -> Any:
        raise UnsafeModel("refused for the test")

    monkeypatch.setattr(registry, "load_skops", no_skops)
    # When model A is registered with the whole Iris set as its sample
    with pytest.raises(RegistrationError) as refused:
        register("model_user_a.pkl", MODEL_A_PICKLE, trust_pickle=True, sample=X)
    # Then the operator learns how many rows disagreed, which, and what to do next
    message = str(refused.value)
    assert "ONNX float32 disagrees on" in message and f"of {len(X)} probe rows (rows " in message
    assert "--sample" in message


def test_a_sample_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(RegistrationError, match="rows of 4 numbers"):
        register("model_user_a.pkl", MODEL_A_PICKLE, trust_pickle=True, sample=np.zeros((3, 5)))


# --- ONNX uploads -------------------------------------------------------------------------------


def test_an_onnx_file_is_served_as_it_is() -> None:
    data = served_bytes("model_user_b.pkl")
    registration = register("wine.onnx", data)
    assert registration.data == data
    assert (registration.n_features, registration.classes, registration.has_probabilities) == (
        13,
        [0, 1, 2],
        True,
    )


def _graph_of(data: bytes) -> onnx.ModelProto:
    return onnx.load_model_from_string(data)


def _with_custom_domain_node() -> bytes:
    model = _graph_of(served_bytes("model_user_a.pkl"))
    model.graph.node.append(helper.make_node("Evil", ["X"], ["evil_out"], domain="com.attacker"))
    model.opset_import.append(helper.make_opsetid("com.attacker", 1))
    return bytes(model.SerializeToString())


def _with_external_data() -> bytes:
    model = _graph_of(served_bytes("model_user_a.pkl"))
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    del tensor.float_data[:]
    model.graph.initializer.append(tensor)
    return bytes(model.SerializeToString())


def _with_zipmap() -> bytes:
    X, y = load_iris(return_X_y=True)
    from skl2onnx import to_onnx  # noqa: PLC0415
    from skl2onnx.common.data_types import FloatTensorType  # noqa: PLC0415

    model = LogisticRegression(max_iter=1000).fit(X, y)
    return bytes(to_onnx(model, initial_types=[("X", FloatTensorType([None, 4]))]).SerializeToString())


def _with_integer_input() -> bytes:
    model = _graph_of(served_bytes("model_user_a.pkl"))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    return bytes(model.SerializeToString())


BAD_GRAPHS = {
    "custom-domain node": (_with_custom_domain_node, "custom domain 'com.attacker'"),
    "external data": (_with_external_data, "external data"),
    "ZipMap output": (_with_zipmap, "operator ai.onnx.ml.ZipMap is not served"),
    "integer input": (_with_integer_input, "float or double tensor"),
    "not ONNX": (lambda: b"\x08\x07garbage", "not a valid ONNX model"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_an_onnx_graph_predict_should_not_run_is_refused(case: str) -> None:
    make, message = BAD_GRAPHS[case]
    with pytest.raises(RegistrationError, match=message):
        register("model.onnx", make())


def test_an_onnx_graph_over_the_size_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MAX_MODEL_BYTES", 100)
    with pytest.raises(RegistrationError, match="larger than 100 bytes"):
        register("model.onnx", served_bytes("model_user_a.pkl"))


def test_a_registered_onnx_file_is_pinned_by_its_own_digest(stack: Stack, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "wine.onnx"
    path.write_bytes(served_bytes("model_user_b.pkl"))
    assert run_cli("create-tenant", "tenant-c", "--model", str(path)) == 0
    assert stack.tenant("tenant-c").model_sha256 == sha256_hex(path.read_bytes())
