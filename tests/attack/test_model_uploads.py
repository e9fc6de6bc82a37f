"""The tenant-admin model routes under attack, over HTTP: a used upload form replayed, a plain
user escalating its role on the model routes, and a tenant admin naming another tenant's
versions and uploads (OWASP API1, API3 and API5:2023).

The uploads go to the local stack's moto server with the form the API answered; moto sends no
S3 event, so the stack's upload poller delivers the bucket's Object Created events
(local/upload_events.py), and moto checks no POST policy, so the stack checks forms as S3 does
in front of it (local/post_policy.py).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.attack.kit import Api, Caller, Operator
from tests.forge import b64url_json, parts

pytestmark = [pytest.mark.blackbox, pytest.mark.local_only]

UPLOADS = "/api/v1/admin/models/uploads"
VERSIONS = "/api/v1/admin/models/versions"
FINISHED = ("registered", "refused")


def served_model(operator: Operator, tenant_id: str) -> bytes:
    """The ONNX bytes the tenant's mapping pins (the operator's view of the stack)."""
    table = operator.env["TABLE_NAME"]
    item = operator.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": f"tenant#{tenant_id}"}})
    key = item["Item"]["model_key"]["S"]
    body: bytes = (
        operator.client("s3").get_object(Bucket=operator.env["MODEL_BUCKET"], Key=key)["Body"].read()
    )
    return body


def variant(onnx_bytes: bytes, label: str) -> bytes:
    """The same graph with another doc string: a new version with the same interface."""
    import onnx  # noqa: PLC0415

    model = onnx.load_model_from_string(onnx_bytes)
    model.doc_string = label
    return bytes(model.SerializeToString())


def start_form(api: Api, token: str, **body: Any) -> dict[str, Any]:
    reply = api.request("POST", UPLOADS, {"format": "onnx", **body}, token=token, names_bucket=True)
    assert reply.status == 201, reply.body[:300]
    form: dict[str, Any] = reply.json()
    return form


def post_form(form: dict[str, Any], data: bytes) -> int:
    response = requests.post(form["url"], data=form["fields"], files={"file": ("m.onnx", data)}, timeout=30)
    return response.status_code


def upload_status(api: Api, token: str, upload_id: str) -> dict[str, Any]:
    reply = api.request("GET", f"{UPLOADS}/{upload_id}", token=token)
    assert reply.status == 200, reply.body[:300]
    status: dict[str, Any] = reply.json()
    return status


def wait_finished(api: Api, token: str, upload_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = upload_status(api, token, upload_id)
        if status["status"] in FINISHED:
            return status
        time.sleep(0.3)
    raise AssertionError(f"upload {upload_id} not finished in {timeout} s")


def wait_no_uploaded_objects(operator: Operator, tenant_id: str, timeout: float = 60) -> None:
    s3 = operator.client("s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = s3.list_objects_v2(Bucket=operator.env["MODEL_BUCKET"], Prefix=f"uploads/{tenant_id}/")
        if not listing.get("KeyCount"):
            return
        time.sleep(0.3)
    raise AssertionError("the uploaded object was not taken and deleted")


def versions(api: Api, token: str) -> list[dict[str, Any]]:
    reply = api.request("GET", VERSIONS, token=token)
    assert reply.status == 200, reply.body[:300]
    listed: list[dict[str, Any]] = reply.json()["versions"]
    return listed


def test_a_used_upload_form_replayed_after_registration_changes_nothing(api: Api, operator: Operator) -> None:
    tenant = operator.provisioned.upload_tenant
    token = api.login(operator.provisioned.upload_admin)
    model = served_model(operator, tenant)
    # Given an upload registered through its form
    form = start_form(api, token)
    assert post_form(form, variant(model, "registered")) in (200, 201, 204)
    registered = wait_finished(api, token, form["upload_id"])
    assert registered["status"] == "registered", registered
    before = versions(api, token)
    # When the same form is replayed, within its expiry, with another model
    assert post_form(form, variant(model, "replayed")) in (200, 201, 204)
    # Then the object is taken and deleted, and the upload, the versions and the current one are unchanged
    wait_no_uploaded_objects(operator, tenant)
    assert upload_status(api, token, form["upload_id"]) == registered
    after = versions(api, token)
    assert after == before
    assert next(v for v in after if v["current"])["version"] == registered["version"]


def test_an_oversized_upload_is_refused_by_the_forms_policy_and_registers_nothing(
    api: Api, operator: Operator
) -> None:
    tenant = operator.provisioned.upload_tenant
    token = api.login(operator.provisioned.upload_admin)
    before = versions(api, token)
    # Given a form, and a file one byte over its size range
    form = start_form(api, token)
    oversized = b"\0" * (form["max_bytes"] + 1)
    # When the file is POSTed with the form
    response = requests.post(
        form["url"], data=form["fields"], files={"file": ("m.onnx", oversized)}, timeout=60
    )
    # Then the bucket refuses it (S3's EntityTooLarge), nothing is stored, and the upload stays pending
    assert response.status_code == 400 and "EntityTooLarge" in response.text
    wait_no_uploaded_objects(operator, tenant)
    assert upload_status(api, token, form["upload_id"])["status"] == "pending"
    assert versions(api, token) == before


def test_a_plain_user_cannot_escalate_its_role_onto_the_model_routes(
    api: Api, caller_a: Caller, operator: Operator
) -> None:
    admin = api.login(operator.provisioned.tenant_admin)
    before = versions(api, admin)
    current = next(v for v in before if v["current"])["version"]
    header, claims, _ = parts(caller_a.token)
    edited = f"{b64url_json(header)}.{b64url_json(claims | {'roles': ['user', 'admin']})}."
    edited += caller_a.token.split(".")[2]
    for method, path, body in (
        ("POST", UPLOADS, {"format": "onnx"}),
        ("POST", f"{VERSIONS}/{current}/activate", {"allow_interface_change": True}),
        ("GET", VERSIONS, None),
    ):
        # When tenant 1's user calls a model route with its own token, or with admin edited in
        assert api.request(method, path, body, token=caller_a.token).status == 403
        assert api.request(method, path, body, token=edited).status == 401
    # Then tenant 1's versions are as they were
    assert versions(api, admin) == before


def test_a_tenant_admin_reaches_no_other_tenants_versions_or_uploads_whatever_ids_it_sends(
    api: Api, operator: Operator
) -> None:
    # Given tenant 1's admin with a pending upload, and its versions
    a_token = api.login(operator.provisioned.tenant_admin)
    a_upload = start_form(api, a_token)["upload_id"]
    a_versions = versions(api, a_token)
    # And the admin of another tenant, naming tenant 1 in the query and a header
    tenant_a = "tenant-a"
    token = api.login(operator.provisioned.upload_admin)
    hostile = f"?tenant_id={tenant_a}&tenant={tenant_a}"
    headers = {"X-Tenant-Id": tenant_a}
    own = {v["sha256"] for v in versions(api, token)}
    assert own.isdisjoint(v["sha256"] for v in a_versions)
    # When it lists, gets and activates tenant 1's versions, and polls tenant 1's upload
    listed = api.request("GET", VERSIONS + hostile, token=token, headers=headers).json()["versions"]
    assert {v["sha256"] for v in listed} == own
    for version in a_versions:
        for method, path in (
            ("GET", f"{VERSIONS}/{version['version']}"),
            ("POST", f"{VERSIONS}/{version['version']}/activate"),
        ):
            for body in (None, {"tenant_id": tenant_a}):
                reply = api.request(
                    method, path + hostile, body if method == "POST" else None, token=token, headers=headers
                )
                # Then each is refused like an id that never existed (or the body is refused)
                assert reply.status in (400, 404), (method, path, reply.status)
                assert version["sha256"][:12] not in reply.body.decode()
    polled = api.request("GET", f"{UPLOADS}/{a_upload}" + hostile, token=token, headers=headers)
    never = api.request("GET", f"{UPLOADS}/{'0' * 32}", token=token)
    assert polled.status == 404 and polled.body == never.body
    # And a form asked for with tenant 1 named is refused or is for its own tenant's prefix
    assert api.request("POST", UPLOADS, {"format": "onnx", "tenant_id": tenant_a}, token=token).status == 400
    form = start_form(api, token)
    assert form["fields"]["key"].startswith(f"uploads/{operator.provisioned.upload_tenant}/")
    # And tenant 1's versions and upload are as they were
    assert versions(api, a_token) == a_versions
    assert upload_status(api, a_token, a_upload)["status"] == "pending"
