"""Tests for the committed demo models in models/ and the script that trains them."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_iris, load_wine
from sklearn.utils.validation import check_is_fitted

from tests.support import MODELS_DIR, REPO_ROOT

MANIFEST_PATH = MODELS_DIR / "manifest.json"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "sklearn_runtime" / "requirements.txt"  # scikit-learn moved there
EXPECTED_MODELS = {"model_user_a.pkl": 4, "model_user_b.pkl": 13}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def test_manifest_lists_exactly_the_demo_models(manifest: dict[str, Any]) -> None:
    # Given the committed manifest
    # When its model entries are listed
    names = set(manifest["models"])
    # Then they are exactly the two demo models, with the expected feature counts
    assert names == set(EXPECTED_MODELS)
    for name, n_features in EXPECTED_MODELS.items():
        assert manifest["models"][name]["n_features"] == n_features


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_manifest_sha256_matches_committed_file(manifest: dict[str, Any], name: str) -> None:
    # Given a committed model file and its manifest entry
    data = (MODELS_DIR / name).read_bytes()
    # When the file's bytes are hashed
    digest = hashlib.sha256(data).hexdigest()
    # Then the digest is the one pinned in the manifest
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["models"][name]["sha256"])
    assert digest == manifest["models"][name]["sha256"]


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_model_loads_fitted_with_manifest_shape(manifest: dict[str, Any], name: str) -> None:
    # Given a model file whose bytes match the manifest (checked before deserializing)
    path = MODELS_DIR / name
    entry = manifest["models"][name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    # When it is loaded with joblib
    model = joblib.load(path)
    # Then it is fitted and agrees with the manifest on features and classes
    check_is_fitted(model)
    assert model.n_features_in_ == entry["n_features"]
    assert model.classes_.tolist() == entry["classes"]
    assert not hasattr(model, "feature_names_in_")
    # And predicting on a plain list of lists emits no warning and returns a known class
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictions = model.predict([[0.5] * entry["n_features"], [1.0] * entry["n_features"]])
    assert len(predictions) == 2
    assert set(predictions.tolist()) <= set(entry["classes"])


def test_manifest_sklearn_version_matches_runtime(manifest: dict[str, Any]) -> None:
    # Given the scikit-learn versions recorded in the manifest
    recorded = {entry["sklearn_version"] for entry in manifest["models"].values()}
    # When compared with the scikit-learn of this runtime
    # Then every model was trained with exactly this version
    assert recorded == {sklearn.__version__}


def test_manifest_sklearn_version_matches_layer_pin(manifest: dict[str, Any]) -> None:
    # Given the layer's requirements file, which pins the runtime's scikit-learn
    assert LAYER_REQUIREMENTS.is_file(), f"missing {LAYER_REQUIREMENTS.relative_to(REPO_ROOT)}"
    text = LAYER_REQUIREMENTS.read_text(encoding="utf-8")
    # When the scikit-learn pin is parsed
    pins = re.findall(r"^\s*scikit-learn\s*==\s*([^\s;#]+)", text, flags=re.MULTILINE | re.IGNORECASE)
    # Then there is exactly one pin and it equals the version the models were trained with
    assert len(pins) == 1, f"expected one 'scikit-learn==X' line in {LAYER_REQUIREMENTS.name}"
    recorded = {entry["sklearn_version"] for entry in manifest["models"].values()}
    assert recorded == {pins[0]}


# Bit-exact retraining is not portable: OpenBLAS picks kernels per CPU, so LogisticRegression's
# solver takes a different number of iterations on another machine of the same kind and the
# coefficients (and so the file's bytes and digest) differ in the last digits. What training
# guarantees everywhere is the model's behaviour: the same labels on the training data, and
# coefficients within COEF_TOLERANCE. The committed files stay the ones served.
COEF_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The training script, run as an operator would: in a fresh process, into an empty directory
    out = tmp_path_factory.mktemp("retrained")
    subprocess.run([sys.executable, str(MODELS_DIR / "train.py"), str(out)], check=True, capture_output=True)
    return out


def test_retraining_reproduces_the_manifest_but_for_digests(
    retrained: Path, manifest: dict[str, Any]
) -> None:
    # Given a retrained manifest
    fresh = json.loads((retrained / "manifest.json").read_text(encoding="utf-8"))

    # When digests, which depend on the CPU's floating point, are set aside
    def without_digests(document: dict[str, Any]) -> dict[str, Any]:
        return {name: {k: v for k, v in e.items() if k != "sha256"} for name, e in document["models"].items()}

    # Then feature counts, classes and the scikit-learn version are the committed ones
    assert without_digests(fresh) == without_digests(manifest)
    # And each new digest is the digest of the file written beside it
    for name, entry in fresh["models"].items():
        assert entry["sha256"] == hashlib.sha256((retrained / name).read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_retraining_reproduces_the_committed_behaviour(retrained: Path, name: str) -> None:
    # Given the committed model and the same model retrained on this machine
    committed, fresh = joblib.load(MODELS_DIR / name), joblib.load(retrained / name)
    load_data = {"model_user_a.pkl": load_iris, "model_user_b.pkl": load_wine}[name]
    X, _ = load_data(return_X_y=True)
    # When both predict the whole training set
    # Then every label is the same
    assert committed.predict(X).tolist() == fresh.predict(X).tolist()
    # And the fitted parameters agree within the stated tolerance
    if hasattr(committed, "coef_"):
        np.testing.assert_allclose(fresh.coef_, committed.coef_, atol=COEF_TOLERANCE)
        np.testing.assert_allclose(fresh.intercept_, committed.intercept_, atol=COEF_TOLERANCE)
    else:
        np.testing.assert_array_equal(fresh.tree_.feature, committed.tree_.feature)
        np.testing.assert_allclose(fresh.tree_.threshold, committed.tree_.threshold, atol=1e-9)
