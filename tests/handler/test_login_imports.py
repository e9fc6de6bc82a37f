"""Login's cold start stays small: it never imports numpy, scikit-learn, scipy or joblib.

Each check runs in a fresh interpreter, because this test process has long since imported them.
The login function is imported the way Lambda imports it (its CodeUri and the layer on the path,
`Handler: app.lambda_handler`) and the way the tests import it, then serves a login and the JWKS
under moto: a heavy import hidden on the request path would show up too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import FAKE_AWS, REPO_ROOT, child_environment

HEAVY_MODULES = ("numpy", "sklearn", "scipy", "joblib", "onnxruntime", "skops")
LAYER = REPO_ROOT / "layers" / "model_runtime"  # the core: every function's layer
ML_LAYER = REPO_ROOT / "layers" / "model_serving"  # payload and models: predict's layer only

# Runs in the child. argv: module to import, "serve" or "import-only", result file.
CHILD = r"""
import importlib, json, os, sys
from types import SimpleNamespace

HEAVY = ("numpy", "sklearn", "scipy", "joblib", "onnxruntime", "skops")
module_name, mode, result_path = sys.argv[1:4]


def heavy_loaded():
    return sorted(name for name in HEAVY if name in sys.modules)


# Lambda's environment is set before the init phase; the values here are replaced below.
os.environ.update(TABLE_NAME="imports-test", SIGNING_KEY_ID="set-at-serve-time")
handler_module = importlib.import_module(module_name)
result = {"after_import": heavy_loaded(), "statuses": []}

if mode == "serve":
    import boto3
    from moto import mock_aws
    from model_runtime.passwords import hash_password

    context = SimpleNamespace(
        function_name="login", memory_limit_in_mb=512, aws_request_id="req-1",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:login",
        get_remaining_time_in_millis=lambda: 10_000,
    )
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="imports-test",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        key = boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
        os.environ.update(TABLE_NAME="imports-test", SIGNING_KEY_ID=key["KeyMetadata"]["KeyId"])
        from model_runtime.runtime import Runtime
        handler_module.runtime = Runtime.from_environment()  # init ran before moto's key existed
        tenant = {"pk": {"S": "tenant#tenant-a"}, "status": {"S": "active"}}
        dynamodb.put_item(TableName="imports-test", Item=tenant)
        dynamodb.put_item(TableName="imports-test", Item={
            "pk": {"S": "user#alice"}, "tenant_id": {"S": "tenant-a"}, "status": {"S": "active"},
            "password_hash": {"S": hash_password("alice-local-demo")},
        })
        for name in ("login_success", "jwks"):
            with open(os.path.join(os.environ["EVENTS_DIR"], name + ".json")) as file:
                event = json.load(file)
            result["statuses"].append(handler_module.lambda_handler(event, context)["statusCode"])
    result["after_requests"] = heavy_loaded()

with open(result_path, "w") as file:
    json.dump(result, file)
"""


def run_child(tmp_path: Path, pythonpath: list[Path], module: str, mode: str) -> dict[str, Any]:
    env = child_environment(
        pythonpath,
        "login",
        without=("TABLE_NAME", "SIGNING_KEY_ID"),
        POWERTOOLS_TRACE_DISABLED="true",
        EVENTS_DIR=str(REPO_ROOT / "events"),
        **FAKE_AWS,
    )
    result_file = tmp_path / "result.json"
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, module, mode, str(result_file)],
        cwd=tmp_path,  # not the repo root: only PYTHONPATH decides what is importable
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


@pytest.mark.parametrize(
    ("pythonpath", "module"),
    [
        ([REPO_ROOT / "functions" / "login", LAYER], "app"),  # as deployed: CodeUri + layer
        ([REPO_ROOT, LAYER], "functions.login.app"),  # as the tests import it
    ],
    ids=["lambda-layout", "repo-layout"],
)
def test_login_never_imports_numpy_or_sklearn(tmp_path: Path, pythonpath: list[Path], module: str) -> None:
    # Given a fresh interpreter with only the login function and the layer package on the path
    # When it imports the login handler, then serves a login and the JWKS
    result = run_child(tmp_path, pythonpath, module, "serve")
    # Then the requests succeeded, and no heavy ML module was loaded at any point
    assert result["statuses"] == [200, 200]
    assert result["after_import"] == []
    assert result["after_requests"] == []


def test_predict_imports_onnxruntime_and_no_pickle_loader(tmp_path: Path) -> None:
    # Given the same fresh interpreter, with the predict function instead
    # When it imports the predict handler
    result = run_child(tmp_path, [REPO_ROOT / "functions" / "predict", LAYER, ML_LAYER], "app", "import-only")
    # Then the check reports numpy and ONNX Runtime: it can fail, so its pass above means something
    assert {"numpy", "onnxruntime"} <= set(result["after_import"])
    # And neither scikit-learn nor joblib: serving ONNX needs no library that unpickles models
    assert not {"sklearn", "joblib", "skops"} & set(result["after_import"])


def test_no_function_code_can_unpickle() -> None:
    # Given every module the functions run (their handlers and the layer package)
    sources = [
        *(REPO_ROOT / "functions").rglob("*.py"),
        *(LAYER / "model_runtime").rglob("*.py"),
        *(ML_LAYER / "model_serving").rglob("*.py"),
    ]
    assert any(path.name == "models.py" for path in sources)  # the model loader is among them
    # Then none imports or calls a pickle loader: the only model readers are ONNX Runtime and
    # audited skops (a format's name, such as the upload form's refused "joblib", is no loader)
    loaders = (
        "import joblib", "from joblib", "joblib.load", "pickle.load", "Unpickler", "import cloudpickle",
        "cloudpickle.load", "import dill", "dill.load", "torch.load", "allow_pickle",
    )  # fmt: skip
    for path in sources:
        text = path.read_text()
        for loader in loaders:
            assert loader not in text, f"{path.relative_to(REPO_ROOT)} mentions {loader}"
