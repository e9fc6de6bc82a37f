"""`make bench`: how fast and how big the service is, next to the patterns it competes with.

Run `python -m bench` (full) or `python -m bench --quick` (no `sam build`, no cold starts).
Results: a table on stdout, JSON and a PNG chart under `bench/results/` (git-ignored).

Like Lambda, which puts a layer's `python/` folder on `sys.path`, the benchmark puts the layer's
source folder there; pytest does the same through its `pythonpath` setting.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = REPO_ROOT / "layers" / "model_runtime"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
MODELS_DIR = REPO_ROOT / "models"

if str(LAYER_SOURCE) not in sys.path:
    sys.path.insert(0, str(LAYER_SOURCE))
