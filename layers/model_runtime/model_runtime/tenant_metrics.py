"""Per-tenant metrics of predict: one CloudWatch Embedded Metric Format (EMF) line per request.

Powertools' `Metrics` holds one dimension set per flush, and the service-wide metrics (alarms
read them with the `service` dimension alone) must keep theirs; a second Powertools instance
would cost about 20 us per request (README, Performance). One hand-written EMF line costs a few
microseconds and carries two dimension sets:

- [service, tenant]: `Requests`, `Latency` (ms, handler time), `Predictions`, `PredictedRows`
- [service, tenant, kind]: `Rejected`, where kind is the problem's class (BadRequest, ...)
- [service, tenant]: `ModelRunBudgetExceeded`, `ModelRunFailed`, when the tenant's own model
  was cut off at its run budget or failed (model_serving/run_budget.py)
- [service]: `Predictions`, `PredictedRows` again, service-wide, from the same values

So a served prediction costs one line, and no Powertools flush: Powertools' `add_metric` and
per-invocation flush cost about as much as the prediction itself on the warm path. Every other
metric (rejections service-wide, cache misses, refusals) still goes through Powertools.

The tenant is the *verified* token's `tid`, recorded before its mapping is looked up, so a
revoked or disabled tenant's refusals are counted under it too. Requests refused before the
token is verified (size cap, no or bad token) have no tenant and are counted only service-wide.
Cardinality: at most 6 + len(REJECTION_KINDS) metrics per tenant (README, Observability).

A served prediction's line is also its inference-history record (docs/history.md, decision 0013):
a few top-level properties beside the metrics (EMF leaves non-metric properties alone), which a
CloudWatch Logs subscription selects (`"history":1`) and hands to the history writer. So history
costs predict no log line, no network call and no write: `history_tail` adds about 1 us.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import sys
import time
from json.encoder import encode_basestring  # C: ~0.1 us a string, json.dumps ~1.5 us
from typing import Final

# status -> the rejection kind, as the problem types in model_runtime/errors.py name them
REJECTION_KINDS: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    415: "UnsupportedMediaType",
    500: "InternalError",
    502: "ModelFailed",
    503: "ServiceUnavailable",
}


class TenantMetrics:
    """Collects one request's per-tenant figures; `flush` writes them as one EMF line."""

    def __init__(self) -> None:
        self._started = 0.0
        self._tenant_id: str | None = None
        self._rows = 0
        self._events: list[str] = []
        self._request_id = ""
        self._subject = ""
        self._history = ""
        self._capture_parts: list[str] = []

    def start(self, request_id: str = "") -> None:
        self._started = time.perf_counter()
        self._tenant_id = None
        self._rows = 0
        self._request_id = request_id
        self._history = ""
        if self._events:
            self._events = []
        if self._capture_parts:
            self._capture_parts = []

    def event(self, name: str) -> None:
        """Count one `name` (a failure of the tenant's own model, e.g. `ModelRunBudgetExceeded`)
        for the tenant, in the request's line."""
        self._events.append(name)

    def tenant(self, tenant_id: str, subject: str = "") -> None:
        self._tenant_id = tenant_id
        self._subject = subject

    def predicted(
        self,
        rows: int,
        model_version: str = "",
        *,
        probabilities: bool = False,
        capture: tuple[str | bytes, str] | None = None,
    ) -> None:
        """A served prediction of `rows` rows: its line becomes a history record; `capture` (the
        request body and the response body, for a tenant that opted in) rides along."""
        self._rows = rows
        if not self._request_id:  # no request id (a direct invocation): no record to key
            return
        self._history = history_tail(
            self._request_id, self._subject, model_version, probabilities=probabilities
        )
        if capture is not None:
            inline, self._capture_parts = capture_text(*capture)
            self._history += inline

    def flush(self, status: int) -> str | None:
        """Write the request's line to stdout (Lambda sends it to CloudWatch); returns it."""
        if self._tenant_id is None:
            return None
        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "InferenceApi")
        service = os.environ.get("POWERTOOLS_SERVICE_NAME", "predict")
        latency_ms = round((time.perf_counter() - self._started) * 1000, 3)
        timestamp = int(time.time() * 1000)
        served = 200 <= status < 300 and self._rows
        if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
            if not (served and self._history):
                return None
            # Metrics off (the quiet local stack): the record still goes out, with no metric directive.
            record = json.loads(
                served_line(
                    "", "", self._tenant_id, timestamp=timestamp, latency_ms=latency_ms, rows=self._rows
                )[:-1]
                + self._history
                + "}"
            )
            line = json.dumps(record | {"_aws": {"Timestamp": timestamp}}, separators=(",", ":"))
        elif served and not self._events:
            line = served_line(
                namespace,
                service,
                self._tenant_id,
                timestamp=timestamp,
                latency_ms=latency_ms,
                rows=self._rows,
                history=self._history,
            )
        else:
            line = emf_line(
                namespace,
                service,
                self._tenant_id,
                timestamp=timestamp,
                latency_ms=latency_ms,
                status=status,
                rows=self._rows,
                events=self._events,
                history=self._history if served else "",
            )
        sys.stdout.write(line + "\n")
        parts = self._capture_parts if served else []
        for index in range(len(parts)):
            sys.stdout.write(part_line(self._tenant_id, self._subject, self._request_id, index, parts))
        return line


