"""XGBoost and LightGBM models from their own files: XGBoost JSON (`.json`) or UBJSON (`.ubj`), and
LightGBM's text format (`.txt`). Each holds trees and parameters only, no code, so no
`--trust-pickle` is needed: the libraries' own parsers read them on the operator's machine, and
the model is then converted and proven as any other (`registry.families`, `registry.proof`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

XGBOOST = "xgboost"
LIGHTGBM = "lightgbm"
_SUFFIXES = {".json": XGBOOST, ".ubj": XGBOOST, ".txt": LIGHTGBM}


class NativeModelError(Exception):
    """The file is not a model this module reads; the message is one line for the operator."""


def native_format(filename: str, data: bytes) -> str | None:
    """XGBOOST or LIGHTGBM when the name and the first bytes say so, else None."""
    kind = _SUFFIXES.get(Path(filename).suffix.lower())
    if kind == XGBOOST and data[:1] == b"{":  # JSON and UBJSON objects both open with "{"
        return kind
    if kind == LIGHTGBM and data.startswith(b"tree\n"):
        return kind
    return None


def load_native(kind: str, data: bytes) -> Any:
    """A fitted scikit-learn-API estimator for the native model file."""
    try:
        return _load_xgboost(data) if kind == XGBOOST else _load_lightgbm(data)
    except NativeModelError:
        raise
    except Exception as error:  # the libraries raise their own types for a file they cannot read
        raise NativeModelError(f"the file is not a readable {kind} model: {type(error).__name__}") from None


def _load_xgboost(data: bytes) -> Any:
    import xgboost  # noqa: PLC0415

    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    objective = str(json.loads(booster.save_config())["learner"]["objective"]["name"])
    if objective.startswith(("binary:", "multi:")):
        model: Any = xgboost.XGBClassifier()
    elif objective.startswith("reg:"):
        model = xgboost.XGBRegressor()
    else:
        raise NativeModelError(
            f"the XGBoost objective {objective} is neither a classifier's nor a regressor's"
        )
    model.load_model(bytearray(data))
    return model


def _load_lightgbm(data: bytes) -> Any:
    import lightgbm  # noqa: PLC0415

    booster = lightgbm.Booster(model_str=data.decode("utf-8"))
    objective = str(booster.dump_model()["objective"]).split(" ")[0]
    if objective in ("binary", "multiclass", "multiclassova"):
        return LightGBMTextClassifier(booster)
    if objective.startswith("regression") or objective in ("huber", "fair", "poisson", "quantile", "mape"):
        return LightGBMTextRegressor(booster)
    raise NativeModelError(f"the LightGBM objective {objective} is neither a classifier's nor a regressor's")


class LightGBMText:
    """What the LightGBM text models share: their Booster, given to onnxmltools as it is."""

    booster_: Any

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        """Fitted already: the text file holds the trained trees (train with LightGBM itself)."""
        raise NotImplementedError("a LightGBM model read from its file is not refitted here")


class LightGBMTextClassifier(LightGBMText, ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A LightGBM classifier read from its text file: classes 0..n-1, as LightGBM numbers them."""

    def __init__(self, booster: Any = None) -> None:
        self.booster = booster
        if booster is not None:
            self.booster_ = booster
            self.n_features_in_ = int(booster.num_feature())
            self.classes_ = np.arange(max(2, int(booster.dump_model()["num_class"])))

    def predict_proba(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        scores = np.asarray(self.booster_.predict(rows), dtype=np.float64)
        return np.column_stack([1 - scores, scores]) if scores.ndim == 1 else scores

    def predict(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        return np.asarray(self.classes_[np.argmax(self.predict_proba(rows), axis=1)])


class LightGBMTextRegressor(LightGBMText, RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A LightGBM regressor read from its text file."""

    def __init__(self, booster: Any = None) -> None:
        self.booster = booster
        if booster is not None:
            self.booster_ = booster
            self.n_features_in_ = int(booster.num_feature())

    def predict(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster_.predict(rows), dtype=np.float64)
