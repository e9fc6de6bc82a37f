"""Train the two demo tenant models and write them, with a manifest, next to this script.

- ``model_user_a.pkl``: ``LogisticRegression`` on Iris (4 features, classes 0..2).
- ``model_user_b.pkl``: ``DecisionTreeClassifier`` on Wine (13 features, classes 0..2).
- ``manifest.json``: per file its SHA-256, ``n_features``, ``classes`` and the scikit-learn
  version used. The SHA-256 is the digest an operator pins in the tenant's mapping.

Models are fitted on plain numpy arrays (no feature names), so predicting on a list of lists
emits no warning. Fixed seeds, no compression and a pinned pickle protocol make retraining
reproducible in what floating point allows: the same labels on the training data, the same tree,
and LogisticRegression coefficients within 0.05 (tests/unit/test_models.py). Not the same bytes on
every machine: OpenBLAS picks kernels per CPU, so the solver's iterations and the last digits of
the coefficients differ between machines of one kind. The committed files are the ones served;
retraining makes new versions with new digests, registered like any other model.

Usage: ``python models/train.py [OUT_DIR]``
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.base import ClassifierMixin
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

# Pinned so the bytes do not depend on the interpreter's default protocol.
PICKLE_PROTOCOL = 5
MANIFEST_NAME = "manifest.json"
MODELS_DIR = Path(__file__).resolve().parent

# file name -> (data set loader, estimator factory)
MODEL_SPECS: dict[str, tuple[Callable[..., Any], Callable[[], ClassifierMixin]]] = {
    "model_user_a.pkl": (
        load_iris,
        lambda: LogisticRegression(max_iter=1000, random_state=0),
    ),
    "model_user_b.pkl": (
        load_wine,
        lambda: DecisionTreeClassifier(random_state=0, max_depth=5),
    ),
}


def dump_model(model: ClassifierMixin, path: Path) -> None:
    # No compression and a pinned protocol: the bytes, and so the pinned digest, are reproducible.
    joblib.dump(model, path, compress=0, protocol=PICKLE_PROTOCOL)


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_model(name: str) -> ClassifierMixin:
    """Fit the estimator for ``name`` on its data set, as plain numpy arrays."""
    load, make_estimator = MODEL_SPECS[name]
    X, y = load(return_X_y=True)
    return make_estimator().fit(X, y)


def train_all(out_dir: Path) -> dict[str, Any]:
    """Train every model, write the .pkl files and manifest.json to ``out_dir``; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    for name in MODEL_SPECS:
        model = train_model(name)
        path = out_dir / name
        dump_model(model, path)
        entries[name] = {
            "sha256": sha256_file(path),
            "n_features": int(model.n_features_in_),
            "classes": model.classes_.tolist(),
            "sklearn_version": sklearn.__version__,
        }
    manifest: dict[str, Any] = {"models": entries}
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out_dir / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return manifest


def main() -> None:
    manifest = train_all(Path(sys.argv[1]) if len(sys.argv) > 1 else MODELS_DIR)
    for name, entry in manifest["models"].items():
        print(f"{name}: sha256={entry['sha256']} n_features={entry['n_features']}")


if __name__ == "__main__":
    main()