def emf_line(
    namespace: str,
    service: str,
    tenant_id: str,
    *,
    timestamp: int,
    latency_ms: float,
    status: int,
    rows: int,
    events: list[str],
    history: str = "",
) -> str:
    """One request's EMF line, whatever its outcome; `history` (`history_tail`) ends it."""
    tenant_set = [
        {"Name": "Requests", "Unit": "Count"},
        {"Name": "Latency", "Unit": "Milliseconds"},
    ]
    values: dict[str, object] = {
        "service": service,
        "tenant": tenant_id,
        "Requests": 1,
        "Latency": latency_ms,
    }
    directives: list[dict[str, object]] = [
        {"Namespace": namespace, "Dimensions": [["service", "tenant"]], "Metrics": tenant_set}
    ]
    for name in events:
        tenant_set.append({"Name": name, "Unit": "Count"})
        values[name] = 1
    if 200 <= status < 300:
        if rows:
            predictions = [
                {"Name": "Predictions", "Unit": "Count"},
                {"Name": "PredictedRows", "Unit": "Count"},
            ]
            tenant_set += predictions
            values |= {"Predictions": 1, "PredictedRows": rows}
            # The same two values, service-wide: what the alarms and the service view read.
            directives.append({"Namespace": namespace, "Dimensions": [["service"]], "Metrics": predictions})
    else:
        values |= {"kind": REJECTION_KINDS.get(status, "Other"), "Rejected": 1}
        directives.append(
            {
                "Namespace": namespace,
                "Dimensions": [["service", "tenant", "kind"]],
                "Metrics": [{"Name": "Rejected", "Unit": "Count"}],
            }
        )
    line = json.dumps(
        {"_aws": {"Timestamp": timestamp, "CloudWatchMetrics": directives}, **values},
        separators=(",", ":"),
    )
    return f"{line[:-1]}{history}}}" if history else line


def served_line(
    namespace: str,
    service: str,
    tenant_id: str,
    *,
    timestamp: int,
    latency_ms: float,
    rows: int,
    history: str = "",
) -> str:
    """`emf_line` of a served prediction, character for character, from a template: the warm
    path's line (building and dumping the whole structure costs ~7 us more, 5% of a warm
    batch-1 request; tests/unit/test_tenant_metrics.py holds the two equal)."""
    head, middle = _served_template(namespace, service)
    return (
        f"{head}{timestamp}{middle}{json.dumps(tenant_id)}"
        f',"Requests":1,"Latency":{latency_ms!r},"Predictions":1,"PredictedRows":{rows}{history}}}'
    )


@functools.lru_cache(maxsize=8)
def _served_template(namespace: str, service: str) -> tuple[str, str]:
    """The served line's fixed text around its timestamp, up to the tenant's value."""
    mark = emf_line(namespace, service, "", timestamp=0, latency_ms=0.0, status=200, rows=1, events=[])
    before, after = mark.split('"Timestamp":0,', 1)
    middle = after[: after.index('"tenant":') + len('"tenant":')]
    return before + '"Timestamp":', "," + middle


# --- The history record's properties (docs/history.md) ------------------------------------------
#
# The record's time is the line's own `_aws.Timestamp` (the writer renders it as ISO 8601 UTC),
# its tenant the line's `tenant`. Never a token, a header or an address: only what is named here.
HISTORY_MARK: Final = '"history":1'
# CloudWatch Logs takes events up to 256 KiB: a capture up to this many bytes rides in the record's
# line; a larger one is written as parts of this many bytes (base64: 4/3 of it), one line each,
# which the writer stores as S3 objects under the tenant's prefix (decision 0013).
CAPTURE_INLINE_BYTES: Final = 192 * 1024
CAPTURE_PART_BYTES: Final = 144 * 1024


def history_tail(request_id: str, subject: str, model_version: str, *, probabilities: bool) -> str:
    """The served line's history properties, as text to end the line with."""
    flag = "true" if probabilities else "false"
    return (
        f',{HISTORY_MARK},"request_id":{encode_basestring(request_id)},"sub":{encode_basestring(subject)}'
        f',"model_version":{encode_basestring(model_version)},"probabilities":{flag}'
    )


def capture_text(body: str | bytes, response: str) -> tuple[str, list[str]]:
    """(text to add to the record's line, the capture's parts when it is too large for one line).

    `body` is the request body predict parsed (strict JSON: `instances`, optional `parameters`),
    `response` the 200's body: both are JSON text already, so they are embedded, not re-encoded
    (re-encoding 1000 rows cost far more than this). JSON allows line breaks only as whitespace
    between tokens, so replacing them with spaces keeps the document and keeps it one log line.
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    capture = f'{{"request":{text.replace(chr(10), " ").replace(chr(13), " ")},"response":{response}}}'
    data = capture.encode("utf-8") if not capture.isascii() else None
    size = len(data) if data is not None else len(capture)
    if size <= CAPTURE_INLINE_BYTES:
        return f',"capture":{capture}', []
    raw = data if data is not None else capture.encode("ascii")
    parts = [
        base64.b64encode(raw[i : i + CAPTURE_PART_BYTES]).decode("ascii")
        for i in range(0, len(raw), CAPTURE_PART_BYTES)
    ]
    return f',"capture_parts":{len(parts)},"capture_bytes":{size}', parts


def part_line(tenant_id: str, subject: str, request_id: str, index: int, parts: list[str]) -> str:
    """Part `index` of a large capture, as its own line (the subscription selects these too)."""
    return (
        f'{{"history":2,"tenant":{encode_basestring(tenant_id)},"sub":{encode_basestring(subject)}'
        f',"request_id":{encode_basestring(request_id)},"part":{index},"parts":{len(parts)}'
        f',"data":"{parts[index]}"}}\n'
    )


tenant_metrics = TenantMetrics()
