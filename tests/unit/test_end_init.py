"""Each function's init runs without the garbage collector and ends by freezing what it built
(model_runtime/runtime.py, `end_init`), so neither init's imports nor the first request's
allocations set off full collections over the imported modules."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.stack import FUNCTION_SETTINGS
from tests.support import REPO_ROOT


@pytest.mark.parametrize(
    "function", ["predict", "login", "authorizer", "admin", "history", "history_writer", "register"]
)
def test_a_functions_init_leaves_its_objects_frozen(function: str) -> None:
    # Given a fresh interpreter, as Lambda starts one
    code = f"import gc, functions.{function}.app; print(gc.isenabled(), gc.get_freeze_count())"
    environment = os.environ | dict.fromkeys(FUNCTION_SETTINGS, "init-check")
    # When it imports the function's module (Lambda's init)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Then the objects init built are out of the collector's sight, and the collector runs again
    enabled, frozen = out.strip().splitlines()[-1].split()
    assert enabled == "True"
    assert int(frozen) > 10_000
