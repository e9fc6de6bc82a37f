"""The operator CLI's one error boundary (`inferctl.cli.main`): whatever fails, from bad input to
a bug, the operator reads one `error: ...` line that says what to do, and the exit status is 1.
Never a traceback. And key rotation never guesses the stack's timings.
"""

from __future__ import annotations

import calendar
import io
import json
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from inferctl import onboarding
from inferctl.cli import main
from inferctl.onboarding import record_key
from tests.support import MODELS_DIR, CliRun, Stack, current_runtime, served_bytes


def assert_one_error_line(run: CliRun, *fragments: str) -> None:
    """Status 1, and one `error:` line, the last one on stderr (libraries may have warned first)."""
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and run.err.endswith(errors[0] + "\n"), run.err
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in errors[0], run.err


def write_rows(tmp_path: Path, rows: list[list[float]]) -> str:
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(rows))
    return str(path)


def test_a_sample_row_past_float32_is_one_line(demo: Stack, inferctl: Any, tmp_path: Path) -> None:
    # Given a sample row the served ONNX graph cannot take (the review's case: a BadRequest escaped)
    sample = write_rows(tmp_path, [[1e39, 1.0, 1.0, 1.0]])
    model = str(MODELS_DIR / "model_user_a.pkl")
    # When the operator publishes with it / Then one line names the row and value
    run = inferctl("publish-model", "tenant-a", "--model", model, "--trust-pickle", "--sample", sample)
    assert_one_error_line(run, "sample row 0, value 0")


def test_a_malformed_setting_is_one_line(
    demo: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a malformed variable (the review's case: a SettingsError escaped)
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "abc")
    # When any command runs / Then one line names the variable, never its value
    code = main(["list-tenants"], stdout=io.StringIO())
    run = CliRun(code, "", capsys.readouterr().err)
    assert_one_error_line(run, "MAPPING_TTL_SECONDS must be a whole number")


def test_scikit_learn_failing_on_the_sample_is_one_line(demo: Stack, inferctl: Any, tmp_path: Path) -> None:
    # Given a trusted pickle whose scaler was fitted on a feature of scale 4e-161: its tree raises
    # ValueError on a sample row whose scaled value passes float32's range
    X, y = load_iris(return_X_y=True)
    X[:, 0] = 1e-160 * (1 + np.arange(len(X)) * 0.01)
    path = tmp_path / "scaled_tree.pkl"
    joblib.dump(make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, y), path)
    sample = write_rows(tmp_path, [[1e-120, 1.0, 1.0, 1.0]])
    # When the operator publishes it / Then one line names scikit-learn's error
    run = inferctl("publish-model", "tenant-a", "--model", str(path), "--trust-pickle", "--sample", sample)
    assert_one_error_line(run, "unexpected ValueError")


def onnx_for_eight_rows_only() -> bytes:
    """The demo graph with a Reshape of its input to exactly 8 rows: it fails in ONNX Runtime on any
    other number of rows (registration's probe of extreme rows runs it on more)."""
    model = onnx.load_model_from_string(served_bytes("model_user_a.pkl"))
    graph = model.graph
    source = graph.input[0].name
    for node in graph.node:
        node.input[:] = ["reshaped" if name == source else name for name in node.input]
    graph.initializer.append(numpy_helper.from_array(np.array([8, 4], dtype=np.int64), "eight_rows"))
    graph.node.insert(0, helper.make_node("Reshape", [source, "eight_rows"], ["reshaped"]))
    return model.SerializeToString()


def test_onnx_runtime_failing_on_the_sample_is_one_line(demo: Stack, inferctl: Any, tmp_path: Path) -> None:
    path = tmp_path / "eight_rows.onnx"
    path.write_bytes(onnx_for_eight_rows_only())
    sample = write_rows(tmp_path, [[5.1, 3.5, 1.4, 0.2]] * 3)
    run = inferctl("publish-model", "tenant-a", "--model", str(path), "--sample", sample)
    assert_one_error_line(run, "ONNX Runtime cannot run the model")


def test_a_malformed_version_record_is_one_line_naming_it(demo: Stack, inferctl: Any) -> None:
    # Given tenant-a's version record overwritten with something that is not a record
    tenant = demo.tenant("tenant-a")
    key = record_key("tenant-a", tenant.model_sha256)
    current_runtime().s3.put_object(Bucket=demo.bucket, Key=key, Body=b'{"sha256": 1}')
    # When the operator lists the versions / Then one line names the record and what to do
    assert_one_error_line(inferctl("list-versions", "tenant-a"), key, "restore it")


