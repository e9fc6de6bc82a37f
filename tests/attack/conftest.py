"""The attack suite's API: one for the whole session, reached over HTTP only.

Without SMOKE_URL, `python -m local.serve` runs in a subprocess on free loopback ports, with its
own moto server and the demo users alice (tenant-a, 4 features) and bob (tenant-b, 13 features).
A subprocess, not a thread: the unit tests' autouse fixtures reset boto3 clients and the
environment around every test, which would pull the stack's endpoint from under it.

With LOCAL_STACK_URL and LOCAL_STACK_DIR (`make test-sam-local`), it attacks a local stack that
is already running, whose API is served elsewhere (`sam local start-api`, functions in Docker
containers): the directory holds the stack's env.sh, which gives the operator's access.

With SMOKE_URL (`make smoke URL=https://...`), the suite attacks that deployment as
SMOKE_USERNAME/SMOKE_PASSWORD (tenant 1) and SMOKE_USERNAME_2/SMOKE_PASSWORD_2 (tenant 2). Tests
marked `local_only` need the operator's own access to the stack (the CLI, the moto endpoint)
and are deselected there.

Plain helpers (`Api`, `Caller`, `Operator`, the assertions...) are in kit.py, imported by the tests.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attack.kit import (
    DEPLOYED,
    RUNNING_STACK_DIR,
    RUNNING_STACK_URL,
    SMOKE_URL,
    TIMINGS,
    Account,
    Api,
    Caller,
    LocalStack,
    Operator,
    Provisioned,
    caller,
    read_env_sh,
    smoke_accounts,
    start_local_stack,
    start_provisioning,
)
from tests.forge import Attacker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_only: needs operator access to the local stack; deselected with SMOKE_URL"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not DEPLOYED:
        return
    local_only = [item for item in items if item.get_closest_marker("local_only")]
    if local_only:
        config.hook.pytest_deselected(items=local_only)
        items[:] = [item for item in items if not item.get_closest_marker("local_only")]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("attack timings (informational)")
    for label, status, seconds in sorted(TIMINGS, key=lambda t: -t[2]):
        terminalreporter.line(f"{seconds * 1000:9.1f} ms  {status}  {label}")


# --- callers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def caller_a(api: Api) -> Caller:
    """Tenant 1's user: alice (tenant-a, 4 features) locally."""
    return caller(api, api.accounts[0])


@pytest.fixture(scope="session")
def caller_b(api: Api) -> Caller:
    """Tenant 2's user: bob (tenant-b, 13 features) locally."""
    return caller(api, api.accounts[1])


@pytest.fixture(scope="session")
def attacker() -> Attacker:
    return Attacker.generate()


# --- the API under attack -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack | None]:
    if DEPLOYED:
        yield None
        return
    if RUNNING_STACK_URL:
        env_sh = Path(RUNNING_STACK_DIR) / "env.sh"
        moto_url = read_env_sh(env_sh)["AWS_ENDPOINT_URL"]
        stack = LocalStack(None, RUNNING_STACK_URL, moto_url, env_sh, None)
    else:
        stack = start_local_stack(tmp_path_factory.mktemp("attack-stack"))
    stack.provisioned = Provisioned.new()
    stack.provisioning = start_provisioning(read_env_sh(stack.env_sh), stack.provisioned)
    try:
        yield stack
    finally:
        returncode = stack.stop()
        if stack.process is not None:  # else its owner stops it
            assert returncode is not None, "the local stack is still running"
            assert returncode in (0, -signal.SIGTERM), f"the local stack exited {returncode}"


@pytest.fixture(scope="session")
def api(local_stack: LocalStack | None) -> Api:
    if local_stack is None:
        return Api(SMOKE_URL, smoke_accounts(), deployed=True)
    env = read_env_sh(local_stack.env_sh)
    secrets = (env["TABLE_NAME"], env["MODEL_BUCKET"], env["SIGNING_KEY_ID"], local_stack.moto_url)
    return Api(
        local_stack.url,
        (Account("alice", "alice-local-demo"), Account("bob", "bob-local-demo")),
        deployed=False,
        secrets=secrets,
    )


# --- the operator's access (local stack only) ---------------------------------------------------


@pytest.fixture(scope="session")
def operator(local_stack: LocalStack | None) -> Operator:
    assert local_stack is not None and local_stack.provisioning and local_stack.provisioned, (
        "operator access exists only on the local stack (mark the test local_only)"
    )
    _, errors = local_stack.provisioning.communicate(timeout=180)
    assert local_stack.provisioning.returncode == 0, errors.decode(errors="replace")
    return Operator(read_env_sh(local_stack.env_sh), local_stack.provisioned)
