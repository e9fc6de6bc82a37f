"""The service on moto in-process, configured as the deployed predict function sees it.

Resources come from `template.yaml` (`local.resources`), the function's environment is the
template's (Globals merged, `!Ref`s resolved), tenants are onboarded with the operator's own code
(`inferctl.onboarding`) and tokens are issued by the login function's code (`Tokens.issue`, KMS
`Sign` in moto); each `moto_stack` gives the handlers a fresh container's state (`fresh_runtime`).
Two bench-only settings: X-Ray tracing is off (there is no daemon), and moto keeps S3 objects on
disk rather than in this process's memory (the memory benchmark would otherwise count the "S3
service" as the function's own RSS).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import MODELS_DIR, REPO_ROOT

if TYPE_CHECKING:
    from model_serving.models import PredictRuntime

REGION = "us-east-1"
STACK_NAME = "bench"
EVENTS_DIR = REPO_ROOT / "events"

# name -> (username, password, tenant id, model file)
DEMO_TENANTS: dict[str, tuple[str, str, str, str]] = {
    "A": ("alice", "alice-local-demo", "tenant-a", "model_user_a.pkl"),
    "B": ("bob", "bob-local-demo", "tenant-b", "model_user_b.pkl"),
    # Bench-only tenants (models trained on first use, under bench/results/models): a regressor
    # (ONNX float64), a 100-tree forest (ONNX float32 with thresholds rounded down: scikit-learn's
    # own precision, docs/model-families.md) and 100 rounds of histogram gradient boosting, the
    # tree ensemble served in double precision.
    "R": ("rita", "rita-bench-demo", "tenant-r", "bench_ridge.pkl"),
    "F": ("fred", "fred-bench-demo", "tenant-f", "bench_forest100.pkl"),
    "H": ("hana", "hana-bench-demo", "tenant-h", "bench_hist_boosting100.pkl"),
    # Model A again, for a tenant with data capture on (docs/history.md): predict then writes the
    # rows and the answers into its history line, and must still meet model A's targets.
    "K": ("kate", "kate-bench-demo", "tenant-k", "model_user_a.pkl"),
}
CAPTURING = frozenset({"K"})
BENCH_MODELS_DIR = REPO_ROOT / "bench" / "results" / "models"

# What the process looks like before the function's own environment is applied. Powertools'
# settings are defaults only, so under pytest the test suite's values stay.
BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": "1024",
}
POWERTOOLS_DEFAULTS = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "predict",
    "POWERTOOLS_METRICS_NAMESPACE": "InferenceApi",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
# Every setting a function requires at init (`require_settings` in functions/*/app.py); none
# is used before a request, so a placeholder lets a handler module import.
FUNCTION_SETTINGS = (
    "TABLE_NAME",
    "MODEL_BUCKET",
    "SIGNING_KEY_ID",
    "ACTIVITY_TABLE_NAME",
    "CURSOR_KEY_ID",
    "CAPTURE_BUCKET",
    "TENANT_DATA_ROLE_ARN",
)
_REMOVED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE")


def set_base_environment() -> None:
    """Call before importing a handler: Powertools reads its settings at import."""
    for name in _REMOVED:
        os.environ.pop(name, None)
    os.environ.update(BASE_ENVIRONMENT)
    for name, value in POWERTOOLS_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # The handlers check their required settings at import; `moto_stack` sets the real names.
    for name in FUNCTION_SETTINGS:
        os.environ.setdefault(name, "set-by-moto-stack")


def predict_handler() -> Any:
    """`functions.predict.app.lambda_handler`, imported the way Lambda would (environment first)."""
    set_base_environment()
    from functions.predict.app import lambda_handler  # noqa: PLC0415

    return lambda_handler


@dataclass(frozen=True)
class Stack:
    table_name: str
    bucket: str
    key_id: str


@contextlib.contextmanager
def moto_stack(
    function: str = "PredictFunction", parameter_overrides: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    """Table, bucket and key from the template in moto, and `function`'s environment applied."""
    import boto3  # noqa: PLC0415 - kept out of `bench` import time
    from moto import mock_aws  # noqa: PLC0415

    from local.resources import create_resources_from_template, function_environments  # noqa: PLC0415

    set_base_environment()
    # One container serving several tenants in turn (warm comparisons, the memory bound): the
    # shared deployment. Per-tenant mode adds its tenant check to each request (0.5 us more,
    # decision 0017); both read tenant data with the authorizer's sessions (`authorized`).
    overrides = {"TenantIsolation": "shared"} | dict(parameter_overrides or {})
    with mock_aws():
        names = create_resources_from_template(boto3.session.Session(region_name=REGION), STACK_NAME)
        environment = function_environments(
            names, stack_name=STACK_NAME, region=REGION, parameter_overrides=overrides
        )[function]
        os.environ.update(environment)
        # `authorized` vends sessions as the authorizer would, with the authorizer's setting
        os.environ["TENANT_DATA_ROLE_ARN"] = names.tenant_data_role_arn
        fresh_runtime()
        yield Stack(names.table_name, names.bucket, names.key_id)
    fresh_runtime()


