"""The tests' layout: a conftest holds fixtures and hooks, which reach the tests by themselves;
plain helpers live in normal modules (tests/support.py, tests/forge.py, tests/attack/kit.py) and
are imported from there. No test module imports from a conftest."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO_ROOT


def conftest_imports(source: str) -> list[str]:
    """The import statements of `source` that reach a conftest module, as `line: module`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            # `from tests.attack.conftest import x`, or else `from tests.attack import conftest`
            modules = [base] if is_conftest(base) else [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [f"{node.lineno}: {module}" for module in modules if is_conftest(module)]
    return found


def is_conftest(module: str) -> bool:
    return "conftest" in module.lstrip(".").split(".")


def sources_under_tests() -> list[Path]:
    return sorted((REPO_ROOT / "tests").rglob("*.py"))


def test_no_test_module_imports_from_a_conftest() -> None:
    # Given every Python file under tests/
    sources = sources_under_tests()
    assert len(sources) > 20
    # Then none imports from a conftest: helpers come from normal modules
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{hit}"
        for path in sources
        for hit in conftest_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_conftest_import_check_catches_one() -> None:
    flagged = [
        "from tests.attack.conftest import Api",
        "from tests.conftest import stack",
        "import tests.conftest",
        "import tests.attack.conftest as c",
        "from tests.attack import conftest",
        "from .conftest import Api",
        "from . import conftest",
        "from conftest import Api",
        "def f():\n    from tests.conftest import stack\n",
    ]
    for source in flagged:
        assert conftest_imports(source), source
    # Normal modules, and names that merely contain the word, are fine
    for source in (
        "from tests.attack.kit import Api",
        "from tests.support import REPO_ROOT",
        "import conftest_helpers",
        "from tests.attack.kit import conftest_like",
    ):
        assert conftest_imports(source) == [], source
