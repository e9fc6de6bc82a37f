"""The order of a tenant's model versions (`inferctl.onboarding.list_versions`, `rollback`).

What it guards: `rollback` without `--to` serves the version registered just before the current
one, also when both were registered within one second (records keep the registration time in
nanoseconds), and records written before they held nanoseconds still sort by their second.
"""

from __future__ import annotations

import json
import pathlib
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from functions.predict.app import lambda_handler
from inferctl import onboarding
from inferctl.onboarding import record_key
from registry.registration import register
from tests.support import FakeLambdaContext, Stack, current_runtime, load_event

SECOND = 2_000_000_000  # a whole second after any real clock reading here (2033)


def iris_shaped(seed: int) -> LogisticRegression:
    """A 4-feature, 3-class classifier: the demo tenant's interface, other coefficients."""
    rows = np.random.default_rng(seed).normal(size=(60, 4))
    return LogisticRegression().fit(rows, [i % 3 for i in range(60)])


def skops_file(tmp_path: pathlib.Path, model: Any, name: str) -> str:
    path = tmp_path / f"{name}.skops"
    path.write_bytes(skops.io.dumps(model))
    return str(path)


def served_digest_of(path: str) -> str:
    """The digest a model file is served under (its ONNX conversion is deterministic)."""
    return onboarding.sha256_hex(register(path, pathlib.Path(path).read_bytes()).data)


def served_version(token: str) -> str:
    response = lambda_handler(load_event("model_card", alice_token=token), FakeLambdaContext())
    version: str = json.loads(response["body"])["version"]
    return version


@pytest.fixture
def one_second(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The registry's clock stands within one second: each reading is a few nanoseconds later."""
    readings = iter(range(SECOND * 10**9 + 1000, SECOND * 10**9 + 10**9, 1000))
    clock = types.SimpleNamespace(time_ns=lambda: next(readings), time=lambda: float(SECOND))
    monkeypatch.setattr(onboarding, "time", clock)
    yield


def test_rollback_without_a_version_serves_the_one_registered_just_before_within_the_same_second(
    demo: Stack, alice_token: str, inferctl: Any, tmp_path: pathlib.Path, one_second: None
) -> None:
    # Given two versions of tenant-a's interface, published in this order within one second, the
    # first with the larger digest (ordered by digest within the second, the rollback would skip it)
    files = {}
    for seed in (1, 2):
        path = skops_file(tmp_path, iris_shaped(seed), f"v{seed}")
        files[served_digest_of(path)] = path
    earlier, latest = sorted(files, reverse=True)
    for digest in (earlier, latest):
        assert inferctl("publish-model", "tenant-a", "--model", files[digest]).code == 0
    assert served_version(alice_token) == latest[:12]
    listed = onboarding.list_versions(current_runtime(), "tenant-a")
    assert [v.sha256 for v in listed][-2:] == [earlier, latest]
    assert listed[-1].registered_at == listed[-2].registered_at == SECOND
    # When the operator rolls back without naming a version
    run = inferctl("rollback", "tenant-a")
    # Then the version published just before the current one serves
    assert run.code == 0, run.err
    assert served_version(alice_token) == earlier[:12]


def test_versions_recorded_before_nanoseconds_still_sort_by_their_second(
    demo: Stack, alice_token: str, inferctl: Any, tmp_path: pathlib.Path
) -> None:
    # Given tenant-a's first version, whose record predates registered_at_ns, registered a second
    # later than a version whose record holds it (and published before it)
    first = served_version(alice_token)
    assert (
        inferctl("publish-model", "tenant-a", "--model", skops_file(tmp_path, iris_shaped(1), "v1")).code == 0
    )
    runtime = current_runtime()
    bucket = runtime.settings.model_bucket
    versions = {v.sha256[:12]: v for v in onboarding.list_versions(runtime, "tenant-a")}
    new = next(v for short, v in versions.items() if short != first)
    old_key = record_key("tenant-a", versions[first].sha256)
    old = json.loads(runtime.s3.get_object(Bucket=bucket, Key=old_key)["Body"].read())
    old.pop("registered_at_ns")
    old["registered_at"] = new.registered_at - 1
    runtime.s3.put_object(Bucket=bucket, Key=old_key, Body=json.dumps(old).encode())
    # When the versions are listed / Then the old record is read, in its second's place
    listed = onboarding.list_versions(runtime, "tenant-a")
    assert [v.sha256[:12] for v in listed] == [first, new.sha256[:12]]
    assert listed[0].registered_at_ns == 0
    # And rolling back without a version serves it again
    assert inferctl("rollback", "tenant-a").code == 0
    assert served_version(alice_token) == first