def fresh_runtime() -> PredictRuntime:
    """A fresh container for the handlers: settings, clients, mappings, keys and models forgotten."""
    from bench import peers  # noqa: PLC0415
    from tests.support import use_runtime  # noqa: PLC0415

    peers.reset_load_per_request()
    return use_runtime()


def runtime() -> PredictRuntime:
    """The state the handlers use now."""
    from tests.support import current_runtime  # noqa: PLC0415

    return current_runtime()


def onboard_demo_tenants() -> dict[str, str]:
    """Alice (model A) and Bob (model B) as an operator onboards them (trusted pickles, served as
    ONNX); returns name -> the S3 key of the original pickle, for the load-per-request peer."""
    from model_runtime.table import TenantChange  # noqa: PLC0415

    from inferctl.onboarding import create_user, put_model, update_tenant  # noqa: PLC0415

    state = runtime()
    keys = {}
    for name, (username, password, tenant_id, model_file) in DEMO_TENANTS.items():
        data = model_file_path(model_file).read_bytes()
        put_model(state, tenant_id, data, 1000, new_tenant=True, filename=model_file, trust_pickle=True)
        if name in CAPTURING:
            update_tenant(state, tenant_id, TenantChange(capture=True))
        create_user(state, username, password, tenant_id)
        tenant = state.table.get_tenant(tenant_id)
        assert tenant is not None and tenant.capture == (name in CAPTURING)
        keys[name] = f"peers/{model_file}"
        state.s3.put_object(Bucket=state.settings.model_bucket, Key=keys[name], Body=data)
    return keys


def token_for(username: str, tenant_id: str) -> str:
    return runtime().tokens.issue(username, tenant_id).access_token


def clear_mapping_caches() -> None:
    """Forget cached tenant mappings and the key ring (not keys or models), so the next call
    refreshes them and the following `MAPPING_TTL_SECONDS` are guaranteed AWS-free."""
    state = runtime()
    state.tenants.clear()
    state.keyrings.clear()


def predict_event(token: str, body: str) -> dict[str, Any]:
    """`events/predict_alice.json` with this bearer token and body."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / "predict_alice.json").read_text())
    event["headers"]["Authorization"] = f"Bearer {token}"
    event["multiValueHeaders"]["Authorization"] = [f"Bearer {token}"]
    event["body"] = body
    event["isBase64Encoded"] = False
    return event


def authorized(event: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """`event` as API Gateway passes it on after the authorizer: the tenant and the session the
    authorizer vends for it (its own code: `Runtime.tenant_credentials`, against moto's STS)."""
    credentials = runtime().tenant_credentials.for_tenant(tenant_id)
    event["requestContext"]["authorizer"] = {"tenant_id": tenant_id, **credentials.to_context()}
    return event


def login_event(username: str, password: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / "login_success.json").read_text())
    event["body"] = json.dumps({"username": username, "password": password})
    event["isBase64Encoded"] = False
    return event


def sample_rows(model_file: str, batch: int) -> list[list[float]]:
    """`batch` real rows of the data set the model was trained on (iris, wine, diabetes), cycled."""
    from sklearn.datasets import load_diabetes, load_iris, load_wine  # noqa: PLC0415

    if model_file.startswith("bench_"):
        data = load_diabetes()
    else:
        data = load_iris() if model_file == "model_user_a.pkl" else load_wine()
    rows = data.data.tolist()
    return [rows[i % len(rows)] for i in range(batch)]


def instances_body(rows: list[list[float]]) -> str:
    return json.dumps({"instances": rows}, separators=(",", ":"))


def model_path(name: str) -> Path:
    return model_file_path(DEMO_TENANTS[name][3])


def model_file_path(model_file: str) -> Path:
    """A demo model of models/, or a bench model, trained (once) on the diabetes data set."""
    if not model_file.startswith("bench_"):
        return MODELS_DIR / model_file
    path = BENCH_MODELS_DIR / model_file
    if not path.exists():
        import joblib  # noqa: PLC0415
        from sklearn.datasets import load_diabetes  # noqa: PLC0415
        from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor  # noqa: PLC0415
        from sklearn.linear_model import Ridge  # noqa: PLC0415

        makers = {
            "bench_ridge.pkl": Ridge,
            "bench_forest100.pkl": lambda: RandomForestRegressor(
                n_estimators=100, max_depth=8, random_state=0
            ),
            "bench_hist_boosting100.pkl": lambda: HistGradientBoostingRegressor(max_iter=100, random_state=0),
        }
        X, y = load_diabetes(return_X_y=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, then renamed: a second process (pytest-xdist's other worker) reading the
        # path meanwhile sees no file or the whole one, never a half-written pickle.
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        joblib.dump(makers[model_file]().fit(X, y), partial)
        partial.replace(path)
    return path
