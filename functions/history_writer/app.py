"""History writer: predict's history lines, from a CloudWatch Logs subscription, into the
activity table (docs/history.md, decision 0013).

CloudWatch Logs invokes this function asynchronously with `{"awslogs": {"data": ...}}`: base64
of a gzip-compressed JSON document whose `logEvents` are the lines the subscription filter
selected (`{ $.history = 1 || $.history = 2 }`). Per line:

- `"history":1`: a served prediction. One item keyed by caller and request id, written only if
  absent, so a redelivered batch writes nothing new. Expires after the tenant's `history_days`.
- `"history":2`: one part of a capture too large for a log line, written to S3 under the tenant's
  own prefix (SSE-KMS); the record names how many parts there are.

A tenant that no longer exists gets no record (its history was erased with it). Any failure
raises: Lambda retries the batch twice, then sends it to the dead-letter queue, whose depth
raises an alarm (template.yaml): a dependency failure, and a history line that cannot be read,
fail the batch once every other line is stored. A line that is not a history line is skipped.
"""

from __future__ import annotations

import gc

gc.disable()  # no collection while init imports; `end_init` (last line) resumes it

import base64
import gzip
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_runtime.deadlines import DEPENDENCY_ERRORS, describe_failure
from model_runtime.history import HistoryRuntime, part_key, record_from_line
from model_runtime.runtime import end_init
from model_runtime.settings import require_settings

logger = Logger()
metrics = Metrics()
runtime = HistoryRuntime(require_settings(logger, "TABLE_NAME", "ACTIVITY_TABLE_NAME", "CAPTURE_BUCKET"))


def log_events(event: dict[str, Any]) -> list[str]:
    """The messages of a subscription delivery (CloudWatch Logs' `awslogs.data`)."""
    document = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    if document.get("messageType") != "DATA_MESSAGE":  # CONTROL_MESSAGE: CloudWatch's own probe
        return []
    return [str(log_event["message"]) for log_event in document.get("logEvents", [])]


def write_line(message: str) -> str:
    """Store one line; returns what became of it (written, duplicate, skipped, part, no-tenant)."""
    try:
        line = json.loads(message)
        kind = line.get("history") if isinstance(line, dict) else None
    except ValueError:
        kind = None
    if kind not in (1, 2):
        return "skipped"
    tenant = runtime.tenants.get(str(line.get("tenant", "")))
    if tenant is None:
        return "no-tenant"
    if kind == 2:
        runtime.s3.put_object(
            Bucket=runtime.capture_bucket,
            Key=part_key(line, tenant.tenant_id),
            Body=base64.b64decode(line["data"], validate=True),
            ServerSideEncryption="aws:kms",
        )
        return "part"
    record = record_from_line(line, tenant.history_days)
    return "written" if runtime.history.put_new(record) else "duplicate"


class HistoryNotWritten(Exception):
    """Some lines of the batch were not stored. Lambda retries the asynchronous invocation twice
    (the lines stored already are not written again), then sends it to the dead-letter queue,
    whose alarm tells the operator. The message is fixed: a line may hold a tenant's rows."""

    def __init__(self) -> None:
        super().__init__("history lines not written")


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    runtime.deadline.begin(context, event)
    outcomes: dict[str, int] = {}
    for message in log_events(event):
        try:
            outcome = write_line(message)
        except DEPENDENCY_ERRORS as error:
            logger.warning("dependency failed", extra=describe_failure(error))
            outcome = "failed"
        except (KeyError, TypeError, ValueError):
            outcome = "malformed"  # a history line predict should not have written; never logged
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    for outcome, count in outcomes.items():
        name = "History" + outcome.title().replace("-", "")
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    if metrics.metric_set:
        metrics.flush_metrics()
    logger.info("history delivered", extra={"outcomes": outcomes})
    if outcomes.get("failed") or outcomes.get("malformed"):
        raise HistoryNotWritten()
    return outcomes


end_init()  # the last line of init (model_runtime/runtime.py)
