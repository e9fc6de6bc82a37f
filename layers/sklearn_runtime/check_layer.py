"""Run by the layer's Makefile after trimming: every serving module of the built layer imports.

Run with `python -S` and PYTHONPATH set to the built layer only, so nothing is borrowed from a venv
(numpy, which the ONNX layer provides, comes from a scratch folder the Makefile removes).
"""

import importlib
import pkgutil
import sys

import sklearn

# Not serving code: tests, build helpers, sample-data loaders, optional array-API backends.
SKIP = (
    ".tests",
    "._build_utils",
    ".conftest",
    ".estimator_checks",
    ".experimental.enable_",
    ".datasets",
    ".externals",
)
names = [
    m.name for m in pkgutil.walk_packages(sklearn.__path__, "sklearn.") if not any(s in m.name for s in SKIP)
]
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:  # report every failure, not only the first
        failed.append(f"{name}: {type(error).__name__}: {error}")
for name in ("skops.io", "scipy.sparse"):
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
if failed:
    sys.exit("layer import check failed:\n" + "\n".join(failed))
print(f"scikit-learn layer import check: {len(names)} scikit-learn modules and skops import")
