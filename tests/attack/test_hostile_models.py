"""Hostile models (issue #23), against the local stack with the operator's own CLI: a graph that
reads a file through external data, or whose loop count or output size comes from the request's
values, never registers; a graph that registers but is slow on a full batch is cut off at its
tenant's run budget (503), and one that ONNX Runtime fails on is a 502; neither touches another
tenant, and the next request is served."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.attack.kit import (
    Account,
    Api,
    Caller,
    Operator,
    assert_problem,
    assert_still_served,
    child_environment,
)
from tests.hostile_graphs import (
    PLACES,
    constant_of_shape,
    loop_from_input,
    odd_batch_failing_graph,
    slow_graph,
)
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.blackbox, pytest.mark.local_only]

PREDICT = "/api/v1/predict"


def inferctl(operator: Operator, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferctl", *argv],
        cwd=REPO_ROOT,
        env=child_environment() | operator.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


HOSTILE = {
    "external data in a sparse attribute": (PLACES["sparse tensor attribute"], "external data"),
    "external data in a subgraph's sparse initializer": (
        PLACES["sparse initializer of a subgraph"],
        "external data",
    ),
    "external data in a branch body's tensor list": (
        PLACES["tensor list attribute in a branch body"],
        "external data",
    ),
    "loop counted by the request": (loop_from_input, "operator Loop is not served"),
    "constant of a shape from the request": (
        lambda: constant_of_shape(shape_from_input=True),
        "operator ConstantOfShape is not served",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_graph_never_registers(operator: Operator, tmp_path: Path, case: str) -> None:
    # Given a graph, and the file its external data names, in the operator's working directory
    make, message = HOSTILE[case]
    model = tmp_path / "model.onnx"
    model.write_bytes(make().SerializeToString())
    tenant = f"hostile-{uuid.uuid4().hex[:8]}"
    # When the operator registers it
    run = inferctl(operator, "create-tenant", tenant, "--model", str(model))
    # Then one error line that names the reason, and no tenant
    assert run.returncode == 1, run.stdout
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert inferctl(operator, "list-tenants", "--json").stdout.count(tenant) == 0


def onboard(
    operator: Operator, api: Api, graph: bytes, tmp_path: Path, budget_ms: int | None = None
) -> Caller:
    """A throwaway tenant serving `graph`, with a user logged in."""
    tenant = f"hostile-{uuid.uuid4().hex[:8]}"
    model = tmp_path / f"{tenant}.onnx"
    model.write_bytes(graph)
    account = Account(f"user-{tenant}", f"pw-{uuid.uuid4().hex}")
    steps = [
        (["create-tenant", tenant, "--model", str(model)], ""),
        *([(["set-run-budget", tenant, str(budget_ms)], "")] if budget_ms else []),
        (["create-user", account.username, "--tenant", tenant, "--password-stdin"], account.password),
    ]
    for argv, stdin in steps:
        run = inferctl(operator, *argv, stdin=stdin)
        assert run.returncode == 0, run.stderr
    token = api.login(account)
    return Caller(account, token, {"n_features": 4, "max_batch": 1000, "version": ""})


def test_a_slow_graph_is_cut_off_at_its_budget_and_others_are_served(
    api: Api, operator: Operator, caller_a: Caller, tmp_path: Path
) -> None:
    # Given a tenant whose registered graph takes a few hundred ms on 1 000 rows, with a 20 ms budget
    slow = onboard(operator, api, slow_graph(), tmp_path, budget_ms=20)
    # When its user sends a full batch
    reply = api.request("POST", PREDICT, {"instances": slow.rows(1000)}, token=slow.token, allow_5xx=True)
    # Then the run is cut off: a 503 problem with a fixed detail
    assert reply.status == 503
    assert assert_problem(reply)["detail"] == "The model took longer than this tenant's run budget allows."
    # And the next request (one row) is served, and so is another tenant
    one = api.request("POST", PREDICT, {"instances": slow.rows(1)}, token=slow.token)
    assert one.status == 200, one.body[:300]
    assert_still_served(api, caller_a)


def test_a_graph_onnx_runtime_fails_on_is_a_502_not_a_500(
    api: Api, operator: Operator, caller_a: Caller, tmp_path: Path
) -> None:
    # Given a tenant whose graph ONNX Runtime fails on odd batches
    failing = onboard(operator, api, odd_batch_failing_graph(), tmp_path)
    # When its user sends one row
    reply = api.request("POST", PREDICT, {"instances": failing.rows(1)}, token=failing.token, allow_5xx=True)
    # Then the tenant's model failed: a 502 problem, nothing of ONNX Runtime's message
    assert reply.status == 502
    assert assert_problem(reply)["detail"] == "The model failed to answer these rows."
    # And two rows are served, and so is another tenant
    assert api.request("POST", PREDICT, {"instances": failing.rows(2)}, token=failing.token).status == 200
    assert_still_served(api, caller_a)
