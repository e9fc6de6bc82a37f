"""The proof that a served model answers as the original estimator does.

Probe rows: the operator's sample, else rows generated from the model's own parameters, and for
tree models every split threshold, the float64 neighbours on each side, and the float32 values
around it (where a float32 graph would round an input onto or across the split). The served
model must give identical labels, probabilities within 1e-5, and regression values within 1e-5
relative (to the value, or to the typical size of the model's values when the value is near 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

PROBABILITY_TOLERANCE = 1e-5
RELATIVE_TOLERANCE = 1e-5
GENERATED_PROBE_ROWS = 512
MAX_THRESHOLD_PROBES = 4096
MAX_TRAINING_PROBES = 4096
SHOWN_ROWS = 5


@dataclass(frozen=True, slots=True)
class Disagreement:
    """Which probe rows the served model answered differently."""

    rows: tuple[int, ...]
    of: int

    def describe(self) -> str:
        shown = ", ".join(str(i) for i in self.rows[:SHOWN_ROWS])
        more = f" and {len(self.rows) - SHOWN_ROWS} more" if len(self.rows) > SHOWN_ROWS else ""
        return f"{len(self.rows)} of {self.of} probe rows (rows {shown}{more})"


def disagreeing_rows(
    original: Any, served: Any, rows: npt.NDArray[np.float64], *, regression: bool
) -> tuple[int, ...]:
    """Indices of rows whose served answer is not the original's, within the tolerances."""
    expected = original.predict(rows)
    got = np.asarray(served.predict(rows))
    if regression:
        expected = np.asarray(expected, dtype=np.float64).reshape(got.shape)
        scale = np.maximum(np.abs(expected), np.abs(expected).mean() if expected.size else 0.0)
        bad = np.abs(got - expected) > RELATIVE_TOLERANCE * scale + 1e-12
        bad = bad.reshape(len(rows), -1).any(axis=1)
    else:
        bad = expected.astype(object) != got.astype(object)
        if served.has_probabilities:
            gap = np.abs(original.predict_proba(rows) - np.asarray(served.predict_proba(rows)))
            bad |= (gap > PROBABILITY_TOLERANCE).any(axis=1)
    return tuple(int(i) for i in np.flatnonzero(bad))


def tree_thresholds(model: Any, n_features: int) -> list[list[float]]:
    """Every split threshold of the model's scikit-learn trees, per feature."""
    from model_serving.sklearn_models import _trees  # noqa: PLC0415

    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    for tree in _trees(model):
        splits = np.asarray(tree.children_left) != -1
        for feature, value in zip(
            np.asarray(tree.feature)[splits], np.asarray(tree.threshold)[splits], strict=True
        ):
            thresholds[int(feature)].append(float(value))
    for feature, value in _booster_splits(model):
        if 0 <= feature < n_features:
            thresholds[feature].append(value)
    for predictors in getattr(model, "_predictors", None) or ():  # HistGradientBoosting
        for predictor in predictors:
            nodes = predictor.nodes[predictor.nodes["is_leaf"] == 0]
            for feature, value in zip(nodes["feature_idx"], nodes["num_threshold"], strict=True):
                thresholds[int(feature)].append(float(value))
    return thresholds


def _booster_splits(model: Any) -> list[tuple[int, float]]:
    """(feature, threshold) of every split of an XGBoost or LightGBM model, from its own dump."""
    splits: list[tuple[int, float]] = []
    booster = getattr(model, "booster_", None)  # LightGBM
    if booster is not None and hasattr(booster, "dump_model"):
        stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                if isinstance(node.get("threshold"), int | float):
                    splits.append((int(node["split_feature"]), float(node["threshold"])))
                stack += [node["left_child"], node["right_child"]]
    get_booster = getattr(model, "get_booster", None)  # XGBoost
    if callable(get_booster):
        stack = [json.loads(tree) for tree in get_booster().get_dump(dump_format="json")]
        while stack:
            node = stack.pop()
            if "split" in node:
                feature = str(node["split"]).removeprefix("f")
                if feature.isdigit():
                    splits.append((int(feature), float(node["split_condition"])))
                stack += node.get("children", [])
    return splits


def _beside(value: float) -> list[float]:
    """The threshold, its float64 neighbours, and the float32 values nearest it."""
    near32 = np.float32(value)
    return [
        value,
        float(np.nextafter(value, -np.inf)),
        float(np.nextafter(value, np.inf)),
        float(near32),
        float(np.nextafter(near32, np.float32(-np.inf))),
        float(np.nextafter(near32, np.float32(np.inf))),
    ]


def generated_rows(model: Any, n_features: int, count: int = GENERATED_PROBE_ROWS) -> npt.NDArray[np.float64]:
    """Rows spread over where the model's own parameters say it changes its mind: around each
    tree's split thresholds (and on and beside every threshold), for other models around the
    origin at the scale of the coefficients, and the training rows a k-NN model holds."""
    rng = np.random.default_rng(0)
    low, high = np.full(n_features, -1.0), np.full(n_features, 1.0)
    thresholds = tree_thresholds(model, n_features) if model is not None else [[] for _ in range(n_features)]
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
    # A k-NN model holds its training rows: where neighbours tie, a served model may pick others.
    fitted = getattr(model, "_fit_X", None)
    if isinstance(fitted, np.ndarray) and fitted.ndim == 2 and fitted.shape[1] == n_features:
        rows = np.vstack([rows, fitted[:MAX_TRAINING_PROBES]])
    edges = [(j, v) for j, values in enumerate(thresholds) for t in sorted(set(values)) for v in _beside(t)]
    if edges:
        picked = rng.choice(len(edges), size=min(MAX_THRESHOLD_PROBES, len(edges)), replace=False)
        on_edge = rows[rng.integers(0, count, size=len(picked))].copy()
        for row, k in zip(on_edge, picked, strict=True):
            row[edges[k][0]] = edges[k][1]
        rows = np.vstack([rows, on_edge])
    return np.asarray(rows, dtype=np.float64)


def missing_value_rows(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rows with NaN in each feature in turn (and one all-NaN row): where a model that takes
    missing values must answer as the original does."""
    n_features = rows.shape[1]
    base = rows[np.arange(n_features * 2) % len(rows)].copy()
    base[np.arange(len(base)), np.arange(len(base)) % n_features] = np.nan
    return np.vstack([base, np.full((1, n_features), np.nan)])
