"""Cold starts: fresh processes, our handlers against the bare minimum of the same work.

Cold start = (process spawn -> first line of the child) + (handler import -> first response).
The moto setup in between is excluded, and both sides do the identical setup (see
`bench/cold_child.py`). boto3 and botocore are imported by that setup (moto needs them), so
`boto3_import_s` measures the import of the AWS SDK that predict loads (botocore's session, or
boto3 if a fresh import of the handler loads it) alone, in fresh processes, and it is added to
our predict side: only ours needs it (the bare `import sklearn; joblib.load; predict` does not). Every
child runs without the modules Lambda's runtime lacks (`ABSENT_IN_LAMBDA`). Our predict serves
an ONNX tenant (model A as registration converts it). One discarded warm-up round first, so .pyc
files and the page cache are in the same state for every measured round.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import LAYER_SOURCE, REPO_ROOT
from bench.stack import BASE_ENVIRONMENT, POWERTOOLS_DEFAULTS

CHILD = Path(__file__).resolve().parent / "cold_child.py"
# Installed here but not in Lambda's python3.12 runtime, so every cold-start child runs without
# them (`cold_child.py`, `boto3_import_seconds`). botocore imports each when it can: `awscrt`
# (compat.py, `HAS_CRT`; the dev venv has it because aws-sam-cli asks for boto3[crt]) and
# pyOpenSSL's `OpenSSL` (httpsession.py, through urllib3.contrib.pyopenssl; a dev dependency's).
# Lambda's runtime provides boto3, botocore, s3transfer, jmespath, dateutil, six and urllib3
# (local/lambda-image/requirements.txt, the emulation image's /var/runtime), neither of these,
# and the layers ship neither. Measured 2026-12-06, alternating pairs of fresh processes, of
# `import botocore.session, botocore.config`: without awscrt, median 0.77x; then without
# OpenSSL as well, 0.78x of that (docs/performance.md).
ABSENT_IN_LAMBDA = ("awscrt", "OpenSSL")
# Run first by every child: a None in sys.modules makes `import awscrt` raise ImportError, the
# way a missing package does, so botocore takes its pure-Python path as it does on Lambda.
WITHOUT_ABSENT = f"import sys; sys.modules.update(dict.fromkeys({ABSENT_IN_LAMBDA!r}))"
PAIRS = {"predict": "predict_bare", "login": "login_bare", "authorizer": "authorizer_bare"}
DEMO_PASSWORD = "alice-local-demo"


@dataclass(frozen=True)
class ChildRun:
    """One cold start, in seconds: interpreter startup, imports, then the first request."""

    startup_s: float
    import_s: float
    request_s: float
    total_s: float


@dataclass(frozen=True)
class ColdStart:
    name: str
    ours_s: float
    bare_s: float
    ratio: float
    ours_runs: list[ChildRun]
    bare_runs: list[ChildRun]

    @staticmethod
    def median_split(runs: list[ChildRun]) -> ChildRun:
        return ChildRun(
            statistics.median(r.startup_s for r in runs),
            statistics.median(r.import_s for r in runs),
            statistics.median(r.request_s for r in runs),
            statistics.median(r.total_s for r in runs),
        )


@dataclass(frozen=True)
class ColdReport:
    starts: list[ColdStart]
    boto3_import_s: float
    login_heavy_modules: list[str]
    login_module_count: int
    predict_module_count: int
    authorizer_heavy_modules: list[str] = field(default_factory=list)
    authorizer_module_count: int = 0


def _child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "PYTHON"))}
    environment |= BASE_ENVIRONMENT | POWERTOOLS_DEFAULTS
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(LAYER_SOURCE)])
    environment["BENCH_ABSENT_MODULES"] = " ".join(ABSENT_IN_LAMBDA)
    return environment | (extra or {})


def _password_hash() -> str:
    from model_runtime.passwords import hash_password  # noqa: PLC0415

    return hash_password(DEMO_PASSWORD)


def run_child(kind: str, environment: dict[str, str]) -> ChildRun:
    """One cold start of `kind`, setup excluded."""
    with tempfile.TemporaryDirectory() as scratch:
        result_path = Path(scratch) / "result.json"
        command = [sys.executable, "-P", str(CHILD), kind, str(result_path)]
        spawned = time.perf_counter_ns()
        completed = subprocess.run(
            command,
            env=environment,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"cold {kind} failed:\n" + "\n".join(completed.stderr.splitlines()[-15:]))
        result: dict[str, Any] = json.loads(result_path.read_text())
    outcome = result["outcome"]
    if outcome["status"] != 200:
        raise RuntimeError(f"cold {kind}: status {outcome['status']}: {outcome['body']}")
    if kind in ("login", "authorizer") and result["heavy_modules_after"]:
        raise RuntimeError(f"{kind} imported {result['heavy_modules_after']}")
    startup, import_, request = (
        result["t_start"] - spawned,
        result["t_imported"] - result["t_setup_end"],
        result["t_done"] - result["t_imported"],
    )
    return ChildRun(startup / 1e9, import_ / 1e9, request / 1e9, (startup + import_ + request) / 1e9)


def _fresh_import_facts(module: str) -> tuple[list[str], int]:
    """In a fresh process without moto: which of numpy/sklearn/scipy/joblib importing `module`
    pulls in, and how many modules it loads in all."""
    code = (
        WITHOUT_ABSENT + "; import json; n0 = len(sys.modules); import " + module + "; "
        "print(json.dumps([[m for m in ('numpy', 'sklearn', 'scipy', 'joblib', 'onnxruntime') "
        "if m in sys.modules],"
        " len(sys.modules) - n0]))"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code],
        # The handlers check their required settings at import; nothing here talks to AWS.
        env=_child_environment(
            {name: "import-facts" for name in ("TABLE_NAME", "MODEL_BUCKET", "SIGNING_KEY_ID")}
        ),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    heavy, count = json.loads(out.strip().splitlines()[-1])
    return heavy, count


def sdk_import(module: str) -> str:
    """The import statement of the AWS SDK a fresh import of `module` loads: boto3 when it loads
    boto3 (its import includes botocore's), else botocore's session and config (what
    `model_runtime.runtime` imports)."""
    code = f"{WITHOUT_ABSENT}; import {module}; print('boto3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-P", "-c", code],
        env=_child_environment(
            {name: "import-facts" for name in ("TABLE_NAME", "MODEL_BUCKET", "SIGNING_KEY_ID")}
        ),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loads_boto3 = out.strip().splitlines()[-1] == "True"
    return "import boto3" if loads_boto3 else "import botocore.session, botocore.config"


def boto3_import_seconds(runs: int, statement: str = "import boto3") -> float:
    code = f"{WITHOUT_ABSENT}; import time; t = time.perf_counter(); {statement}; "
    code += "print(time.perf_counter() - t)"
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-P", "-c", code],
            env=_child_environment(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(float(out.strip()))
    return statistics.median(times)


def _onnx_model_file(directory: str) -> str:
    from bench import MODELS_DIR  # noqa: PLC0415
    from registry.registration import register  # noqa: PLC0415

    path = Path(directory) / "model_user_a.onnx"
    data = (MODELS_DIR / "model_user_a.pkl").read_bytes()
    path.write_bytes(register("model_user_a.pkl", data, trust_pickle=True).data)
    return str(path)


def run_cold(repeats: int = 5) -> ColdReport:
    with tempfile.TemporaryDirectory() as scratch:
        environment = _child_environment(
            {
                "BENCH_PASSWORD_HASH": _password_hash(),
                "BENCH_PASSWORD": DEMO_PASSWORD,
                "BENCH_ONNX_PATH": _onnx_model_file(scratch),
            }
        )
        return _run_cold(repeats, environment)


def _run_cold(repeats: int, environment: dict[str, str]) -> ColdReport:
    kinds = [kind for pair in PAIRS.items() for kind in pair]
    for kind in kinds:  # warm-up round, discarded
        run_child(kind, environment)
    runs: dict[str, list[ChildRun]] = {kind: [] for kind in kinds}
    sdk_runs: list[float] = []
    sdk_statement = sdk_import("functions.predict.app")
    for _ in range(repeats):  # interleaved, so drift in machine load hits every kind alike
        for kind in kinds:
            runs[kind].append(run_child(kind, environment))
        # In the same round: measured after the rounds, five in a row, it moved 0.12-0.23 s
        # from one bench run to the next (2026-12-07), more than predict's whole own start.
        sdk_runs.append(boto3_import_seconds(1, sdk_statement))
    boto3_s = statistics.median(sdk_runs)
    starts = []
    for ours, bare in PAIRS.items():
        added = sdk_runs if ours == "predict" else [0.0] * repeats
        ours_s = statistics.median(r.total_s + sdk for r, sdk in zip(runs[ours], added, strict=True))
        bare_s = statistics.median(r.total_s for r in runs[bare])
        starts.append(ColdStart(ours, ours_s, bare_s, ours_s / bare_s, runs[ours], runs[bare]))
    login_heavy, login_count = _fresh_import_facts("functions.login.app")
    _, predict_count = _fresh_import_facts("functions.predict.app")
    authorizer_heavy, authorizer_count = _fresh_import_facts("functions.authorizer.app")
    return ColdReport(
        starts,
        boto3_s,
        login_heavy,
        login_count,
        predict_count,
        authorizer_heavy,
        authorizer_count,
    )
