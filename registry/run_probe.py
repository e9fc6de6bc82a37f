"""Registration's run probe: the graph must answer extreme rows within the default run budget.

Predict cuts off every run at the tenant's budget (`model_serving/run_budget.py`); a graph that
already needs longer on a full batch of unusual but valid rows would answer its tenant's clients
with 503s. Such a graph is refused before it is published. The rows are the values a request can
carry that most often take a graph down a slow or unusual path: the limits of the input's float
type (predict refuses anything beyond float32's range for a float32 input), the smallest
normal and subnormal numbers, zeros, and negatives.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from model_runtime.table import DEFAULT_RUN_BUDGET_MS
from model_serving.models import onnx_session
from model_serving.run_budget import probe_within

# The budget the probe runs under: the default tenant's (a tenant's own budget is set after
# registration, `inferctl set-run-budget`, and predict enforces it).
PROBE_BUDGET_MS: Final = DEFAULT_RUN_BUDGET_MS
# Rows in the probe batch: the default max_batch (inferctl/onboarding.py), the largest request a
# tenant gets unless the operator raises it.
PROBE_BATCH_ROWS: Final = 1000


class TooSlow(Exception):
    """The graph ran past the budget on the probe rows; the message is one line for the operator."""


def extreme_values(dtype: type[np.floating[Any]]) -> list[float]:
    """One value per probe row: what a request can send to an input of `dtype`."""
    info = np.finfo(dtype)
    limits = [float(info.max), float(info.tiny), float(info.smallest_subnormal), 1.0, 1e6]
    return [0.0, *limits, *(-v for v in limits)]


def probe_rows(width: int, dtype: type[np.floating[Any]], rows: int = PROBE_BATCH_ROWS) -> npt.NDArray[Any]:
    """`rows` rows of `width` values: each extreme value alone in a row, then the same values
    spread over the features, repeated up to `rows`."""
    values = extreme_values(dtype)
    uniform = [[v] * width for v in values]
    mixed = [[values[(i + j) % len(values)] for j in range(width)] for i in range(len(values))]
    probe = (uniform + mixed) * (rows // (2 * len(values)) + 1)
    return np.asarray(probe[:rows], dtype=dtype)


def refuse_slow_graph(data: bytes) -> None:
    """`TooSlow` if one run of the graph on the probe batch takes longer than `PROBE_BUDGET_MS`."""
    budget_ms = PROBE_BUDGET_MS
    session = onnx_session(data)
    single = session.get_inputs()[0]
    dtype = np.float64 if single.type == "tensor(double)" else np.float32
    width = int(single.shape[1])
    if not probe_within(session, {single.name: probe_rows(width, dtype)}, budget_ms):
        raise TooSlow(
            f"the ONNX model takes longer than the run budget ({budget_ms} ms) on {PROBE_BATCH_ROWS} "
            "rows of extreme values: the graph must be a converted estimator"
        )
