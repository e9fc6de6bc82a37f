"""Memory: does the model cache's bound hold when more tenants than fit take turns?

In a fresh process: N tenants in moto, each onboarded with a RandomForest of about `model_bytes`
(deep trees: a pickle that is mostly numpy arrays, like real tenant models), and a cache bound
of `cache_models` models' worth (`ModelCacheBytes`). After one tenant's warm-up, with the setup's
garbage collected and handed back to the OS (`gc.collect`, glibc `malloc_trim`: the onboarding
of N tenants is not something a Lambda container does), the current RSS is the baseline. The
kernel's peak-RSS mark is then reset (/proc/self/clear_refs) and every tenant
is served twice round-robin through the real handler, so each request misses the cache and
evicts. Peak = VmHWM afterwards. The bound holds if peak <= baseline + bound (+10%).

Why VmHWM and not `getrusage().ru_maxrss`: at exec, Linux carries the spawning process's peak
RSS into the new process's `ru_maxrss` (subprocess spawns with vfork, so the "old" memory is the
parent's), and clear_refs does not reset that carried value. Spawned from a benchmark process of
~300 MB, the child's `ru_maxrss` reported the parent's size, not its own. VmHWM is this
process's own mark; `ru_maxrss` is kept in the JSON for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import io
import json
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPO_ROOT

BYTES_PER_TREE = 160_000  # a tree fitted below pickles to about this (measured)


@dataclass(frozen=True)
class MemoryReport:
    tenants: int
    model_bytes: int
    bound_bytes: int
    baseline_bytes: int
    peak_bytes: int
    final_bytes: int
    peak_reset: bool
    ru_maxrss_bytes: int
    cached_models: int
    requests: int

    @property
    def allowed_bytes(self) -> float:
        return self.baseline_bytes + self.bound_bytes * 1.1

    @property
    def within_bound(self) -> bool:
        return self.peak_bytes <= self.allowed_bytes


def make_model_bytes(target_bytes: int) -> bytes:
    """A fitted RandomForest (4 features) that pickles to roughly `target_bytes`, as the ONNX
    graph registration serves it."""
    import joblib  # noqa: PLC0415
    from sklearn.datasets import make_classification  # noqa: PLC0415
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415

    from registry.registration import register  # noqa: PLC0415

    X, y = make_classification(
        n_samples=6000, n_features=4, n_informative=4, n_redundant=0, flip_y=0.3, random_state=0
    )
    trees = max(1, round(target_bytes / BYTES_PER_TREE))
    model = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=0, protocol=5)
    return register("forest.pkl", buffer.getvalue(), trust_pickle=True).data


def _release_garbage() -> None:
    gc.collect()
    # Not glibc: no malloc_trim, and the baseline just includes the setup's free heap.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _current_rss() -> int:
    return _status_bytes("VmRSS")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    return _status_bytes("VmHWM")


def child(tenants: int, model_bytes: int, cache_models: int) -> dict[str, Any]:
    from bench.stack import (  # noqa: PLC0415
        authorized,
        instances_body,
        moto_stack,
        predict_event,
        predict_handler,
        runtime,
        token_for,
    )
    from bench.timing import quiet_stdout  # noqa: PLC0415
    from bench.warm import _context  # noqa: PLC0415
    from inferctl.onboarding import put_model  # noqa: PLC0415

    lambda_handler = predict_handler()
    context = _context()
    from model_serving.models import ModelCache  # noqa: PLC0415

    data = make_model_bytes(model_bytes)
    bound = cache_models * len(data) * ModelCache.MEMORY_PER_FILE_BYTE
    body = instances_body([[0.1, -0.2, 0.3, 0.4]])
    with moto_stack(parameter_overrides={"ModelCacheBytes": str(bound)}):
        events = []
        for i in range(tenants):
            tenant_id = f"tenant-{i:03d}"
            put_model(runtime(), tenant_id, data, 1000, new_tenant=True, filename="forest.onnx")
            events.append(authorized(predict_event(token_for(f"user{i}", tenant_id), body), tenant_id))
        with quiet_stdout():
            for _ in range(5):
                assert lambda_handler(events[0], context)["statusCode"] == 200
            _release_garbage()
            baseline = _current_rss()
            peak_reset = _reset_peak()
            requests = 0
            for _ in range(2):
                for event in events:
                    assert lambda_handler(event, context)["statusCode"] == 200
                    requests += 1
        peak = _peak_rss()
        cache = runtime().models
        return {
            "tenants": tenants,
            "model_bytes": len(data),
            "bound_bytes": cache.max_bytes,
            "baseline_bytes": baseline,
            "peak_bytes": peak,
            "final_bytes": _current_rss(),
            "peak_reset": peak_reset,
            "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
            "cached_models": len(cache),
            "requests": requests,
        }


def run_memory(tenants: int = 50, model_bytes: int = 2_000_000, cache_models: int = 10) -> MemoryReport:
    """The measurement, in a fresh process so nothing else this run loaded counts."""
    with tempfile.TemporaryDirectory() as scratch:
        result_path = Path(scratch) / "memory.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.memory",
                str(result_path),
                f"--tenants={tenants}",
                f"--model-bytes={model_bytes}",
                f"--cache-models={cache_models}",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        return MemoryReport(**json.loads(result_path.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("result_path", type=Path)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--model-bytes", type=int, default=2_000_000)
    parser.add_argument("--cache-models", type=int, default=10)
    args = parser.parse_args()
    result = child(args.tenants, args.model_bytes, args.cache_models)
    args.result_path.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
