"""One cold start, in a fresh interpreter: `python -P bench/cold_child.py KIND RESULT_JSON [PROFILE]`.

With PROFILE, the timed part runs under cProfile and the stats are dumped there (for `pstats`);
the timings are then inflated, so `run_cold` never passes it.

KIND is `predict` / `predict_bare` / `login` / `login_bare` / `authorizer` / `authorizer_bare`.
Every kind first builds the same moto
stack (the untimed setup), then the timed part runs:

- predict:      import the predict handler, serve one request (the ONNX model fetched from S3,
                its SHA-256 checked, parsed by ONNX Runtime, predicted);
- predict_bare: `import sklearn`, `joblib.load` the same model file, predict the same row;
- login:        import the login handler, serve one login (argon2 verify, KMS sign);
- login_bare:   `import boto3`, one argon2 verify of the same hash.
- authorizer:   import the authorizer handler, authorize one request (key ring read, public key
                fetched from KMS, token verified, tenant mapping read);
- authorizer_bare: `import jwt`, load the same public key, `jwt.decode` the same token.

The setup must not warm anything the timed part imports, so it avoids `inferctl.onboarding` and
`tests.support` (both import scikit-learn): it writes the tenant mapping itself, for the ONNX
file the parent converted (`BENCH_ONNX_PATH`), in the item format `inferctl.onboarding.put_model`
writes; the password
hash comes from the parent process (no argon2 here); the token is issued with `model_runtime`,
which is then dropped from `sys.modules` with PyJWT and Powertools so the handler imports them afresh. If the
item format drifts, the handler's answer is not 200 and the run fails loudly.

Timestamps are `perf_counter_ns`, CLOCK_MONOTONIC on Linux, comparable with the parent's.
"""

# Every import below the clock is deliberately late: where an import happens is what is measured.
# ruff: noqa: PLC0415

import time

T_START = time.perf_counter_ns()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

# What Lambda's runtime lacks is missing here too (`bench.cold.ABSENT_IN_LAMBDA`), before anything
# imports botocore: a None in sys.modules makes the import raise ImportError.
sys.modules.update(dict.fromkeys(os.environ.get("BENCH_ABSENT_MODULES", "").split()))  # type: ignore[arg-type]

KINDS = ("predict", "predict_bare", "login", "login_bare", "authorizer", "authorizer_bare")
NEVER_IN_SETUP = ("numpy", "sklearn", "scipy", "joblib", "onnxruntime", "argon2", "aws_lambda_powertools")


class Context:
    function_name = "bench-cold"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-cold"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    tenant_id = "tenant-a"  # Lambda's, in tenant isolation mode (the template's default)

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def _context() -> Any:
    """The fake context, typed loosely: it has what the handlers read, not all of LambdaContext."""
    return Context()


def setup(kind: str) -> dict[str, Any]:
    """moto stack, tenant-a with model A, alice; returns what the timed part needs."""
    import boto3
    from moto import mock_aws

    from bench import MODELS_DIR
    from bench.stack import REGION, STACK_NAME, login_event, predict_event, set_base_environment
    from local.resources import create_resources_from_template, function_environments

    set_base_environment()
    function = {"login": "LoginFunction", "authorizer": "AuthorizerFunction"}.get(
        kind.removesuffix("_bare"), "PredictFunction"
    )
    os.environ["POWERTOOLS_SERVICE_NAME"] = function.removesuffix("Function").lower()
    mock_aws().start()  # stopped by the process's exit
    session = boto3.session.Session(region_name=REGION)
    names = create_resources_from_template(session, STACK_NAME)
    os.environ.update(function_environments(names, stack_name=STACK_NAME, region=REGION)[function])

    import hashlib

    model_file = "model_user_a.pkl"
    facts = json.loads((MODELS_DIR / "manifest.json").read_text())["models"][model_file]
    onnx_bytes = open(os.environ["BENCH_ONNX_PATH"], "rb").read()  # noqa: SIM115
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    key = f"models/tenant-a/{digest}.onnx"
    session.client("s3").put_object(Bucket=names.bucket, Key=key, Body=onnx_bytes)
    from model_runtime.runtime import Runtime
    from model_runtime.settings import read_settings
    from model_runtime.table import ACTIVE, ModelPin, Tenant, TenantChange, User

    state = Runtime(read_settings(), session=session)
    now = int(time.time())
    pin = ModelPin(key, digest, "onnx", facts["n_features"], tuple(facts["classes"]), "")
    state.table.create_tenant(Tenant.new("tenant-a", pin, 1000, now))
    state.table.update_tenant("tenant-a", TenantChange(api_key="bench-api-key-0123456789abcdef"), now)
    password_hash = os.environ["BENCH_PASSWORD_HASH"]
    state.table.create_user(User("alice", "tenant-a", password_hash, ("predict",), ACTIVE, now))
    token = state.tokens.issue("alice", "tenant-a").access_token
    public_key_der = session.client("kms").get_public_key(KeyId=names.key_id)["PublicKey"]
    # model_runtime's caches import Powertools (ttl_cache.py): dropped too, as model_runtime is.
    dropped = ("model_runtime", "jwt", "aws_lambda_powertools")
    for name in [m for m in sys.modules if m.split(".")[0] in dropped]:
        del sys.modules[name]

    warmed = [m for m in NEVER_IN_SETUP if m in sys.modules]
    if warmed:
        raise RuntimeError(f"the setup imported {warmed}: the cold start would be understated")
    row = [5.1, 3.5, 1.4, 0.2]
    authorizer_event = predict_event(token, "")
    for name in ("body", "isBase64Encoded"):
        authorizer_event.pop(name)
    authorizer_event |= {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:1234567890/live/POST/api/v1/predict",
    }
    # What the authorizer hands predict: the tenant and its tenant-data session (template.yaml)
    vended = session.client("sts").assume_role(
        RoleArn=names.tenant_data_role_arn,
        RoleSessionName="tenant-tenant-a",
        Tags=[{"Key": "tenant_id", "Value": "tenant-a"}],
    )["Credentials"]
    served_event = predict_event(token, json.dumps({"instances": [row]}))
    served_event["requestContext"]["authorizer"] = {
        "tenant_id": "tenant-a",
        "tenant_access_key_id": vended["AccessKeyId"],
        "tenant_secret_access_key": vended["SecretAccessKey"],
        "tenant_session_token": vended["SessionToken"],
    }
    return {
        "authorizer_event": authorizer_event,
        "token": token,
        "public_key_der": public_key_der,
        "audience": os.environ["TOKEN_AUDIENCE"],
        "issuer": os.environ["TOKEN_ISSUER"],
        "predict_event": served_event,
        "login_event": login_event("alice", os.environ["BENCH_PASSWORD"]),
        "row": row,
        "model_path": str(MODELS_DIR / model_file),
        "stored_hash": password_hash,
        "password": os.environ["BENCH_PASSWORD"],
    }


