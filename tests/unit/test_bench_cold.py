"""The cold-start bench hides from its children only what Lambda would not have: a package the
layers ship or Lambda's runtime provides would be loaded by predict there, so its import counts."""

from __future__ import annotations

from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.cold import ABSENT_IN_LAMBDA
from tests.support import REPO_ROOT

# What Lambda's python3.12 runtime provides (the emulation image's /var/runtime) and what the
# layers ship: everything predict can import there.
ON_LAMBDA = (
    REPO_ROOT / "local" / "lambda-image" / "requirements.txt",
    *sorted((REPO_ROOT / "layers").glob("*/requirements.txt")),
)


def distributions(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {canonicalize_name(Requirement(line).name) for line in lines if line}


def test_the_cold_bench_hides_no_package_that_lambda_has() -> None:
    # Given every distribution Lambda's runtime or a layer puts on predict's path
    on_lambda = set().union(*(distributions(path) for path in ON_LAMBDA))
    assert {"botocore", "boto3", "onnxruntime", "pyjwt"} <= on_lambda  # the lists are the real ones
    # When the modules the cold bench makes unimportable are mapped to the installed distributions
    installed = packages_distributions()
    hidden = {canonicalize_name(dist) for module in ABSENT_IN_LAMBDA for dist in installed[module]}
    assert hidden == {"awscrt", "pyopenssl"}
    # Then none of them would be there on Lambda
    assert hidden.isdisjoint(on_lambda)
