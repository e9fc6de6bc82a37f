"""The local stack's moto server refuses upload forms as S3 does (local/post_policy.py), so that
"an oversized upload is refused by S3's policy, not by reading it" holds on `make serve` too.

Each test takes the form the tenant-admin function hands out (`model_runtime.uploads.upload_form`)
and POSTs it to the stack's moto server, as a client does."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from model_runtime import uploads
from model_runtime.runtime import Runtime
from model_runtime.settings import read_settings
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from local.serve import MotoServer

pytestmark = pytest.mark.blackbox

KEY = "uploads/tenant-a/" + "a" * 32
CAP = 1000


@dataclass
class Bucket:
    s3: Any
    name: str

    def stored(self) -> list[str]:
        return [entry["Key"] for entry in self.s3.list_objects_v2(Bucket=self.name).get("Contents", [])]


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    """The local stack's moto server, a new bucket in it, and the admin function's settings."""
    server = MotoServer().start()
    bucket = f"local-models-{uuid.uuid4().hex[:12]}"
    for name, value in {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MODEL_BUCKET": bucket,
        "UPLOAD_MAX_BYTES": str(CAP),
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    try:
        yield Bucket(s3, bucket)
    finally:
        server.stop()


def form(key: str = KEY) -> dict[str, Any]:
    signed: dict[str, Any] = uploads.upload_form(Runtime(read_settings()), key)
    return signed


def post(signed: dict[str, Any], data: bytes, **changed: str) -> requests.Response:
    fields = signed["fields"] | changed
    return requests.post(signed["url"], data=fields, files={"file": ("m.onnx", data)}, timeout=30)


def test_a_file_within_the_forms_policy_is_stored_at_its_key(moto: Bucket) -> None:
    assert post(form(), b"x" * CAP).status_code == 204
    assert moto.stored() == [KEY]


def test_an_oversized_upload_is_refused_by_the_policy_before_it_is_stored(moto: Bucket) -> None:
    # When a file one byte over the form's content-length-range is POSTed with it
    reply = post(form(), b"x" * (CAP + 1))
    # Then S3's answer is EntityTooLarge, and nothing was stored (no registration can start)
    assert reply.status_code == 400 and "<Code>EntityTooLarge</Code>" in reply.text
    assert moto.stored() == []


def test_a_form_sent_with_another_key_or_an_extra_field_is_refused(moto: Bucket) -> None:
    signed = form()
    other = "uploads/tenant-b/" + "b" * 32
    assert post(signed, b"x", key=other).status_code == 403
    assert post(signed, b"x", **{"Content-Type": "text/plain"}).status_code == 403
    assert moto.stored() == []


def test_a_policy_edited_to_allow_more_is_refused_by_its_signature(moto: Bucket) -> None:
    signed = form()
    policy = json.loads(base64.b64decode(signed["fields"]["policy"]))
    policy["conditions"] = [
        ["content-length-range", 1, 10**9] if isinstance(c, list) else c for c in policy["conditions"]
    ]
    edited = base64.b64encode(json.dumps(policy).encode()).decode()
    reply = post(signed, b"x" * (CAP + 1), policy=edited)
    assert reply.status_code == 403 and "SignatureDoesNotMatch" in reply.text
    assert moto.stored() == []


def test_an_expired_form_is_refused(moto: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_FORM_SECONDS", "-1")
    reply = post(form(), b"x")
    assert reply.status_code == 403 and "Policy expired" in reply.text
    assert moto.stored() == []


def test_moto_itself_checks_no_policy_which_is_why_the_local_stack_does(moto: Bucket) -> None:
    # Given moto's own server, without the check in front of it (moto 5.2), sharing this process's
    # moto state: if this fails, moto checks POST policies now, and local/post_policy.py can go
    bare = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True)
    thread = threading.Thread(target=bare.serve_forever, daemon=True)
    thread.start()
    try:
        signed = form() | {"url": f"http://127.0.0.1:{bare.server_port}/{moto.name}"}
        # When an oversized file is POSTed with the form
        assert post(signed, b"x" * (CAP + 1)).status_code == 204
        # Then moto stored it
        assert moto.stored() == [KEY]
    finally:
        bare.shutdown()
        bare.server_close()