def test_an_unexpected_failure_is_one_line(
    demo: Stack, inferctl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bug anywhere below the CLI
    def broken(*_: Any) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(onboarding, "list_tenants", broken)
    # When a command runs into it / Then the operator reads one line, and the status is 1
    assert_one_error_line(inferctl("list-tenants"), "unexpected RuntimeError: something broke")


# --- rotation timings --------------------------------------------------------------------------


@pytest.fixture
def no_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAPPING_TTL_SECONDS", "TOKEN_TTL_SECONDS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("command", ["rotate-signing-key", "finish-rotation"])
@pytest.mark.parametrize("known", [(), ("MAPPING_TTL_SECONDS",), ("TOKEN_TTL_SECONDS",)])
def test_rotation_without_the_stacks_timings_is_refused(  # noqa: PLR0917 (fixtures)
    demo: Stack,
    inferctl: Any,
    no_timings: None,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    known: tuple[str, ...],
) -> None:
    # Given no --stack, and at most one of the two timings set
    for name in known:
        monkeypatch.setenv(name, "300")
    kms = current_runtime().kms
    keys_before = kms.list_keys()["Keys"]
    ring_before = current_runtime().table.get_keyring(demo.key_id, consistent=True)
    # When the operator rotates or finishes a rotation
    run = inferctl(command)
    # Then it is refused on one line saying what to pass, before anything is created or written
    assert_one_error_line(run, "--stack", "MAPPING_TTL_SECONDS", "TOKEN_TTL_SECONDS")
    assert kms.list_keys()["Keys"] == keys_before
    assert current_runtime().table.get_keyring(demo.key_id, consistent=True) == ring_before


def test_rotation_with_explicit_timings_uses_them(
    demo: Stack, no_timings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given both timings set explicitly: a stack whose tokens live an hour (no wait for the test)
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    monkeypatch.setenv("TOKEN_TTL_SECONDS", "3600")
    before = int(time.time())
    # When the operator rotates
    out = io.StringIO()
    assert main(["rotate-signing-key"], stdout=out) == 0
    # Then the old key may be retired only after those tokens expired, not after the default 900 s
    when = out.getvalue().rsplit("Run finish-rotation after ", 1)[1].removesuffix(".\n")
    ready = calendar.timegm(time.strptime(when, "%Y-%m-%d %H:%M:%S UTC"))
    assert ready >= before + 3600


# --- a CSV sample with a header row ------------------------------------------------------------

IRIS_ROWS = "5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n7.7,3.0,6.1,2.3\n"


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sample.csv"
    path.write_text(text)
    return str(path)


def test_a_csv_sample_with_a_header_naming_the_features_is_read(
    demo: Stack, inferctl: Any, tmp_path: Path
) -> None:
    # Given a CSV sample whose first row names the model's four features
    sample = write_csv(tmp_path, "sl,sw,pl,pw\n" + IRIS_ROWS)
    model = str(MODELS_DIR / "model_user_a.pkl")
    # When the operator publishes with those names (an interface change: the active model has none)
    run = inferctl(
        "publish-model", "tenant-a", "--model", model, "--trust-pickle", "--sample", sample,
        "--feature-names", "sl,sw,pl,pw", "--allow-interface-change",
    )  # fmt: skip
    # Then the header is read as names, and the three rows are the probe
    assert run.code == 0, run.err
    assert "3/3 sample rows agree" in run.out


def test_a_csv_sample_whose_header_names_other_features_is_refused_saying_to_drop_it(
    demo: Stack, inferctl: Any, tmp_path: Path
) -> None:
    # Given a CSV sample whose header names other columns than the model's features
    sample = write_csv(tmp_path, "a,b,c,d\n" + IRIS_ROWS)
    model = str(MODELS_DIR / "model_user_a.pkl")
    before = current_runtime().table.get_tenant("tenant-a")
    # When the operator publishes with it / Then one line names both and says to drop the header
    run = inferctl(
        "publish-model", "tenant-a", "--model", model, "--trust-pickle", "--sample", sample,
        "--feature-names", "sl,sw,pl,pw", "--allow-interface-change",
    )  # fmt: skip
    assert_one_error_line(run, "header row names a,b,c,d", "sl,sw,pl,pw", "drop the header row")
    assert current_runtime().table.get_tenant("tenant-a") == before


def test_a_csv_sample_with_a_header_is_read_for_a_model_without_names(
    demo: Stack, inferctl: Any, tmp_path: Path
) -> None:
    # Given a CSV sample with a header row, and a model whose features have no names
    sample = write_csv(tmp_path, "sepal length,sepal width,petal length,petal width\n" + IRIS_ROWS)
    model = str(MODELS_DIR / "model_user_a.pkl")
    # When the operator publishes with it / Then the rows below the header are the probe
    run = inferctl("publish-model", "tenant-a", "--model", model, "--trust-pickle", "--sample", sample)
    assert run.code == 0, run.err
    assert "3/3 sample rows agree" in run.out
