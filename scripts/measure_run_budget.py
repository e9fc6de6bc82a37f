"""What the run budget costs a warm prediction: `session.run` alone, with a `threading.Timer`
started and cancelled around each run (a thread per request), and with the watchdog
(model_serving/run_budget.py). `python scripts/measure_run_budget.py` prints p50 and p99 in us."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from model_runtime.table import Tenant
from model_serving.models import onnx_session
from model_serving.run_budget import TenantBudget, run_session

RUNS = 5_000
ROUNDS = 5
IRIS = Path(__file__).resolve().parent.parent / "layers" / "model_serving" / "iris.onnx"


def timed(call: Callable[[], object]) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(RUNS * 0.99)]


def main() -> None:
    session = onnx_session(IRIS.read_bytes())
    label = session.get_outputs()[0].name
    feeds = {session.get_inputs()[0].name: np.asarray([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)}

    def bare() -> object:
        return session.run([label], feeds)

    def with_timer() -> object:
        options = ort.RunOptions()
        timer = threading.Timer(1.0, lambda: setattr(options, "terminate", True))
        timer.start()
        try:
            return session.run([label], feeds, options)
        finally:
            timer.cancel()

    tenant = Tenant("t", "", "", 4, 1000, (), "", "active", 0, {})

    def with_watchdog() -> object:
        with TenantBudget(tenant):
            return run_session(session, [label], feeds)

    variants = {"session.run": bare, "Timer per run": with_timer, "watchdog": with_watchdog}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(ROUNDS):  # interleaved: the machine's load drifts between rounds
        for name, call in variants.items():
            results[name].append(timed(call))
    for name, figures in results.items():
        p50 = statistics.median(p50 for p50, _ in figures)
        p99 = statistics.median(p99 for _, p99 in figures)
        print(f"{name:15} p50 {p50:7.1f} us  p99 {p99:7.1f} us")


if __name__ == "__main__":
    main()
