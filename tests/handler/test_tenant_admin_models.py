"""The tenant-admin model routes (functions/admin) and the registering function (functions/register).

Each rule here is a threat: an admin reaching another tenant's versions or uploads, a pickle
reaching a loader, an oversized file read into memory, a replayed upload form, a refused model
taking the tenant's service down, an interface change nobody asked for, a secret in the trail.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from model_runtime import accounts, uploads
from model_runtime.roles import ADMIN, USER

from functions.admin import app as admin_app
from functions.predict import app as predict_app
from functions.register import app as register_app
from inferctl.onboarding import put_model
from tests.admin_models import deliver, post_form, publish_variant, served_model, variant
from tests.handler.test_tenant_admin import (
    ADA_PASSWORD,
    BOB_ADMIN_PASSWORD,
    admin_event,
    body_of,
    call,
    login,
)
from tests.support import (
    MODELS_DIR,
    REPO_ROOT,
    FakeLambdaContext,
    Stack,
    assert_problem,
    child_environment,
    current_runtime,
    load_event,
    served_bytes,
    use_runtime,
)

VERSIONS = "/api/v1/admin/models/versions"
VERSION = "/api/v1/admin/models/versions/{version}"
ACTIVATE = "/api/v1/admin/models/versions/{version}/activate"
UPLOADS = "/api/v1/admin/models/uploads"
UPLOAD = "/api/v1/admin/models/uploads/{upload_id}"


@pytest.fixture
def admins(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The demo tenants, each with an admin (ada: tenant-a, berit: tenant-b), and the registering
    function on the same state as the others."""
    runtime = current_runtime()
    accounts.create_user(runtime, "ada", ADA_PASSWORD, "tenant-a", (USER, ADMIN))
    accounts.create_user(runtime, "berit", BOB_ADMIN_PASSWORD, "tenant-b", (USER, ADMIN))
    monkeypatch.setattr(register_app, "runtime", runtime)
    yield demo


def ada() -> str:
    return login("ada", ADA_PASSWORD)


def start_upload(token: str, **body: Any) -> dict[str, Any]:
    response = call(admin_event("POST", UPLOADS, token, body={"format": "onnx", **body}))
    assert response["statusCode"] == 201, response["body"]
    answer: dict[str, Any] = body_of(response)
    return answer


def upload_status(token: str, upload_id: str) -> dict[str, Any]:
    response = call(admin_event("GET", UPLOAD, token, path_parameters={"upload_id": upload_id}))
    assert response["statusCode"] == 200, response["body"]
    answer: dict[str, Any] = body_of(response)
    return answer


def upload_and_register(form: dict[str, Any], data: bytes) -> dict[str, int]:
    assert post_form(form, data).status_code in (200, 201, 204)
    return deliver(current_runtime().settings.model_bucket, form["fields"]["key"])


def uploaded_keys() -> list[str]:
    runtime = current_runtime()
    listing = runtime.s3.list_objects_v2(Bucket=runtime.settings.model_bucket, Prefix="uploads/")
    return [entry["Key"] for entry in listing.get("Contents", [])]


def upload_items() -> list[dict[str, Any]]:
    runtime = current_runtime()
    items: list[dict[str, Any]] = runtime.dynamodb.scan(TableName=runtime.settings.table_name)["Items"]
    return [item for item in items if item["pk"]["S"].startswith("upload#")]


