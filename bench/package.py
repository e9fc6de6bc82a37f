"""Deployment size: what `sam build` produces, against Lambda's limit, and whether the built layer
really provides numpy and scikit-learn.

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
LAYER = "ModelRuntimeLayer"
SOURCES = (REPO_ROOT / "template.yaml", REPO_ROOT / "functions", REPO_ROOT / "layers")
MIB = 1024 * 1024
LAMBDA_LIMIT_MIB = 250.0
TARGET_MIB = 180.0


@dataclass(frozen=True)
class LayerImport:
    ok: bool
    numpy_file: str = ""
    sklearn_file: str = ""
    sklearn_import_s: float = 0.0
    predictions: dict[str, list[int]] | None = None
    error: str = ""


@dataclass(frozen=True)
class PackageReport:
    built: bool
    reused: bool
    build_seconds: float
    error: str
    sizes_mib: dict[str, float]  # logical id -> unzipped size
    function_totals_mib: dict[str, float]  # function + layer
    layer_import: LayerImport | None

    @property
    def largest_total_mib(self) -> float:
        return max(self.function_totals_mib.values(), default=float("nan"))


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
    """In `python -S` with only the layer on PYTHONPATH (no venv site-packages): numpy and
    scikit-learn must come from the layer, and both demo models must load and predict."""
    code = f"""
import json, sys, time
started = time.perf_counter()
import numpy, sklearn, joblib
imported = time.perf_counter() - started
layer = {str(layer_python)!r}
assert not any("site-packages" in p for p in sys.path), sys.path
predictions = {{}}
for name, n in (("model_user_a.pkl", 4), ("model_user_b.pkl", 13)):
    model = joblib.load({str(MODELS_DIR)!r} + "/" + name)
    predictions[name] = model.predict(numpy.ones((2, n))).tolist()
print(json.dumps({{"numpy_file": numpy.__file__, "sklearn_file": sklearn.__file__,
                  "sklearn_import_s": imported, "predictions": predictions,
                  "from_layer": numpy.__file__.startswith(layer) and sklearn.__file__.startswith(layer)}}))
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
        facts["sklearn_file"],
        facts["sklearn_import_s"],
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
    from samcli.yamlhelper import yaml_parse  # noqa: PLC0415 - SAM's parser knows the CFN tags

    template = yaml_parse((BUILD_DIR / "template.yaml").read_text())
    sizes = {
        logical_id: tree_bytes(BUILD_DIR / logical_id) / MIB
        for logical_id in sorted(p.name for p in BUILD_DIR.iterdir() if p.is_dir())
    }
    # Every function takes the layer (template Globals).
    totals = {
        logical_id: sizes.get(logical_id, 0.0) + sizes.get(LAYER, 0.0)
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }
    return PackageReport(
        True, reused, build_seconds, error, sizes, totals, layer_import_check(BUILD_DIR / LAYER / "python")
    )
