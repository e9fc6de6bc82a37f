"""`make bench`: how fast and how big the service is, next to the patterns it competes with.

Run `python -m bench` (full) or `python -m bench --quick` (no `sam build`, no cold starts).
Results: a table on stdout, JSON and a PNG chart under `bench/results/` (git-ignored).

`model_runtime` (the layer's package) is importable because `make venv` installs the project; the
cold-start children get the layer's source folder through PYTHONPATH instead, as Lambda gets
/opt/python.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = REPO_ROOT / "layers" / "model_runtime"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
MODELS_DIR = REPO_ROOT / "models"
