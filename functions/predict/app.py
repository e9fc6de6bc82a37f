"""Predict: the caller's own model answers the caller's rows, and nothing else is reachable.

POST /api/v1/predict   Authorization: Bearer <token>, {"instances": [[...], ...]}
                       (optionally with "parameters": {"probabilities": true})
GET  /api/v1/model     the caller's model card

The order of the steps is the security design (README, "Request path of predict"): the cheap,
identity-free checks come first, the model is chosen by the verified token alone, and the payload
must fit that model before the model is fetched, let alone run.
"""

from __future__ import annotations

import gc

gc.disable()  # no collection while init imports; `end_init` (last line) resumes it

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_runtime.access import resolve_tenant, verified_caller
from model_runtime.errors import BadRequest, UnsupportedMediaType
from model_runtime.http import (
    Event,
    Response,
    Router,
    capped_body,
    header,
    json_response,
    media_type,
    utf8_or_unspecified,
)
from model_runtime.runtime import end_init
from model_runtime.settings import require_settings
from model_runtime.table import CLASSIFICATION, REGRESSION, Tenant
from model_runtime.tenant_metrics import tenant_metrics
from model_serving.answers import answer
from model_serving.models import PredictRuntime
from model_serving.payload import validate_request
from model_serving.run_budget import TenantBudget

logger = Logger()
metrics = Metrics()
app = Router(logger, metrics)
# This container's state, built at init; a missing setting fails the init, naming the variable.
runtime = PredictRuntime(require_settings(logger, "TABLE_NAME", "MODEL_BUCKET", "SIGNING_KEY_ID"))


def caller_tenant(event: Event) -> Tenant:
    """Steps 2 and 3: verify the bearer token, then map its tenant claim, and only that."""
    claims = verified_caller(runtime, event)  # the token, and the authorizer's tenant is the token's
    tenant_metrics.tenant(claims.tenant_id, claims.subject)  # verified: refusals counted per tenant too
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    # Before any mapping or model is read: this invocation runs for the token's tenant, and its
    # data is read with the credentials vended for that tenant alone (model_serving/models.py).
    runtime.admit(claims.tenant_id, authorizer)
    tenant = resolve_tenant(runtime, claims)
    logger.append_keys(tenant_id=tenant.tenant_id)
    return tenant


@app.route("POST", "/api/v1/predict")
def predict(event: Event) -> Response:
    body = capped_body(event, runtime.settings.max_body_bytes)  # 1. size cap, before any parsing
    tenant = caller_tenant(event)  # 2-3. token, then tenant
    # A content-coded body (gzip, ...) is refused, never inflated, nor misread as JSON (RFC 9110 8.4).
    coded = header(event, "Content-Encoding").strip().lower() not in ("", "identity")
    if media_type(event) != "application/json" or coded or not utf8_or_unspecified(event):
        raise UnsupportedMediaType(
            "Send the instances as application/json in UTF-8, without a Content-Encoding."
        )
    rows, parameters = validate_request(  # 4. payload vs mapping
        body,
        tenant.n_features,
        tenant.max_batch,
        feature_names=tenant.feature_names,
        accepts_missing=tenant.accepts_missing,
    )
    if parameters.probabilities and tenant.task == REGRESSION:
        raise BadRequest("This model is a regressor: it gives values, not probabilities.")
    model = runtime.models.get(tenant)  # 5. warm cache, or fetch + verify + parse (ONNX)
    # 6. under the tenant's run budget (model_serving/run_budget.py): the model's range, predict,
    #    strict JSON (model_serving/answers.py)
    with TenantBudget(tenant):
        response = answer(
            model, rows, probabilities=parameters.probabilities, model_version=tenant.model_version
        )
    # Predictions, PredictedRows and the history record: the request's one EMF line (docs/history.md)
    tenant_metrics.predicted(
        len(rows),
        tenant.model_version,
        probabilities=parameters.probabilities,
        capture=(body, response.body) if tenant.capture else None,
    )
    return response


@app.route("GET", "/api/v1/model")
def model_card(event: Event) -> Response:
    tenant = caller_tenant(event)
    metrics.add_metric(name="ModelCardServed", unit=MetricUnit.Count, value=1)
    card: dict[str, Any] = {
        "task": tenant.task,
        "n_features": tenant.n_features,
        "feature_names": None if tenant.feature_names is None else list(tenant.feature_names),
        "accepts_missing": tenant.accepts_missing,
        "max_batch": tenant.max_batch,
        "classes": list(tenant.classes) if tenant.task == CLASSIFICATION else None,
        "version": tenant.model_version,
        "format": tenant.model_format,
        # When the operator last served a version with another interface (epoch s); null: never.
        "interface_changed_at": tenant.interface_changed_at or None,
    }
    if tenant.sklearn_version:  # the runtime a skops model needs; ONNX needs none
        card["sklearn_version"] = tenant.sklearn_version
    return json_response(200, card)


# Warm-path budget (README, Performance): Logger.inject_lambda_context costs more per request than
# our own checks, so the request id is set by hand (the happy path logs nothing). Powertools'
# Tracer is not used: importing the X-Ray SDK added 0.28 s to every cold start, and Lambda's
# active tracing (template.yaml) records each invocation and its init without it. Metrics are
# flushed only when a request added some (`log_metrics` would also warn on every happy request,
# whose metrics are written as one EMF line: model_runtime/tenant_metrics.py).
cold_start = True


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global cold_start  # noqa: PLW0603 - one flag per container, as Powertools keeps its own
    if cold_start:
        cold_start = False
        metrics.provider.add_cold_start_metric(context)  # ColdStart, by function_name and service
    runtime.deadline.begin(context, event)  # every AWS call of this request fits in its time left
    runtime.begin(getattr(context, "tenant_id", None))  # Lambda's tenant id (tenant isolation mode)
    # API Gateway's id of the request (its access log's requestId); Lambda's own when invoked directly
    request_id = (event.get("requestContext") or {}).get("requestId") or context.aws_request_id
    tenant_metrics.start(request_id)
    # The keys a request appends: the two below, set anew, and tenant_id (`caller_tenant`), removed
    # so a request refused before its tenant is known never logs the last one's (clear_state: 7 us).
    logger.remove_keys(["tenant_id"])
    logger.append_keys(correlation_id=request_id, function_request_id=context.aws_request_id)
    result = app.resolve(event)
    result["headers"]["X-Request-Id"] = request_id  # the key of its history record (docs/history.md)
    tenant_metrics.flush(result["statusCode"])  # the per-tenant line (model_runtime/tenant_metrics.py)
    if metrics.metric_set:
        metrics.flush_metrics()
    return result


end_init()  # the last line of init (model_runtime/runtime.py)
