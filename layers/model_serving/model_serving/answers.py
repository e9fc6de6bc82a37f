"""One way in and one way out for a model, whatever its format: the range rows must lie in for
the model's input precision, and the strict JSON its outputs become.

Every served format (ONNX graphs run by ONNX Runtime, audited skops estimators run by
scikit-learn, and whatever is added later) answers through `answer`, so both rules hold for all
of them. A format plugs in by saying which precision its inputs take (`input_precision`).

Ranges, measured 2026-12-06 on the demo data (iris, 4 features) with scikit-learn 1.9.1, rows of
+-x in every feature:
- float32 (ONNX graphs with float inputs, and scikit-learn's trees, which cast rows to float32
  and raise `ValueError` past its range): |x| <= 3.4028235e38. Beyond it a value becomes an
  infinity (ONNX) or an error (trees).
- float64 (other scikit-learn estimators; ONNX graphs with double inputs): |x| <= 1e150. Every
  family measured (NearestCentroid, KNN, SVC, LogisticRegression, Ridge, SGD, GaussianNB, MLP,
  LDA, QDA, scaled pipelines) answers finitely up to 1e150; distance-based ones (NearestCentroid,
  GaussianNB, QDA) turn NaN from 1.3e154 (the square of the difference overflows), and
  NearestCentroid and a scaled pipeline raise at 1.7e308. With |x| and every fitted parameter
  below 1e150, a squared distance stays finite for up to 4.5e7 features.
A row outside its model's range is the client's 400, named by position. Inside it, a model can
still give NaN: LabelSpreading's probabilities for any row far from its data (100 will do), a
scaler fitted on a near-constant feature that overflows. Such an answer is refused with
`NoFiniteAnswer` (422), never written as `NaN`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from aws_lambda_powertools import Logger
from model_runtime.errors import BadRequest, NoFiniteAnswer
from model_runtime.http import Response, json_response

if TYPE_CHECKING:
    from model_serving.models import ServedModel

logger = Logger(child=True)

FLOAT32 = np.dtype(np.float32)
FLOAT64 = np.dtype(np.float64)
INPUT_LIMITS: Mapping[np.dtype[Any], float] = {
    FLOAT32: float(np.finfo(np.float32).max),
    FLOAT64: 1e150,
}


def out_of_range(rows: npt.NDArray[np.float64], precision: np.dtype[Any]) -> tuple[int, int] | None:
    """The position of the first value beyond what a model of `precision` takes, or None."""
    beyond = np.abs(rows) > INPUT_LIMITS[precision]  # a NaN (a missing value) compares False
    if not beyond.any():  # not .max() <= limit: one NaN would make it False and hide the rest
        return None
    i, j = (int(k) for k in np.argwhere(beyond)[0])
    return i, j


def check_input_range(rows: npt.NDArray[np.float64], precision: np.dtype[Any]) -> None:
    """`BadRequest` naming the first value beyond the model's range (never the value itself)."""
    position = out_of_range(rows, precision)
    if position is not None:
        raise BadRequest(f"instances[{position[0]}][{position[1]}] is out of range for this model.")


def answer(
    model: ServedModel, rows: npt.NDArray[np.float64], *, probabilities: bool, model_version: str
) -> Response:
    """Predict's 200: the model's labels (and probabilities when asked), as strict JSON.

    `json_response` writes with `allow_nan=False`, which raises on NaN or an infinity at no cost
    to a finite answer: such an answer becomes `NoFiniteAnswer`, not invalid JSON.
    """
    check_input_range(rows, model.input_precision)
    result: dict[str, Any] = {"predictions": model.predict(rows)}
    if probabilities:  # columns in the order of the model card's `classes`
        result["probabilities"] = model.predict_proba(rows)
    result["model_version"] = model_version
    try:
        return json_response(200, result)
    except ValueError:
        logger.warning("model answered NaN or an infinity", extra={"rows": len(rows)})
        raise NoFiniteAnswer() from None
