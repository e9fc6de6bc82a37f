"""The project is installed, not path-hacked: `make venv` installs the lock, then this project
(pyproject.toml) without resolving dependencies. The operator CLI is a console command, nothing
edits `sys.path`, and pyproject.toml, requirements-dev.in, the lock and the layers' pins agree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SKIPPED_DIRS = {".venv", ".venv-checkov", ".aws-sam", ".git", ".local", "node_modules"}
SYS_PATH_EDIT = re.compile(r"sys\.path\s*(?:\.\s*(?:insert|append|extend)\b|\[|\+=|=(?!=))")
SITE_EDIT = re.compile(r"site\.addsitedir\s*\(")


def requirement_lines(path: Path) -> list[str]:
    """A requirements file's requirement lines (no comments, blank lines or `-r` includes)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in requirement_lines(REPO_ROOT / "requirements-dev.txt"):
        name, _, version = line.partition("==")
        pins[canonicalize_name(name)] = version
    return pins


def declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    return [
        Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def python_sources() -> list[Path]:
    """Every .py file of the repository, without walking into the venvs and build outputs (an
    rglob filtered afterwards walked them all: 16 s of the suite)."""
    sources = []
    for directory, subdirectories, files in os.walk(REPO_ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_DIRS]
        sources += [Path(directory) / name for name in files if name.endswith(".py")]
    return sources


def test_inferctl_is_a_console_command_of_the_venv() -> None:
    # Given the venv's console script, next to its python
    script = Path(sys.executable).parent / "inferctl"
    # When it is asked for help from outside the repository
    done = subprocess.run(
        [script, "--help"], check=False, capture_output=True, text=True, timeout=120, cwd="/"
    )
    # Then it answers and exits 0, its usage line naming the command as invoked
    assert done.returncode == 0, done.stderr
    assert "create-tenant" in done.stdout
    assert done.stdout.startswith("usage: inferctl ")


def test_python_m_inferctl_works_from_any_directory(tmp_path: Path) -> None:
    # Given a directory that is not the repository (nothing importable by accident)
    # When the CLI is run as a module
    done = subprocess.run(
        [sys.executable, "-m", "inferctl", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    # Then the installed packages are found, and the usage line names the command as invoked
    assert done.returncode == 0, done.stderr
    assert "create-tenant" in done.stdout
    assert done.stdout.startswith("usage: python -m inferctl ")


def test_no_source_edits_sys_path() -> None:
    # Given every Python source of the repository
    sources = python_sources()
    assert len(sources) > 50
    # Then none puts anything on sys.path itself: the project is installed instead
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SYS_PATH_EDIT.search(line) or SITE_EDIT.search(line)
    ]
    assert offenders == []


def test_the_sys_path_check_catches_an_edit() -> None:
    path = "sys" + ".path"  # in pieces, so that this file passes its own check
    for line in (f"{path}.insert(0, 'x')", f"{path}.append(x)", f"{path}[:0] = [x]", f"{path} += [x]"):
        assert SYS_PATH_EDIT.search(line), line
    # Reading it is fine (bench/package.py checks a layer's import path this way)
    assert not SYS_PATH_EDIT.search(f'assert not any("site-packages" in p for p in {path}), {path}')
    assert not SYS_PATH_EDIT.search(f"if {path} == before:")


def test_every_declared_dependency_is_locked_at_a_version_it_allows() -> None:
    # Given the lock
    pins = lock()
    # Then each dependency pyproject.toml declares is pinned there, within its specifier
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements-dev.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])


def test_requirements_dev_in_and_pyproject_name_the_same_direct_dependencies() -> None:
    # Given the direct dependencies requirements-dev.in lists (beside the layers' files it includes)
    listed = {
        canonicalize_name(Requirement(line).name)
        for line in requirement_lines(REPO_ROOT / "requirements-dev.in")
    }
    project = PYPROJECT["project"]
    runtime = {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}
    dev = {canonicalize_name(Requirement(text).name) for text in project["optional-dependencies"]["dev"]}
    # Then pyproject.toml declares each of them, the development-only ones in the dev extra
    assert listed - runtime == dev


def test_layer_pins_are_the_locks_pins() -> None:
    # Given the lock and each Lambda layer's pinned requirements
    pins = lock()
    for path in sorted((REPO_ROOT / "layers").glob("*/requirements.txt")):
        for line in requirement_lines(path):
            name, _, version = line.partition("==")
            # Then the venv the tests run in has the versions Lambda runs
            assert pins.get(canonicalize_name(name)) == version, f"{path.relative_to(REPO_ROOT)}: {line}"


def test_the_build_backend_is_the_locks_setuptools() -> None:
    # Given the build backend pyproject.toml pins for `pip install -e .`
    (backend,) = PYPROJECT["build-system"]["requires"]
    requirement = Requirement(backend)
    # Then it is the version the lock installs
    assert requirement.specifier == Requirement(f"setuptools=={lock()['setuptools']}").specifier