def timed(kind: str, prepared: dict[str, Any]) -> dict[str, Any]:
    """The measured part. Returns facts to check that it did what it claims."""
    if kind == "predict":
        from functions.predict.app import lambda_handler

        prepared["t_imported"] = time.perf_counter_ns()
        response = lambda_handler(prepared["predict_event"], _context())
        return {"status": response["statusCode"], "body": json.loads(response["body"])}
    if kind == "predict_bare":
        import joblib
        import sklearn  # noqa: F401

        prepared["t_imported"] = time.perf_counter_ns()
        model = joblib.load(prepared["model_path"])
        return {"status": 200, "body": {"predictions": model.predict([prepared["row"]]).tolist()}}
    if kind == "login":
        from functions.login.app import lambda_handler

        prepared["t_imported"] = time.perf_counter_ns()
        response = lambda_handler(prepared["login_event"], _context())
        return {
            "status": response["statusCode"],
            "body": {"token_type": json.loads(response["body"])["token_type"]},
        }
    if kind == "login_bare":
        import boto3  # noqa: F401
        from argon2 import PasswordHasher

        prepared["t_imported"] = time.perf_counter_ns()
        hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)
        return {
            "status": 200 if hasher.verify(prepared["stored_hash"], prepared["password"]) else 401,
            "body": {},
        }
    if kind == "authorizer":
        from functions.authorizer.app import lambda_handler

        prepared["t_imported"] = time.perf_counter_ns()
        answer = lambda_handler(prepared["authorizer_event"], _context())
        effect = answer["policyDocument"]["Statement"][0]["Effect"]
        return {"status": 200 if effect == "Allow" else 403, "body": {"effect": effect}}
    if kind == "authorizer_bare":
        import jwt
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        prepared["t_imported"] = time.perf_counter_ns()
        public_key: Any = load_der_public_key(prepared["public_key_der"])
        claims = jwt.decode(
            prepared["token"],
            public_key,
            algorithms=["RS256"],
            audience=prepared["audience"],
            issuer=prepared["issuer"],
        )
        return {"status": 200, "body": {"tid": claims["tid"]}}
    raise ValueError(kind)


def main() -> None:
    kind, result_path = sys.argv[1], sys.argv[2]
    if kind not in KINDS:
        raise SystemExit(f"unknown kind {kind!r}; one of {KINDS}")
    prepared = setup(kind)
    profiler = None
    if len(sys.argv) > 3:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t_setup_end = time.perf_counter_ns()
    outcome = timed(kind, prepared)
    t_done = time.perf_counter_ns()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(sys.argv[3])
    heavy = [m for m in ("numpy", "sklearn", "scipy", "onnxruntime") if m in sys.modules]
    with open(result_path, "w") as out:
        json.dump(
            {
                "kind": kind,
                "t_start": T_START,
                "t_setup_end": t_setup_end,
                "t_imported": prepared["t_imported"],
                "t_done": t_done,
                "outcome": outcome,
                "heavy_modules_after": heavy,
            },
            out,
        )


if __name__ == "__main__":
    main()
