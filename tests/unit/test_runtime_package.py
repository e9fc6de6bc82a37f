"""The runtime packages' structure: no import cycle, the core (`model_runtime`, every function's
layer) never imports the ML part (`model_serving`, predict's layer), no global configuration
changed by an import, and a container's state in one object (`runtime.Runtime`) that nothing else
shares."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_serving.models import PredictRuntime

from inferctl.target import configure
from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "layers" / "model_runtime" / "model_runtime"
ML_PACKAGE = REPO_ROOT / "layers" / "model_serving" / "model_serving"
HEAVY = {"numpy", "onnxruntime", "sklearn", "scipy", "skops", "joblib"}


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, wherever the import statement is (a function body, an
    `if TYPE_CHECKING:` block): a cycle or a boundary crossed through any of them counts."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module in ("model_runtime", "model_serving"):  # `from model_runtime import tokens`
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def sources() -> dict[str, Path]:
    return {
        f"{package.name}.{path.stem}": path
        for package in (PACKAGE, ML_PACKAGE)
        for path in sorted(package.glob("*.py"))
        if path.stem != "__init__"
    }


def import_graph() -> dict[str, set[str]]:
    modules = sources()
    return {name: imports_of(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that starts and ends at the same module, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" when fully explored

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_the_runtime_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "model_runtime.table" in graph and graph["model_runtime.access"]  # the graph is real
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_never_imports_the_ml_part_or_its_libraries() -> None:
    # Given every module of the core package (the layer login and the authorizer get)
    core = {name: path for name, path in sources().items() if name.startswith("model_runtime.")}
    assert {"model_runtime.http", "model_runtime.tokens", "model_runtime.table"} <= set(core)
    # Then none imports model_serving, numpy or a model library, even lazily
    crossing = {
        name: sorted(m for m in imports_of(path) if m.split(".")[0] in HEAVY | {"model_serving"})
        for name, path in core.items()
    }
    assert {name: found for name, found in crossing.items() if found} == {}
    # And the ML part is where payload validation and model loading live
    assert {"model_serving.payload", "model_serving.models", "model_serving.sklearn_models"} <= set(sources())


def test_storage_does_not_import_the_rules_or_the_state() -> None:
    graph = import_graph()
    assert graph["model_runtime.table"] == set()
    assert "model_runtime.tokens" not in graph["model_runtime.table"]
    assert "model_runtime.runtime" not in graph["model_runtime.tokens"]


CHILD = """
import json, sys
import sklearn

before = sklearn.get_config()
import model_serving.models, model_serving.sklearn_models, model_runtime.runtime  # noqa: E401
import registry.registration, inferctl.onboarding, inferctl.cli  # noqa: E401
after = sklearn.get_config()
print(json.dumps({"same": before == after, "changed": sorted(k for k in after if after[k] != before.get(k))}))
"""


def test_importing_the_modules_leaves_sklearn_configuration_unchanged() -> None:
    # Given a fresh interpreter whose scikit-learn configuration is read before any of our imports
    completed = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{REPO_ROOT}:{PACKAGE.parent}:{ML_PACKAGE.parent}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    # Then importing the runtime, the model modules and the operator CLI changed none of it
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == {"same": True, "changed": []}


def test_a_runtime_creates_nothing_until_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a container's state built from the environment, outside any AWS mock
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "7")
    runtime = PredictRuntime.from_environment()
    # Then it read the settings, and created no session, client, table, token or model cache yet
    assert runtime.settings.mapping_ttl_seconds == 7
    assert not {"session", "dynamodb", "s3", "kms", "table", "tokens", "models"} & set(vars(runtime))
    # And two containers share nothing
    other = PredictRuntime.from_environment()
    assert other.tenants is not runtime.tenants and other.tokens is not runtime.tokens


def test_inferctl_builds_its_own_runtime_without_touching_the_environment() -> None:
    # Given the functions' environment
    before = dict(os.environ)
    # When the CLI resolves explicit resources and a region
    target = configure(table="t", bucket="b", key_id="k", region="eu-west-1")
    # Then its runtime uses them, and the environment (so any function's settings) is unchanged
    settings = target.runtime.settings
    assert (settings.table_name, settings.model_bucket, settings.signing_key_id) == ("t", "b", "k")
    assert target.runtime.session.region_name == "eu-west-1"
    assert dict(os.environ) == before
