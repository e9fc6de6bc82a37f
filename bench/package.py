"""Deployment size: what `sam build` produces, against Lambda's limit, and whether the built layers
really provide numpy and ONNX Runtime and serve the demo models.

Sizes are apparent bytes (the sum of file sizes, what Lambda counts "unzipped"), in MiB: Lambda's
limit is 250 MiB (262,144,000 bytes) for a function plus all its layers. The build is reused
when `.aws-sam/build` is newer than every source it is built from; `--rebuild` forces it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import MODELS_DIR, REPO_ROOT

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
SHARED_LAYER = "ModelRuntimeLayer"
ONNX_LAYER = "ModelServingLayer"
SKLEARN_LAYER = "SklearnRuntimeLayer"
# What each deployment gets (template.yaml: Globals' layer, predict's own, the opt-in one).
DEPLOYMENTS = {
    "LoginFunction": ("LoginFunction", SHARED_LAYER),
    "PredictFunction": ("PredictFunction", SHARED_LAYER, ONNX_LAYER),
    "PredictFunction (EnableSklearnRuntime)": ("PredictFunction", SHARED_LAYER, ONNX_LAYER, SKLEARN_LAYER),
}
SOURCES = (REPO_ROOT / "template.yaml", REPO_ROOT / "functions", REPO_ROOT / "layers")
MIB = 1024 * 1024
LAMBDA_LIMIT_MIB = 250.0
TARGET_MIB = 110.0  # predict with its ONNX runtime


@dataclass(frozen=True)
class LayerImport:
    ok: bool
    numpy_file: str = ""
    runtime_file: str = ""
    import_s: float = 0.0
    predictions: dict[str, list[int]] | None = None
    error: str = ""


@dataclass(frozen=True)
class PackageReport:
    built: bool
    reused: bool
    build_seconds: float
    error: str
    sizes_mib: dict[str, float]  # logical id -> unzipped size
    function_totals_mib: dict[str, float]  # deployment (DEPLOYMENTS) -> function + its layers
    layer_import: LayerImport | None

    @property
    def largest_total_mib(self) -> float:
        return max(self.function_totals_mib.values(), default=float("nan"))

    @property
    def predict_onnx_mib(self) -> float:
        return self.function_totals_mib.get("PredictFunction", float("nan"))


def _newest_mtime(paths: tuple[Path, ...]) -> float:
    newest = 0.0
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if "__pycache__" not in path.parts and path.suffix != ".pyc":
                newest = max(newest, path.stat().st_mtime)
    return newest


def build_is_fresh() -> bool:
    marker = BUILD_DIR / "template.yaml"
    return marker.exists() and marker.stat().st_mtime > _newest_mtime(SOURCES)


def tree_bytes(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def layer_import_check(layer_python: Path) -> LayerImport:
    """In `python -S` with only the ONNX layer on PYTHONPATH (no venv site-packages): numpy and
    ONNX Runtime must come from the layer, and both demo models, as registration serves them,
    must load and predict."""
    import tempfile  # noqa: PLC0415

    from registry.registration import register  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as scratch:
        for name in ("model_user_a.pkl", "model_user_b.pkl"):
            data = register(name, (MODELS_DIR / name).read_bytes(), trust_pickle=True).data
            (Path(scratch) / f"{name}.onnx").write_bytes(data)
        code = f"""
import json, sys, time
started = time.perf_counter()
import numpy, onnxruntime
imported = time.perf_counter() - started
layer = {str(layer_python)!r}
assert not any("site-packages" in p for p in sys.path), sys.path
predictions = {{}}
for name, n in (("model_user_a.pkl", 4), ("model_user_b.pkl", 13)):
    data = open({scratch!r} + "/" + name + ".onnx", "rb").read()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    rows = numpy.ones((2, n), dtype=numpy.float32)
    predictions[name] = session.run(None, {{session.get_inputs()[0].name: rows}})[0].tolist()
from_layer = numpy.__file__.startswith(layer) and onnxruntime.__file__.startswith(layer)
print(json.dumps({{"numpy_file": numpy.__file__, "runtime_file": onnxruntime.__file__,
                  "import_s": imported, "predictions": predictions, "from_layer": from_layer}}))
"""
        environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(layer_python)}
        completed = subprocess.run(
            [sys.executable, "-S", "-c", code],
            check=False,
            env=environment,
            cwd="/",
            capture_output=True,
            text=True,
        )
    if completed.returncode != 0:
        return LayerImport(False, error=completed.stderr.strip().splitlines()[-1] if completed.stderr else "")
    facts = json.loads(completed.stdout.strip().splitlines()[-1])
    return LayerImport(
        bool(facts.pop("from_layer")),
        facts["numpy_file"],
        facts["runtime_file"],
        facts["import_s"],
        facts["predictions"],
    )


def run_package(rebuild: bool = False) -> PackageReport:
    reused = not rebuild and build_is_fresh()
    build_seconds, error = 0.0, ""
    if not reused:
        started = time.perf_counter()
        completed = subprocess.run(
            ["make", "build"], check=False, cwd=REPO_ROOT, capture_output=True, text=True
        )
        build_seconds = time.perf_counter() - started
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-15:]
            error = "\n".join(tail)
            return PackageReport(False, False, build_seconds, error, {}, {}, None)
    sizes = {
        logical_id: tree_bytes(BUILD_DIR / logical_id) / MIB
        for logical_id in sorted(p.name for p in BUILD_DIR.iterdir() if p.is_dir())
    }
    totals = {name: sum(sizes.get(part, 0.0) for part in parts) for name, parts in DEPLOYMENTS.items()}
    check = layer_import_check(BUILD_DIR / ONNX_LAYER / "python")
    return PackageReport(True, reused, build_seconds, error, sizes, totals, check)
