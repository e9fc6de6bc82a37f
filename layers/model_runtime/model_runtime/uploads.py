"""A tenant admin's model upload: the form that puts the file in S3, and the upload's life.

1. `POST /api/v1/admin/models/uploads` (functions/admin) records a `pending` upload and answers a
   presigned S3 POST (`upload_form`) for exactly one key, `uploads/<tenant>/<upload_id>`, with a
   content-length range (`UPLOAD_MAX_BYTES`) and a short expiry (`UPLOAD_FORM_SECONDS`). The file
   never passes through Lambda's request body; S3 refuses an oversized one by the policy, before
   anything reads it.
2. The bucket's Object Created event runs functions/register: it takes the tenant and the upload
   id from the key (`parse_key`), claims the upload (`pending` -> `checking`, one conditional
   write: a second object for the same upload, a replayed form, claims nothing), runs the
   registry's checks and publishes, then finishes it `registered` or `refused` with a fixed reason;
   the uploaded object is deleted either way.

Formats over the API (docs/decisions/0016-uploads-register-onnx-in-a-zip-function.md): ONNX only.
The registering function is a zip function, and the registry's scikit-learn/XGBoost/LightGBM
toolset does not fit Lambda's 250 MB beside ONNX Runtime; a tenant converts those models to ONNX
on its own machine (skl2onnx, onnxmltools), or asks the operator (`inferctl publish-model`).
A pickle is never accepted over the API, in any name.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

from botocore.config import Config

from model_runtime.runtime import new_client
from model_runtime.table import PENDING, Upload, Uploads

if TYPE_CHECKING:
    from model_runtime.runtime import Runtime

ONNX_UPLOAD: Final = "onnx"
ACCEPTED_FORMATS: Final = frozenset({ONNX_UPLOAD})
# Formats the registry reads from the operator's machine, not over the API (see above).
OPERATOR_ONLY_FORMATS: Final = frozenset({"skops", "xgboost", "xgboost-json", "lightgbm", "lightgbm-txt"})
PICKLE_FORMATS: Final = frozenset({"pickle", "pkl", "joblib", "cloudpickle", "dill"})

DEFAULT_MAX_BYTES: Final = 50 * 1024 * 1024  # below the registry's 64 MiB model cap
DEFAULT_FORM_SECONDS: Final = 300
RECORD_DAYS: Final = 30  # how long an upload's status stays readable

UPLOAD_PREFIX: Final = "uploads/"
_KEY = re.compile(r"uploads/([a-z0-9][a-z0-9-]{0,63})/([0-9a-f]{32})")
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")

# The reasons a refused upload gives its tenant: fixed phrases, never a byte of the file.
REFUSED_PICKLE: Final = (
    "The file is a pickle, which is never accepted over the API: export the model to ONNX "
    "(skl2onnx or onnxmltools, zipmap off) and upload the .onnx file."
)
REFUSED_TOO_LARGE: Final = "The file is larger than this deployment's upload limit."
REFUSED_INTERFACE: Final = (
    "The model changes the tenant's interface (task, features, classes or probabilities): ask for "
    "a new upload with allow_interface_change once every client is ready for it."
)
REFUSED_CHECKS: Final = (
    "The model failed the registry's checks (a valid ONNX graph of one [N, n_features] float "
    "input, converter operators only, label and probability outputs, within the run budget): "
    "see docs/models.md, or ask the operator to register it."
)
REFUSED_FAILED: Final = "The registration failed for a reason of the service's: upload the file again."


def max_bytes() -> int:
    return int(os.environ.get("UPLOAD_MAX_BYTES", "") or DEFAULT_MAX_BYTES)


def form_seconds() -> int:
    return int(os.environ.get("UPLOAD_FORM_SECONDS", "") or DEFAULT_FORM_SECONDS)


def new_upload_id() -> str:
    return secrets.token_hex(16)


def valid_upload_id(text: str) -> bool:
    return _UPLOAD_ID.fullmatch(text) is not None


def object_key(tenant_id: str, upload_id: str) -> str:
    return f"{UPLOAD_PREFIX}{tenant_id}/{upload_id}"


def parse_key(key: str) -> tuple[str, str] | None:
    """(tenant, upload id) of an uploaded object's key; None for any other key."""
    match = _KEY.fullmatch(key)
    return None if match is None else (match.group(1), match.group(2))


def uploads(runtime: Runtime) -> Uploads:
    return Uploads(runtime.dynamodb, runtime.settings.table_name)


def start(
    runtime: Runtime, tenant_id: str, subject: str, model_format: str, *, allow_interface_change: bool
) -> tuple[Upload, dict[str, Any]]:
    """A new pending upload of `tenant_id` and the presigned POST that uploads its file."""
    now = int(time.time())
    upload = Upload(
        tenant_id, new_upload_id(), PENDING, model_format, subject, now, now, allow_interface_change
    )
    uploads(runtime).put_new(upload, now + RECORD_DAYS * 86400)
    form = upload_form(runtime, object_key(tenant_id, upload.upload_id))
    return upload, form


def upload_form(runtime: Runtime, key: str) -> dict[str, Any]:
    """A presigned POST for exactly `key`, of 1 to `max_bytes()` bytes, valid `form_seconds()`.

    Signed with SigV4 (`x-amz-algorithm`, ...): the Lambda role's credentials are temporary, and
    S3 takes their session token in a form only with SigV4. Presigning is local: no AWS call."""
    signer = new_client(runtime.botocore_session, "s3", Config(signature_version="s3v4"))
    form: dict[str, Any] = signer.generate_presigned_post(
        Bucket=runtime.settings.model_bucket,
        Key=key,  # an exact key: botocore adds the {"key": key} condition
        Conditions=[["content-length-range", 1, max_bytes()]],
        ExpiresIn=form_seconds(),
    )
    return form


def claim(runtime: Runtime, tenant_id: str, upload_id: str) -> Upload | None:
    """The pending upload, now `checking`; None when there is none of that tenant, or it is no
    longer pending (the object is then a replay, and changes nothing)."""
    store = uploads(runtime)
    return store.get(tenant_id, upload_id) if store.claim(tenant_id, upload_id, int(time.time())) else None


def finish(runtime: Runtime, upload: Upload, *, sha256: str = "", reason: str = "") -> None:
    """`registered` with the version's digest, or `refused` with a fixed reason."""
    uploads(runtime).finish(
        upload.tenant_id, upload.upload_id, sha256=sha256, reason=reason, now=int(time.time())
    )
