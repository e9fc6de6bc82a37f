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
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
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

    def start(self) -> None:
        self._started = time.perf_counter()
        self._tenant_id = None
        self._rows = 0
        if self._events:
            self._events = []

    def event(self, name: str) -> None:
        """Count one `name` (a failure of the tenant's own model, e.g. `ModelRunBudgetExceeded`)
        for the tenant, in the request's line."""
        self._events.append(name)

    def tenant(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id

    def predicted(self, rows: int) -> None:
        self._rows = rows

    def flush(self, status: int) -> str | None:
        """Write the request's line to stdout (Lambda sends it to CloudWatch); returns it."""
        if self._tenant_id is None or os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
            return None
        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "InferenceApi")
        service = os.environ.get("POWERTOOLS_SERVICE_NAME", "predict")
        latency_ms = round((time.perf_counter() - self._started) * 1000, 3)
        timestamp = int(time.time() * 1000)
        if 200 <= status < 300 and self._rows and not self._events:
            line = served_line(
                namespace,
                service,
                self._tenant_id,
                timestamp=timestamp,
                latency_ms=latency_ms,
                rows=self._rows,
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
            )
        sys.stdout.write(line + "\n")
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
) -> str:
    """One request's EMF line, whatever its outcome."""
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
    return json.dumps(
        {"_aws": {"Timestamp": timestamp, "CloudWatchMetrics": directives}, **values},
        separators=(",", ":"),
    )


def served_line(
    namespace: str, service: str, tenant_id: str, *, timestamp: int, latency_ms: float, rows: int
) -> str:
    """`emf_line` of a served prediction, character for character, from a template: the warm
    path's line (building and dumping the whole structure costs ~7 us more, 5% of a warm
    batch-1 request; tests/unit/test_tenant_metrics.py holds the two equal)."""
    head, middle = _served_template(namespace, service)
    return (
        f"{head}{timestamp}{middle}{json.dumps(tenant_id)}"
        f',"Requests":1,"Latency":{latency_ms!r},"Predictions":1,"PredictedRows":{rows}}}'
    )


@functools.lru_cache(maxsize=8)
def _served_template(namespace: str, service: str) -> tuple[str, str]:
    """The served line's fixed text around its timestamp, up to the tenant's value."""
    mark = emf_line(namespace, service, "", timestamp=0, latency_ms=0.0, status=200, rows=1, events=[])
    before, after = mark.split('"Timestamp":0,', 1)
    middle = after[: after.index('"tenant":') + len('"tenant":')]
    return before + '"Timestamp":', "," + middle


tenant_metrics = TenantMetrics()
