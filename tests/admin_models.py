"""Model versions and uploads for the tenant-admin tests: a second version of a tenant's model,
an upload through the presigned form, and its registration as the bucket's event would run it."""

from __future__ import annotations

from typing import Any

import requests

from local.upload_events import object_created_event
from tests.support import current_runtime


def served_model(tenant_id: str) -> bytes:
    """The bytes the tenant's mapping pins now."""
    runtime = current_runtime()
    tenant = runtime.table.get_tenant(tenant_id, consistent=True)
    assert tenant is not None
    body: bytes = runtime.s3.get_object(Bucket=runtime.settings.model_bucket, Key=tenant.model_key)[
        "Body"
    ].read()
    return body


def variant(onnx_bytes: bytes, label: str = "variant") -> bytes:
    """The same graph with another doc string: another version (digest), the same interface and answers."""
    import onnx  # noqa: PLC0415

    model = onnx.load_model_from_string(onnx_bytes)
    model.doc_string = label
    return bytes(model.SerializeToString())


def publish_variant(tenant_id: str, label: str = "variant") -> str:
    """Publish a second version of the tenant's model, as the operator would; its digest."""
    from inferctl.onboarding import put_model  # noqa: PLC0415

    facts = put_model(
        current_runtime(),
        tenant_id,
        variant(served_model(tenant_id), label),
        None,
        new_tenant=False,
        filename="variant.onnx",
    )
    return facts.sha256


def post_form(form: dict[str, Any], data: bytes) -> requests.Response:
    """What a client does with the form: a multipart POST, the file last."""
    return requests.post(form["url"], data=form["fields"], files={"file": ("model.onnx", data)}, timeout=30)


def deliver(bucket: str, key: str) -> dict[str, int]:
    """The bucket's Object Created event for `key`, handed to the registering function."""
    from functions.register import app as register_app  # noqa: PLC0415
    from tests.support import FakeLambdaContext  # noqa: PLC0415

    head = current_runtime().s3.head_object(Bucket=bucket, Key=key)
    event = object_created_event(bucket, key, size=head["ContentLength"], version_id=head.get("VersionId"))
    outcome: dict[str, int] = register_app.lambda_handler(event, FakeLambdaContext())
    return outcome
