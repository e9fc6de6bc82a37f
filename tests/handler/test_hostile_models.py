"""A tenant's model that is slow or fails inside ONNX Runtime is the tenant's problem, never the
service's: predict cuts every run off at the tenant's run budget (503, `ModelRunBudgetExceeded`),
answers an ONNX Runtime failure with a 502 (`ModelRunFailed`), and serves the next request
(model_serving/run_budget.py). Registration refuses a graph that is too slow on extreme rows
(registry/run_probe.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest
from model_runtime.table import DEFAULT_RUN_BUDGET_MS
from model_serving import run_budget

from functions.predict.app import lambda_handler
from inferctl.cli import main
from inferctl.onboarding import OnboardingError, put_model, set_run_budget
from registry import run_probe
from registry.registration import RegistrationError, register
from tests.hostile_graphs import odd_batch_failing_graph, slow_graph
from tests.support import FakeLambdaContext, Stack, assert_problem, current_runtime, load_event, use_runtime

BUDGET_MS = 20  # the slow graph needs 220-290 ms for 1 000 rows here, and under 1 ms for one


def predict(token: str, rows: int) -> dict[str, Any]:
    event = load_event("predict_alice", alice_token=token)
    body = {"instances": np.ones((rows, 4)).tolist()}
    return lambda_handler({**event, "body": json.dumps(body)}, FakeLambdaContext())


def serve(demo: Stack, graph: bytes, budget_ms: int | None = None) -> None:
    """tenant-a now serves `graph` (registered as the operator would, whatever its interface), with
    `budget_ms`."""
    put_model(
        current_runtime(),
        "tenant-a",
        graph,
        None,
        new_tenant=False,
        filename="hostile.onnx",
        allow_interface_change=True,
    )
    if budget_ms is not None:
        set_run_budget(current_runtime(), "tenant-a", budget_ms)
    use_runtime()  # a fresh container: the new mapping and model, no cache


def tenant_events(output: str) -> list[str]:
    """The per-tenant event metrics in the EMF lines of `output`."""
    names = []
    for line in output.splitlines():
        if line.startswith("{") and '"tenant"' in line:
            document = json.loads(line)
            names += [n for n in ("ModelRunBudgetExceeded", "ModelRunFailed") if n in document]
    return names


def test_a_run_past_the_tenant_budget_is_a_503_and_the_next_request_is_served(
    demo: Stack, alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given tenant-a serving a graph the allowlist admits but that is slow on a full batch, with
    # a 20 ms run budget
    serve(demo, slow_graph(), BUDGET_MS)
    capsys.readouterr()
    # When alice sends 1 000 rows
    response = predict(alice_token, 1000)
    # Then the run is cut off: a 503 with a fixed detail, counted for the tenant
    body = assert_problem(response, 503)
    assert body["detail"] == "The model took longer than this tenant's run budget allows."
    assert tenant_events(capsys.readouterr().out) == ["ModelRunBudgetExceeded"]
    # And the same container serves the next request (one row: well within the budget)
    ok = predict(alice_token, 1)
    assert ok["statusCode"] == 200, ok["body"]
    assert json.loads(ok["body"])["predictions"] == [0]


def test_without_the_budget_the_same_request_is_answered(demo: Stack, alice_token: str) -> None:
    # Given the same slow graph under the default budget (1 s)
    serve(demo, slow_graph())
    assert demo.tenant("tenant-a").run_budget_ms == DEFAULT_RUN_BUDGET_MS
    # Then 1 000 rows are answered: the 503 above is the budget's doing
    assert predict(alice_token, 1000)["statusCode"] == 200


def test_an_onnx_runtime_failure_is_a_502_of_the_tenant_and_the_next_request_is_served(
    demo: Stack, alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given tenant-a serving a graph that ONNX Runtime fails on odd batches
    serve(demo, odd_batch_failing_graph())
    capsys.readouterr()
    # When alice sends one row
    response = predict(alice_token, 1)
    # Then the answer is the tenant's model failing: a 502 with a fixed detail, never a 500, and
    # nothing of ONNX Runtime's message
    body = assert_problem(response, 502)
    assert body["detail"] == "The model failed to answer these rows."
    assert "Reshape" not in response["body"]
    assert tenant_events(capsys.readouterr().out) == ["ModelRunFailed"]
    # And two rows are served by the same container
    assert predict(alice_token, 2)["statusCode"] == 200


def test_a_graph_too_slow_on_extreme_rows_is_refused_at_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a registration probe budget the slow graph cannot meet on 1 000 extreme rows
    monkeypatch.setattr(run_probe, "PROBE_BUDGET_MS", BUDGET_MS)
    # When it is registered, then it is refused, saying why
    with pytest.raises(RegistrationError, match=r"longer than the run budget \(20 ms\).*converted estimator"):
        register("slow.onnx", slow_graph())


def test_the_probe_rows_hold_the_limits_zeros_and_negatives() -> None:
    rows = run_probe.probe_rows(4, np.float32)
    assert rows.shape == (run_probe.PROBE_BATCH_ROWS, 4)
    for value in (np.finfo(np.float32).max, -np.finfo(np.float32).max, 0.0, -1.0, np.finfo(np.float32).tiny):
        assert (rows == np.float32(value)).all(axis=1).any(), value
    assert np.isfinite(rows).all()
    assert (run_probe.probe_rows(3, np.float64) == np.finfo(np.float64).max).all(axis=1).any()


def test_the_cli_sets_the_run_budget_within_its_bounds(
    demo: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the operator sets tenant-a's budget
    assert main(["set-run-budget", "tenant-a", "250"]) == 0
    # Then the mapping holds it, and the operator is told what it does
    assert demo.tenant("tenant-a").run_budget_ms == 250
    assert "cut off after 250 ms" in capsys.readouterr().out
    # And a budget past predict's timeout is one error line, nothing written
    assert main(["set-run-budget", "tenant-a", "60000"]) == 1
    assert capsys.readouterr().err.startswith("error: the run budget must be 1 to 5000 ms")
    assert demo.tenant("tenant-a").run_budget_ms == 250
    with pytest.raises(OnboardingError):
        set_run_budget(current_runtime(), "tenant-a", 0)


def test_the_watchdog_goes_idle_and_wakes_for_the_next_run(demo: Stack, alice_token: str) -> None:
    # Given a watchdog that idles after 50 ms without runs
    watchdog = run_budget.Watchdog(tick_seconds=0.002, idle_seconds=0.05)
    serve(demo, slow_graph(), BUDGET_MS)
    original = run_budget.watchdog
    run_budget.watchdog = watchdog
    try:
        predict(alice_token, 1)
        time.sleep(0.2)
        assert watchdog._next_look == float("inf")  # asleep with no timeout: an idle container costs nothing
        # When a slow run comes, then it is still cut off
        assert predict(alice_token, 1000)["statusCode"] == 503
    finally:
        run_budget.watchdog = original
