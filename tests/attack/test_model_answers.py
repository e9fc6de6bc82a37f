"""Extreme rows and non-finite answers, for an ONNX tenant and a skops tenant: every reply is strict
JSON (RFC 8259: no NaN, Infinity or -Infinity) and none is a 5xx (`model_serving/answers.py`).

Rows at and past the range of each model's input precision are a 400; rows inside it on which the
model's arithmetic gives NaN (the demo LogisticRegression's softmax at 3e38, LabelSpreading far
from its data) are a 422 problem, never `NaN` in a 200.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from email.message import Message
from typing import Any, NoReturn

import pytest

from tests.attack.kit import Account, Api, Caller, Operator, Reply, assert_problem, caller, child_environment
from tests.support import REPO_ROOT

pytestmark = pytest.mark.blackbox

PREDICT = "/api/v1/predict"
FLOAT32_MAX = 3.4028234663852886e38
FLOAT64_MAX = 1.7976931348623157e308


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def strict_json(reply: Reply) -> Any:
    return json.loads(reply.body, parse_constant=_refuse_constant)


def extreme_rows(width: int) -> dict[str, list[float]]:
    """name -> one row of `width` finite values at the edges of float32 and float64."""
    return {
        "float32-max": [FLOAT32_MAX] * width,
        "alternating-3e38": [3e38 if j % 2 == 0 else -3e38 for j in range(width)],
        "just-past-float32": [1e39] + [1.0] * (width - 1),
        "1e150": [1e150] * width,
        "alternating-1e150": [1e150 if j % 2 == 0 else -1e150 for j in range(width)],
        "1e200": [1e200] * width,
        "1e308": [1e308] + [1.0] * (width - 1),
        "float64-max": [FLOAT64_MAX] * width,
        "minus-float64-max": [-FLOAT64_MAX] * width,
        "far-from-the-data": [100.0] * width,
        "tiny-subnormal": [5e-324] * width,
    }


def assert_strict_and_never_5xx(reply: Reply) -> Any:
    assert reply.status < 500, reply.body[:300]
    body = strict_json(reply)  # raises on NaN, Infinity, -Infinity
    if reply.status == 200:
        assert set(body) <= {"predictions", "probabilities", "model_version"}
    else:
        assert reply.status in (400, 422), reply.body[:300]
        assert_problem(reply)
    return body


def send_every_extreme_row(api: Api, who: Caller) -> dict[str, int]:
    statuses = {}
    for name, row in extreme_rows(who.card["n_features"]).items():
        for probabilities in (False, True):
            body = {"instances": [row], "parameters": {"probabilities": probabilities}}
            reply = api.request("POST", PREDICT, body, token=who.token)
            assert_strict_and_never_5xx(reply)
            statuses[f"{name}{' +probabilities' if probabilities else ''}"] = reply.status
    return statuses


def test_an_onnx_tenant_answers_every_extreme_row_in_strict_json(api: Api, caller_a: Caller) -> None:
    # Given alice, whose model is an ONNX graph (float32 inputs)
    assert caller_a.card["format"] == "onnx"
    # When she sends rows at the edges of float32 and float64, with and without probabilities
    statuses = send_every_extreme_row(api, caller_a)
    # Then no reply is a 5xx or invalid JSON; past float32's range is a 400; the NaN
    # probabilities of the review's case are a 422
    assert statuses["just-past-float32"] == statuses["float64-max"] == 400
    assert statuses["float32-max"] == 200
    assert statuses["alternating-3e38 +probabilities"] == 422


# --- a skops tenant (needs the operator to onboard it: local stack only) ---------------------------

_ONBOARD = """
import io, sys
import skops.io
from sklearn.datasets import load_iris
from sklearn.semi_supervised import LabelSpreading
from inferctl.cli import main
tenant, username, password, path = sys.argv[1:]
X, y = load_iris(return_X_y=True)
open(path, "wb").write(skops.io.dumps(LabelSpreading().fit(X, y)))
for argv, stdin in (
    (["create-tenant", tenant, "--model", path], ""),
    (["create-user", username, "--tenant", tenant, "--password-stdin"], password),
):
    if main(argv, stdin=io.StringIO(stdin), stdout=io.StringIO()) != 0:
        sys.exit("inferctl " + argv[0] + " failed")
"""


@pytest.fixture(scope="module")
def skops_caller(api: Api, operator: Operator, tmp_path_factory: pytest.TempPathFactory) -> Caller:
    """A throwaway tenant served by scikit-learn from an audited skops file: LabelSpreading, which
    skl2onnx cannot convert, and whose probabilities are NaN for rows far from its data."""
    suffix = uuid.uuid4().hex[:8]
    account = Account(f"skops-{suffix}", f"pw-{uuid.uuid4().hex}")
    path = tmp_path_factory.mktemp("skops") / "label_spreading.skops"
    onboarding = subprocess.run(
        [sys.executable, "-c", _ONBOARD, f"skops-{suffix}", account.username, account.password, str(path)],
        cwd=REPO_ROOT,
        env=child_environment() | dict(operator.env),
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert onboarding.returncode == 0, onboarding.stderr.decode(errors="replace")
    return caller(api, account)


@pytest.mark.local_only
def test_a_skops_tenant_answers_every_extreme_row_in_strict_json(api: Api, skops_caller: Caller) -> None:
    # Given a tenant whose model is served by scikit-learn (float64 inputs)
    assert skops_caller.card["format"] == "skops"
    # When it sends rows at the edges of float32 and float64, with and without probabilities
    statuses = send_every_extreme_row(api, skops_caller)
    # Then no reply is a 5xx or invalid JSON (the review's 500 was NearestCentroid at 1e308);
    # past float32's range is still answered, past the float64 limit is a 400
    assert statuses["just-past-float32"] == 200
    assert statuses["1e308"] == statuses["float64-max"] == 400
    # And the NaN probabilities of a row far from its data are a 422, its labels a 200
    assert statuses["far-from-the-data +probabilities"] == 422
    assert statuses["far-from-the-data"] == 200


def test_the_strict_parser_refuses_what_json_dumps_writes_by_default() -> None:
    # The check above would pass vacuously if the parser took NaN: it does not
    reply = Reply(200, Message(), b'{"probabilities": [[NaN]]}', 0.0)
    with pytest.raises(ValueError, match="NaN is not JSON"):
        strict_json(reply)