def predict_version(monkeypatch: pytest.MonkeyPatch) -> str:
    """What a fresh container of predict serves alice (tenant-a) now: its `model_version`."""
    use_runtime(monkeypatch=monkeypatch)
    token = current_runtime().tokens.issue("alice", "tenant-a").access_token
    response = predict_app.lambda_handler(load_event("predict_alice", alice_token=token), FakeLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    version: str = json.loads(response["body"])["model_version"]
    return version


# --- versions --------------------------------------------------------------------------------


def test_an_admin_lists_its_tenants_versions_with_what_list_versions_shows_and_no_storage_names(
    admins: Stack,
) -> None:
    # Given tenant-a's first version and a second one the operator published
    first = admins.tenant("tenant-a").model_sha256
    second = publish_variant("tenant-a")
    # When ada lists the versions
    response = call(admin_event("GET", VERSIONS, ada()))
    listed = body_of(response)["versions"]
    # Then both are there, oldest first, the second one current, with their interface facts
    assert [v["sha256"] for v in listed] == [first, second]
    assert [v["current"] for v in listed] == [False, True]
    assert listed[0]["version"] == first[:12] and listed[0]["n_features"] == 4
    assert listed[0]["classes"] == [0, 1, 2] and listed[0]["format"] == "onnx"
    # And no bucket, key or path
    assert "models/" not in response["body"] and admins.bucket not in response["body"]


def test_an_admin_gets_one_version_by_its_digest_and_a_malformed_or_unknown_one_is_refused(
    admins: Stack,
) -> None:
    first = admins.tenant("tenant-a").model_sha256
    token = ada()
    got = body_of(call(admin_event("GET", VERSION, token, path_parameters={"version": first[:16]})))
    assert got["sha256"] == first and got["current"] is True
    for bad in ("short", "../../tenant-b", "Z" * 12, first[:11]):
        assert_problem(call(admin_event("GET", VERSION, token, path_parameters={"version": bad})), 400)
    assert_problem(call(admin_event("GET", VERSION, token, path_parameters={"version": "0" * 12})), 404)


def test_activate_rolls_back_to_an_earlier_version_which_predict_then_serves(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a second version serving tenant-a
    first = admins.tenant("tenant-a").model_sha256
    second = publish_variant("tenant-a")
    assert predict_version(monkeypatch) == second[:12]
    # When ada activates the first one
    response = call(admin_event("POST", ACTIVATE, ada(), path_parameters={"version": first[:12]}))
    # Then it is the current one, and predict serves it
    assert body_of(response)["current"] is True and body_of(response)["sha256"] == first
    assert admins.tenant("tenant-a").model_sha256 == first
    assert predict_version(monkeypatch) == first[:12]
    # And activating it again is a conflict that changes nothing
    again = call(admin_event("POST", ACTIVATE, ada(), path_parameters={"version": first[:12]}))
    assert_problem(again, 409)


def test_activating_a_version_with_another_interface_needs_the_explicit_flag(admins: Stack) -> None:
    # Given tenant-a now serving a 13-feature model the operator published with the flag
    first = admins.tenant("tenant-a").model_sha256
    put_model(
        current_runtime(),
        "tenant-a",
        served_bytes("model_user_b.pkl"),
        None,
        new_tenant=False,
        filename="b.onnx",
        allow_interface_change=True,
    )
    wider = admins.tenant("tenant-a").model_sha256
    token = ada()
    # When ada activates the 4-feature version without the flag
    refused = call(admin_event("POST", ACTIVATE, token, path_parameters={"version": first[:12]}))
    # Then it is refused with a fixed body naming the flag, and nothing changed
    problem = assert_problem(refused, 409)
    assert "allow_interface_change" in problem["detail"]
    assert admins.tenant("tenant-a").model_sha256 == wider
    # And with the flag it is done
    done = call(
        admin_event(
            "POST",
            ACTIVATE,
            token,
            path_parameters={"version": first[:12]},
            body={"allow_interface_change": True},
        )
    )
    assert done["statusCode"] == 200 and body_of(done)["interface_changed"] is True
    assert admins.tenant("tenant-a").model_sha256 == first
    # And a flag that is not a boolean is a 400
    bad = admin_event(
        "POST",
        ACTIVATE,
        token,
        path_parameters={"version": wider[:12]},
        body={"allow_interface_change": "yes"},
    )
    assert_problem(call(bad), 400)


def test_an_admin_of_tenant_a_cannot_list_get_activate_or_poll_anything_of_tenant_b(admins: Stack) -> None:
    # Given tenant-b with two versions (the first one activatable) and a pending upload
    b_first = admins.tenant("tenant-b").model_sha256
    b_second = publish_variant("tenant-b")
    b_upload = start_upload(login("berit", BOB_ADMIN_PASSWORD))["upload_id"]
    token = ada()
    hostile = {
        "query": {"tenant_id": "tenant-b", "tenant": "tenant-b"},
        "headers": {"X-Tenant-Id": "tenant-b"},
    }
    # When ada lists versions with tenant-b named in the query and headers
    listed = body_of(call(admin_event("GET", VERSIONS, token, **hostile)))["versions"]
    # Then she sees only tenant-a's
    assert {v["sha256"] for v in listed} == {admins.tenant("tenant-a").model_sha256}
    # And tenant-b's versions and upload are the same 404 as ids that never existed
    for version in (b_first, b_second):
        for resource in (VERSION, ACTIVATE):
            response = call(
                admin_event(
                    "POST" if resource == ACTIVATE else "GET",
                    resource,
                    token,
                    path_parameters={"version": version[:12]},
                    **hostile,
                )
            )
            assert_problem(response, 404)
    polled = call(admin_event("GET", UPLOAD, token, path_parameters={"upload_id": b_upload}, **hostile))
    never = call(admin_event("GET", UPLOAD, token, path_parameters={"upload_id": "f" * 32}))
    assert assert_problem(polled, 404) == assert_problem(never, 404)
    # And nothing of tenant-b changed
    assert admins.tenant("tenant-b").model_sha256 == b_second
    status = uploads.uploads(current_runtime()).get("tenant-b", b_upload)
    assert status is not None and status.status == "pending"


# --- the upload form -------------------------------------------------------------------------


@pytest.mark.parametrize("requested", ["pickle", "joblib", "PKL", "Pickle"])
def test_a_pickle_upload_is_refused_at_the_form_request_with_one_fixed_body(
    admins: Stack, requested: str
) -> None:
    # When ada asks for a form to upload a pickle, in any spelling
    response = call(admin_event("POST", UPLOADS, ada(), body={"format": requested}))
    # Then it is a 400 whose body never repeats what was sent, and no upload exists
    problem = assert_problem(response, 400)
    assert problem["detail"] == admin_app.PICKLE_REFUSED
    assert upload_items() == []


@pytest.mark.parametrize("requested", ["skops", "xgboost-json", "lightgbm-txt"])
def test_formats_only_the_operator_registers_are_refused_with_how_to_convert_them(
    admins: Stack, requested: str
) -> None:
    problem = assert_problem(call(admin_event("POST", UPLOADS, ada(), body={"format": requested})), 400)
    assert "ONNX" in problem["detail"] and "onnxmltools" in problem["detail"]
    assert upload_items() == []


def test_the_upload_form_allows_one_key_of_the_callers_tenant_a_size_range_and_a_short_expiry(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment whose upload cap is 1 MiB
    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(1024 * 1024))
    before = time.time()
    # When ada asks for a form (with tenant-b named in the query: never read)
    response = call(
        admin_event("POST", UPLOADS, ada(), body={"format": "onnx"}, query={"tenant_id": "tenant-b"})
    )
    form = body_of(response)
    # Then the form's policy, which S3 evaluates before it stores a byte, allows exactly the key
    # uploads/tenant-a/<upload_id>, 1 byte to the cap, for 5 minutes
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 1024 * 1024] in conditions
    key = f"uploads/tenant-a/{form['upload_id']}"
    assert {"key": key} in conditions and form["fields"]["key"] == key
    assert {"bucket": admins.bucket} in conditions
    expires = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before + 290 <= expires <= time.time() + 301
    assert form["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert form["max_bytes"] == 1024 * 1024 and form["expires_in"] == 300
    # And the upload is pending, in tenant-a
    assert upload_status(ada(), form["upload_id"])["status"] == "pending"


# --- registration -----------------------------------------------------------------------------


def test_an_onnx_upload_registers_end_to_end_and_activate_brings_back_the_previous_version(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = admins.tenant("tenant-a").model_sha256
    token = ada()
    # Given an upload form, and a new ONNX version of tenant-a's model
    form = start_upload(token)
    new_model = variant(served_model("tenant-a"), "retrained")
    # When the file is POSTed with the form and the bucket's event runs the registering function
    assert upload_and_register(form, new_model) == {"registered": 1}
    # Then the upload is registered with its version, which predict serves
    status = upload_status(token, form["upload_id"])
    assert status["status"] == "registered" and "reason" not in status
    assert admins.tenant("tenant-a").model_sha256.startswith(status["version"])
    assert predict_version(monkeypatch) == status["version"]
    # And the uploaded object is gone
    assert uploaded_keys() == []
    # And the previous version can be activated again
    token = ada()
    back = call(admin_event("POST", ACTIVATE, token, path_parameters={"version": first[:12]}))
    assert back["statusCode"] == 200
    assert predict_version(monkeypatch) == first[:12]


def _refuse_any_unpickling(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way to load a pickle fails the test: it records the call and raises."""
    import joblib  # noqa: PLC0415

    calls: list[str] = []

    def refuse(name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} was called on an uploaded file")

        return called

    monkeypatch.setattr(pickle, "loads", refuse("pickle.loads"))
    monkeypatch.setattr(pickle, "load", refuse("pickle.load"))
    monkeypatch.setattr(pickle, "Unpickler", refuse("pickle.Unpickler"))
    monkeypatch.setattr(joblib, "load", refuse("joblib.load"))
    return calls


def test_a_pickles_bytes_uploaded_under_an_onnx_form_are_refused_and_never_loaded(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = admins.tenant("tenant-a").model_sha256
    calls = _refuse_any_unpickling(monkeypatch)
    token = ada()
    form = start_upload(token)
    # When the bytes of a pickle (the demo's own trusted model) arrive through an ONNX form
    outcome = upload_and_register(form, (MODELS_DIR / "model_user_a.pkl").read_bytes())
    # Then the upload is refused with the fixed pickle reason, nothing loaded it
    assert outcome == {"refused": 1}
    status = upload_status(token, form["upload_id"])
    assert status == {
        "upload_id": form["upload_id"],
        "status": "refused",
        "format": "onnx",
        "reason": uploads.REFUSED_PICKLE,
    }
    assert calls == []
    # And the object is deleted, and the tenant still serves its model
    assert uploaded_keys() == []
    assert admins.tenant("tenant-a").model_sha256 == first
    assert predict_version(monkeypatch) == first[:12]


def test_a_refused_registration_leaves_the_active_version_serving(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = admins.tenant("tenant-a").model_sha256
    token = ada()
    for data in (b"not an onnx model at all", served_bytes("model_user_b.pkl")):
        # When a file that is no ONNX graph, or a graph of another interface (without the flag), is uploaded
        form = start_upload(token)
        assert upload_and_register(form, data) == {"refused": 1}
        # Then it is refused with a fixed reason that repeats nothing of the file
        status = upload_status(token, form["upload_id"])
        assert status["status"] == "refused"
        assert status["reason"] in (uploads.REFUSED_CHECKS, uploads.REFUSED_INTERFACE)
        # And tenant-a's mapping and answers are the first version's
        assert admins.tenant("tenant-a").model_sha256 == first
        assert predict_version(monkeypatch) == first[:12]
    assert uploaded_keys() == []
    versions = body_of(call(admin_event("GET", VERSIONS, token)))["versions"]
    assert [v["sha256"] for v in versions] == [first]


def test_an_interface_change_registers_only_when_the_form_asked_for_it(admins: Stack) -> None:
    token = ada()
    form = start_upload(token, allow_interface_change=True)
    assert upload_and_register(form, served_bytes("model_user_b.pkl")) == {"registered": 1}
    assert admins.tenant("tenant-a").n_features == 13


def test_a_second_object_through_a_used_form_changes_nothing_and_is_deleted(admins: Stack) -> None:
    token = ada()
    form = start_upload(token)
    assert upload_and_register(form, variant(served_model("tenant-a"), "first upload")) == {"registered": 1}
    registered = upload_status(token, form["upload_id"])
    mapping = admins.tenant("tenant-a")
    # When the same form is replayed within its expiry with another file
    assert upload_and_register(form, variant(served_model("tenant-a"), "replayed")) == {"replay": 1}
    # Then the upload, the mapping and the versions are as they were, and the object is gone
    assert upload_status(token, form["upload_id"]) == registered
    assert admins.tenant("tenant-a") == mapping
    assert len(body_of(call(admin_event("GET", VERSIONS, token)))["versions"]) == 2
    assert uploaded_keys() == []


def test_an_object_under_another_tenants_prefix_claims_no_upload(admins: Stack) -> None:
    # Given tenant-a's pending upload
    form = start_upload(ada())
    bucket = current_runtime().settings.model_bucket
    # When an object with its upload id appears under tenant-b's prefix (or under no tenant)
    for key in (f"uploads/tenant-b/{form['upload_id']}", f"uploads/{form['upload_id']}", "uploads/x/y"):
        current_runtime().s3.put_object(Bucket=bucket, Key=key, Body=served_model("tenant-a"))
        outcome = deliver(bucket, key)
        # Then it registers nothing, and is deleted
        assert outcome in ({"replay": 1}, {"malformed-key": 1})
    assert upload_status(ada(), form["upload_id"])["status"] == "pending"
    assert uploaded_keys() == []


def test_a_dependency_failure_while_claiming_leaves_the_upload_for_the_events_retry(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    token = ada()
    form = start_upload(token)
    assert post_form(form, variant(served_model("tenant-a"), "retried")).status_code == 204
    original = uploads.claim

    def throttled(*args: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")

    # When DynamoDB fails while the registering function claims the upload
    monkeypatch.setattr(uploads, "claim", throttled)
    bucket = current_runtime().settings.model_bucket
    with pytest.raises(ClientError):
        deliver(bucket, form["fields"]["key"])
    # Then the object and the pending upload are left for EventBridge's retry, which registers it
    assert uploaded_keys() == [form["fields"]["key"]]
    assert upload_status(token, form["upload_id"])["status"] == "pending"
    monkeypatch.setattr(uploads, "claim", original)
    assert deliver(bucket, form["fields"]["key"]) == {"registered": 1}
    assert uploaded_keys() == []


def test_an_oversized_object_is_refused_without_reading_past_the_cap(
    admins: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The policy refuses an oversized POST first (the test above; tests/local/test_post_policy.py
    # against the local stack's moto): here the registering function's own cap is the rule.
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "1000")
    reads: list[str] = []
    original = register_app.runtime.s3.get_object

    def get_object(**kwargs: Any) -> Any:
        if kwargs["Key"].startswith("uploads/"):
            reads.append(kwargs.get("Range", "all of it"))
        return original(**kwargs)

    monkeypatch.setattr(register_app.runtime.s3, "get_object", get_object)
    token = ada()
    form = start_upload(token)
    oversized = served_model("tenant-a") + b"\0" * 5000
    assert upload_and_register(form, oversized) == {"refused": 1}
    assert reads == ["bytes=0-1000"]
    assert upload_status(token, form["upload_id"])["reason"] == uploads.REFUSED_TOO_LARGE


# --- the audit trail ----------------------------------------------------------------------------


@pytest.fixture
def function_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(admin_app.logger.registered_formatter)
    for module in (admin_app, register_app):
        module.logger.addHandler(handler)
    yield stream
    for module in (admin_app, register_app):
        module.logger.removeHandler(handler)


def test_the_audit_trail_records_upload_registration_and_activation_with_no_secret(
    admins: Stack, caplog: pytest.LogCaptureFixture, function_logs: io.StringIO
) -> None:
    caplog.set_level(logging.DEBUG)
    first = admins.tenant("tenant-a").model_sha256
    token = ada()
    form = start_upload(token)
    upload_and_register(form, variant(served_model("tenant-a"), "audited"))
    call(admin_event("POST", ACTIVATE, token, path_parameters={"version": first[:12]}))
    entries = body_of(call(admin_event("GET", "/api/v1/admin/audit", token, query={"limit": "100"})))[
        "entries"
    ]
    done = {(e["action"], e["outcome"], e["target"]) for e in entries}
    assert ("model.upload", "ok", form["upload_id"]) in done
    assert ("model.register", "ok", form["upload_id"]) in done
    assert ("model.activate", "ok", first[:12]) in done
    assert all(e["actor"] == "ada" for e in entries if e["action"].startswith("model."))
    # The form's signature, policy and credentials, and the token, are in no audit item or log line
    runtime = current_runtime()
    items = json.dumps(runtime.dynamodb.scan(TableName=runtime.settings.activity_table_name)["Items"])
    secrets = [form["fields"]["x-amz-signature"], form["fields"]["policy"], token]
    if "x-amz-security-token" in form["fields"]:
        secrets.append(form["fields"]["x-amz-security-token"])
    logs = function_logs.getvalue()
    for secret in secrets:
        assert secret not in items and secret not in logs


# --- packaging (decision 0016) -----------------------------------------------------------------


def test_the_registering_function_imports_no_scikit_learn_or_converter() -> None:
    # Its zip holds numpy, ONNX Runtime and onnx beside the registry: scikit-learn and the
    # converters do not fit Lambda's 250 MB with them, so importing the handler must not need them.
    script = (
        "import sys; import functions.register.app; "
        "print(sorted(m for m in ('sklearn', 'scipy', 'skl2onnx', 'onnxmltools', 'xgboost', 'lightgbm', "
        "'skops', 'joblib') if m in sys.modules))"
    )
    env = child_environment(
        [REPO_ROOT, REPO_ROOT / "layers/model_runtime", REPO_ROOT / "layers/model_serving"],
        "register",
        TABLE_NAME="t",
        MODEL_BUCKET="b",
        ACTIVITY_TABLE_NAME="a",
        AWS_DEFAULT_REGION="us-east-1",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
