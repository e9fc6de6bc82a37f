"""Register: a tenant admin's uploaded model file, checked by the registry and published.

Invoked by EventBridge with the model bucket's "Object Created" events under `uploads/`
(template.yaml, RegisterFunction; docs/tenant-admin.md). Per object:

1. The tenant and the upload id come from the key, `uploads/<tenant>/<upload_id>`, which the
   tenant-admin function's presigned POST fixed for that tenant's admin; any other key is deleted.
2. The upload is claimed: `pending` -> `checking`, one conditional write on the item keyed by that
   tenant and that id. Nothing pending (a second object through a replayed form, or an id of no
   upload of that tenant): nothing changes, and the object is deleted.
3. The registry's checks and the publish step are the operator's own (`inferctl publish-model`
   calls the same `inferctl.onboarding.put_model`): a pickle is refused by its first byte, before
   anything could load it (`registry.registration.source_format`); an ONNX graph is walked, run
   on extreme rows under the run budget and pinned; a change of the tenant's interface needs the
   flag the admin set when asking for the form.
4. The upload becomes `registered` (with the version) or `refused` (with a fixed reason, never a
   byte of the file), the outcome is audited, and the uploaded object is deleted either way.

ONNX only: this is a zip function without scikit-learn (decision 0016).
"""

from __future__ import annotations

import gc

gc.disable()  # no collection while init imports; `end_init` (last line) resumes it

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_runtime import audit, uploads, versions
from model_runtime.runtime import Runtime, end_init
from model_runtime.settings import require_settings
from model_runtime.table import Upload

from inferctl.onboarding import OnboardingError, put_model
from registry.registration import PICKLE, source_format

logger = Logger()
metrics = Metrics()
runtime = Runtime(require_settings(logger, "TABLE_NAME", "MODEL_BUCKET", "ACTIVITY_TABLE_NAME"))
REGISTER_ACTION = "model.register"


def uploaded_objects(event: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(bucket, key, version id) of an EventBridge "Object Created" event from S3."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return []
    detail = event.get("detail") or {}
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    found = detail.get("object") or {}
    return [(bucket, str(found.get("key") or ""), found.get("version-id"))]


def handle_object(bucket: str, key: str, version_id: str | None) -> str:
    """Register one uploaded object; returns what became of it. The object is deleted once its
    fate is decided; a dependency failure before that (claiming it) raises, and EventBridge's
    retry finds the object and the upload as they were."""
    if bucket != runtime.settings.model_bucket or not key.startswith(uploads.UPLOAD_PREFIX):
        return "ignored"  # not ours to delete
    parsed = uploads.parse_key(key)
    if parsed is None:
        logger.warning("upload object with a malformed key", extra={"security_event": "upload_key"})
        delete(bucket, key, version_id)
        return "malformed-key"
    upload = uploads.claim(runtime, *parsed)
    if upload is None:
        logger.warning(
            "upload object for no pending upload",
            extra={"security_event": "upload_replay", "tenant_id": parsed[0], "upload_id": parsed[1]},
        )
        delete(bucket, key, version_id)
        return "replay"
    try:
        return register_upload(upload, bucket, key)
    finally:
        delete(bucket, key, version_id)


def delete(bucket: str, key: str, version_id: str | None) -> None:
    if version_id:  # the version itself: a plain delete would only add a delete marker
        runtime.s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
    else:
        runtime.s3.delete_object(Bucket=bucket, Key=key)


def register_upload(upload: Upload, bucket: str, key: str) -> str:
    cap = uploads.max_bytes()
    try:
        # At most the cap and one byte: S3's policy refused a larger POST; this holds regardless.
        data = runtime.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{cap}")["Body"].read()
        if len(data) > cap:
            return refuse(upload, uploads.REFUSED_TOO_LARGE, "too large")
        if source_format("upload.onnx", data) == PICKLE:  # the registry's own rule, before any load
            return refuse(upload, uploads.REFUSED_PICKLE, "pickle")
        facts = put_model(
            runtime,
            upload.tenant_id,
            data,
            None,
            new_tenant=False,
            filename="upload.onnx",
            allow_interface_change=upload.allow_interface_change,
        )
    except OnboardingError as error:
        interface = isinstance(error.__cause__, versions.InterfaceChanged)
        # The registry's own line goes to the operator's log only: it may quote the graph's names.
        logger.info("upload refused by the registry", extra={"registry_reason": str(error)[:500]})
        return refuse(upload, uploads.REFUSED_INTERFACE if interface else uploads.REFUSED_CHECKS, "checks")
    except Exception:
        logger.exception("upload registration failed", extra={"tenant_id": upload.tenant_id})
        uploads.finish(runtime, upload, reason=uploads.REFUSED_FAILED)
        record(upload, audit.FAILED)
        return "failed"
    uploads.finish(runtime, upload, sha256=facts.sha256)
    record(upload, audit.OK)
    logger.info(
        "upload registered",
        extra={"tenant_id": upload.tenant_id, "upload_id": upload.upload_id, "version": facts.version},
    )
    return "registered"


def refuse(upload: Upload, reason: str, why: str) -> str:
    uploads.finish(runtime, upload, reason=reason)
    record(upload, audit.INVALID)
    logger.info(
        "upload refused", extra={"tenant_id": upload.tenant_id, "upload_id": upload.upload_id, "why": why}
    )
    return "refused"


def record(upload: Upload, outcome: str) -> None:
    audit.record(
        runtime.activity,
        upload.tenant_id,
        actor=upload.requested_by,
        via=audit.API,
        source="upload",
        action=REGISTER_ACTION,
        target=upload.upload_id,
        outcome=outcome,
    )


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    runtime.deadline.begin(context, event)
    outcomes: dict[str, int] = {}
    for bucket, key, version_id in uploaded_objects(event):
        outcome = handle_object(bucket, key, version_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        metrics.add_metric(name="Upload" + outcome.title().replace("-", ""), unit=MetricUnit.Count, value=1)
    if metrics.metric_set:
        metrics.flush_metrics()
    return outcomes


end_init()  # the last line of init (model_runtime/runtime.py)
