"""The clients' time settings fit inside each function's `Timeout` (template.yaml), and the
grace of last known good values is the template's, wired to the functions.

docs/static-stability.md has the same budget as a table; model_runtime/deadlines.py enforces it
per request.
"""

from __future__ import annotations

from typing import Any

import pytest
from model_runtime import deadlines
from model_runtime.settings import read_settings
from samcli.yamlhelper import yaml_parse

from tests.support import TEMPLATE


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return document


def function_timeouts(template: dict[str, Any]) -> dict[str, float]:
    default = template["Globals"]["Function"]["Timeout"]
    return {
        name: float(resource["Properties"].get("Timeout", default))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def first_backoff_cap() -> float:
    return min(deadlines.BACKOFF_CAP_SECONDS, deadlines.BACKOFF_BASE_SECONDS)


def test_the_clients_retry_nothing_themselves_and_time_out_per_attempt() -> None:
    config = deadlines.CLIENT_CONFIG
    # botocore's own retries (up to 20 s of backoff) would not stop at the deadline: ours do
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert config.connect_timeout + config.read_timeout == deadlines.ATTEMPT_SECONDS


def test_every_function_can_afford_an_attempt_a_backoff_and_a_retry_within_its_timeout(
    template: dict[str, Any],
) -> None:
    timeouts = function_timeouts(template)
    assert set(timeouts) >= {"LoginFunction", "PredictFunction", "AuthorizerFunction"}
    for name, timeout in timeouts.items():
        budget = timeout - deadlines.ANSWER_RESERVE_SECONDS
        # What the deadline enforces on any call: an attempt, its backoff, a whole second attempt
        assert 2 * deadlines.ATTEMPT_SECONDS + first_backoff_cap() <= budget, name


def test_a_calls_every_attempt_and_backoff_fits_in_predict_and_login(template: dict[str, Any]) -> None:
    timeouts = function_timeouts(template)
    worst = deadlines.MAX_ATTEMPTS * deadlines.ATTEMPT_SECONDS + sum(
        min(deadlines.BACKOFF_CAP_SECONDS, deadlines.BACKOFF_BASE_SECONDS * 2**attempt)
        for attempt in range(deadlines.MAX_ATTEMPTS - 1)
    )
    for name in ("LoginFunction", "PredictFunction"):
        assert worst <= timeouts[name] - deadlines.ANSWER_RESERVE_SECONDS, name


def test_api_gateway_waits_longer_than_any_function() -> None:
    # REST API integrations time out at 29 s: a function's own deadline always comes first. The
    # registering function, which no request waits for (EventBridge invokes it), has its own.
    template = yaml_parse(TEMPLATE.read_text())
    timeouts = function_timeouts(template)
    behind_api = {name: timeouts[name] for name in timeouts if name != "RegisterFunction"}
    assert max(behind_api.values()) < 29
    events = template["Resources"]["RegisterFunction"]["Properties"]["Events"].values()
    assert [event["Type"] for event in events] == ["EventBridgeRule"]


def test_stale_grace_is_a_template_parameter_the_functions_read(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["StaleGraceSeconds"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] == 0  # 0 turns it off
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["STALE_GRACE_SECONDS"] == {"Ref": "StaleGraceSeconds"}
    # The settings' default is the template's, so a handler in a test behaves like the deployed one
    assert read_settings().stale_grace_seconds == parameter["Default"] == 300
