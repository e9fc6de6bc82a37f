"""Settings are checked in the functions' init phase: a bad deployment fails its cold start loudly.

Each case imports a handler in a fresh process, as Lambda's init does, with one setting missing or
malformed, and expects the import to fail with one log line that names the variable.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT, child_environment

LAYER = REPO_ROOT / "layers" / "model_runtime"
SECRET_LOOKING_VALUE = "arn:aws:kms:us-east-1:123456789012:key/not-a-number"
GOOD = {"TABLE_NAME": "table", "MODEL_BUCKET": "bucket", "SIGNING_KEY_ID": "key-id"}


def cold_start(module: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = child_environment([REPO_ROOT, LAYER], "test", without=tuple(GOOD), **environment)
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True, check=False
    )


def critical_lines(output: str) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("level") == "CRITICAL"]


CASES = [
    ("functions.predict.app", "TABLE_NAME", None, "is required"),
    ("functions.predict.app", "MODEL_BUCKET", None, "is required"),
    ("functions.predict.app", "SIGNING_KEY_ID", "  ", "is required"),
    ("functions.login.app", "TABLE_NAME", None, "is required"),
    ("functions.login.app", "SIGNING_KEY_ID", None, "is required"),
    ("functions.authorizer.app", "TABLE_NAME", None, "is required"),
    ("functions.authorizer.app", "SIGNING_KEY_ID", "", "is required"),
    ("functions.predict.app", "MAX_BODY_BYTES", SECRET_LOOKING_VALUE, "must be a whole number"),
    ("functions.predict.app", "MAPPING_TTL_SECONDS", "-1", "must be at least 0"),
    ("functions.predict.app", "STALE_GRACE_SECONDS", "-5", "must be at least 0"),
    ("functions.login.app", "LOCKOUT_THRESHOLD", "0", "must be at least 1"),
    ("functions.login.app", "TOKEN_TTL_SECONDS", "15m", "must be a whole number"),
]


@pytest.mark.parametrize(("module", "variable", "value", "problem"), CASES)
def test_a_bad_setting_fails_the_init_naming_the_variable(
    module: str, variable: str, value: str | None, problem: str
) -> None:
    # Given a function's environment with one setting missing, blank or malformed
    environment = {k: v for k, v in GOOD.items() if k != variable}
    if value is not None:
        environment[variable] = value
    # When the handler module is imported, as Lambda's init phase does
    run = cold_start(module, environment)
    # Then the init fails, with one critical log line naming the variable and the problem
    assert run.returncode != 0
    assert "SettingsError" in run.stderr
    assert critical_lines(run.stdout) == [
        {**critical_lines(run.stdout)[0], "variable": variable, "problem": problem}
    ]
    # And the value itself is printed nowhere
    assert SECRET_LOOKING_VALUE not in run.stdout + run.stderr


@pytest.mark.parametrize("module", ["functions.predict.app", "functions.login.app"])
def test_a_complete_environment_initialises(module: str) -> None:
    # Given every required setting
    # When the handler module is imported
    run = cold_start(module, GOOD)
    # Then the init succeeds and logs nothing critical
    assert run.returncode == 0, run.stderr
    assert critical_lines(run.stdout) == []
