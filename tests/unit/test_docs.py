"""Docs stay true to the code: every repository path the prose names exists.

Checked: the README, the decision records, and the comments and docstrings of the Python sources
and the template. A path counts when it has a folder part (`inferctl/cli.py`,
`model_serving/payload.py`); it may be written from the repository's root, from a layer's folder
(as Lambda sees `model_runtime/...`) or from the file's own folder. Files that tools write at run
time (`.local/`, `.aws-sam/`) are not in the repository and are not checked.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support import REPO_ROOT

PATH = re.compile(r"(?<![\w./<>{$-])((?:[\w-]+/)+[\w.-]+\.(?:py|md|yaml|yml|json|toml|txt|in|cfg))\b")
GENERATED = (".local/", ".aws-sam/", "bench/results/")


def tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", *patterns], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO_ROOT / name for name in listed]


def missing_paths(path: Path, text: str) -> list[str]:
    roots = [REPO_ROOT, path.parent, *sorted((REPO_ROOT / "layers").iterdir())]
    return [
        ref
        for ref in PATH.findall(text)
        if not ref.startswith(GENERATED) and not any((root / ref).exists() for root in roots)
    ]


def test_every_path_the_docs_name_exists() -> None:
    # Given the prose a newcomer reads: README, decision records, the sources' comments, the template
    files = tracked("*.md", "*.py", "template.yaml")
    assert len(files) > 50 and REPO_ROOT / "README.md" in files  # the listing is real
    # Then every repository path they name is in the repository
    missing = {
        str(path.relative_to(REPO_ROOT)): found
        for path in files
        if path != Path(__file__) and (found := missing_paths(path, path.read_text(encoding="utf-8")))
    }
    assert missing == {}


def test_no_doc_cites_a_design_brief_outside_the_repository() -> None:
    # Given the same prose, tests included: the brief the product grew from is not shipped
    for path in tracked("*.md", "*.py", "*.yaml", "Makefile", "*/Makefile"):
        if path == Path(__file__):
            continue
        # Then nothing sends a reader to it: what the code relies on is in README and docs/
        assert "DESIGN.md" not in path.read_text(encoding="utf-8"), path


def test_the_check_catches_a_path_that_is_gone() -> None:
    # Given prose naming a module that moved, and one that exists
    text = "see model_runtime/payload.py and model_serving/payload.py, and tests/nowhere/x.py"
    # Then the moved and the missing ones are named
    assert missing_paths(REPO_ROOT / "README.md", text) == ["model_runtime/payload.py", "tests/nowhere/x.py"]


def test_the_readme_is_a_front_door_that_links_every_doc() -> None:
    # Given the README and the reference material in docs/
    readme = (REPO_ROOT / "README.md").read_text()
    docs = sorted(path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "docs").glob("*.md"))
    # Then the README stays short (issue #18: at most 250 lines), and each doc is one link away
    assert len(readme.splitlines()) <= 250
    assert [doc for doc in docs if f"({doc})" not in readme] == []
