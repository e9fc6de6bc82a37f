"""A tenant's interface (registry/interface.py) changes only when the operator says so.

What it guards: `publish-model` and `rollback` refuse a version whose task, feature count, feature
names, classes (set or order) or probabilities differ from the active version's, in one line that
says what changed, and leave the active version serving; with `--allow-interface-change` the
version is served, the model card says when the interface changed, the CLI names who is affected,
and `list-versions` marks the version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LinearRegression, LogisticRegression

from functions.predict.app import lambda_handler
from tests.support import CliRun, FakeLambdaContext, Stack, load_event

FLAG = "--allow-interface-change"


def classifier(n_features: int = 4, labels: tuple[Any, ...] = (0, 1, 2)) -> LogisticRegression:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(60, n_features))
    return LogisticRegression().fit(rows, [labels[i % len(labels)] for i in range(60)])


def reordered(model: LogisticRegression, order: list[int]) -> LogisticRegression:
    """The same classifier with its labels in another order (what a client's probability columns
    follow). Coefficients move with the labels, so each row still gets the same label."""
    model.classes_ = model.classes_[order]
    model.coef_ = model.coef_[order]
    model.intercept_ = model.intercept_[order]
    return model


def regressor() -> LinearRegression:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(60, 4))
    return LinearRegression().fit(rows, rows @ np.array([1.0, 2.0, 3.0, 4.0]))


def saved(tmp_path: Path, model: Any, name: str) -> str:
    path = tmp_path / f"{name}.skops"
    path.write_bytes(skops.io.dumps(model))
    return str(path)


def call(event: str, token: str) -> dict[str, Any]:
    response = lambda_handler(load_event(event, alice_token=token), FakeLambdaContext())
    return {"status": response["statusCode"], **json.loads(response["body"])}


def assert_refused(run: CliRun, *fragments: str) -> None:
    assert run.code == 1
    assert run.out == ""
    assert run.err.count("\n") == 1, run.err  # one line
    for fragment in ("error: ", "interface", FLAG, *fragments):
        assert fragment in run.err, run.err


CHANGES = {
    "feature count": (lambda: classifier(3), "3 features, the active version takes 4"),
    "class set": (
        lambda: classifier(labels=(0, 1, 5)),
        "classes [0, 1, 5], the active version has [0, 1, 2]",
    ),
    "class order": (
        lambda: reordered(classifier(), [1, 0, 2]),
        "classes [1, 0, 2], the active version has [0, 1, 2]",
    ),
    "task": (regressor, "a regression model, the active version is a classification model"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_publishing_another_interface_is_refused_and_the_active_version_keeps_serving(
    demo: Stack, alice_token: str, inferctl: Any, tmp_path: Path, change: str
) -> None:
    # Given tenant-a serving its 4-feature classifier of classes [0, 1, 2]
    before = call("predict_alice", alice_token)
    assert before["status"] == 200
    model, message = CHANGES[change]
    # When the operator publishes a version that changes the interface, without the flag
    run = inferctl("publish-model", "tenant-a", "--model", saved(tmp_path, model(), change))
    # Then it is refused in one line that says what changed
    assert_refused(run, message, "tenant-a")
    # And the active version still answers, the card unchanged
    after = call("predict_alice", alice_token)
    assert after == before
    assert call("model_card", alice_token)["interface_changed_at"] is None


def test_a_version_with_the_same_interface_needs_no_flag(
    demo: Stack, alice_token: str, inferctl: Any, tmp_path: Path
) -> None:
    # Given tenant-a's 4-feature classifier of classes [0, 1, 2], with probabilities
    # When the operator publishes another such classifier
    run = inferctl("publish-model", "tenant-a", "--model", saved(tmp_path, classifier(), "same"))
    # Then it is served, and nobody is told their clients are affected
    assert run.code == 0, run.err
    assert "affects" not in run.out
    assert call("model_card", alice_token)["interface_changed_at"] is None
    # And list-versions marks no interface change
    assert "changed" not in inferctl("list-versions", "tenant-a").out


@pytest.mark.parametrize("change", list(CHANGES))
def test_with_the_flag_the_change_is_served_shown_on_the_card_and_marked_in_the_history(
    demo: Stack, alice_token: str, inferctl: Any, tmp_path: Path, change: str
) -> None:
    # Given tenant-a serving version 1
    old = call("model_card", alice_token)
    model, message = CHANGES[change]
    # When the operator publishes an interface change with the flag
    run = inferctl("publish-model", "tenant-a", "--model", saved(tmp_path, model(), change), FLAG)
    # Then it is published, and the CLI says what changed and who is affected
    assert run.code == 0, run.err
    assert message in run.out
    assert "this affects all clients of tenant tenant-a" in run.out
    # And the model card is the new version's and says when the interface changed
    card = call("model_card", alice_token)
    assert card["status"] == 200
    assert card["version"] != old["version"]
    assert isinstance(card["interface_changed_at"], int) and card["interface_changed_at"] > 0
    # And list-versions shows features and classes (or task), and marks the new version alone
    lines = inferctl("list-versions", "tenant-a").out.splitlines()
    assert lines[0].split() == ["DIGEST", "FORMAT", "FEATURES", "CLASSES", "INTERFACE", "REGISTERED", "PROBE"]
    current = next(line for line in lines if line.startswith("* "))
    assert card["version"] in current and "changed" in current
    assert [line for line in lines[1:] if "changed" in line] == [current]
    original = next(line for line in lines[1:] if line.startswith("  "))
    assert "4" in original.split() and "[0, 1, 2]" in original


def test_rolling_back_across_an_interface_change_needs_the_flag(
    demo: Stack, alice_token: str, inferctl: Any, tmp_path: Path
) -> None:
    # Given tenant-a moved to a 3-feature version with the flag
    first = call("model_card", alice_token)
    assert (
        inferctl("publish-model", "tenant-a", "--model", saved(tmp_path, classifier(3), "v2"), FLAG).code == 0
    )
    moved = call("model_card", alice_token)
    assert moved["n_features"] == 3
    # When the operator rolls back without the flag
    refused = inferctl("rollback", "tenant-a")
    # Then it is refused, naming the change, and the 3-feature version still serves
    assert_refused(refused, "4 features, the active version takes 3")
    assert call("model_card", alice_token) == moved
    # When the operator rolls back with the flag
    run = inferctl("rollback", "tenant-a", FLAG)
    # Then version 1 serves again, and the CLI names who is affected
    assert run.code == 0, run.err
    assert "this affects all clients of tenant tenant-a" in run.out
    back = call("model_card", alice_token)
    assert (back["version"], back["n_features"]) == (first["version"], 4)
    assert back["interface_changed_at"] >= moved["interface_changed_at"]
    assert call("predict_alice", alice_token)["status"] == 200
