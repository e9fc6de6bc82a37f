"""History: each caller reads back their own served predictions (docs/history.md).

GET /api/v1/history?limit=N&cursor=C   the caller's records, newest first (limit 1..100, default 20)
GET /api/v1/history/{request_id}       one of the caller's records; 404 otherwise

Tenant and caller come from the verified token only, as in predict: the token is verified again
here (behind the REQUEST authorizer, which already did), its tenant must be the authorizer's,
and the records read are those of the partition `history#<tenant>#<sub>` of that token. No id in
the path, the query or a cursor chooses another: a cursor is signed for its tenant and caller
(`model_runtime.history.Cursors`), and a request id is looked up inside the caller's own records,
so "someone else's" and "no such request" are the same 404.
"""

from __future__ import annotations

import gc

gc.disable()  # no collection while init imports; `end_init` (last line) resumes it

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_runtime.access import resolve_tenant, verified_caller
from model_runtime.errors import BadRequest, NotFound
from model_runtime.history import DEFAULT_PAGE, MAX_PAGE, REQUEST_ID_PATTERN, HistoryRuntime, shown
from model_runtime.http import Event, Response, Router, json_response
from model_runtime.runtime import end_init
from model_runtime.settings import require_settings
from model_runtime.tokens import Claims

logger = Logger()
metrics = Metrics()
app = Router(logger, metrics)
runtime = HistoryRuntime(
    require_settings(logger, "TABLE_NAME", "SIGNING_KEY_ID", "ACTIVITY_TABLE_NAME", "CURSOR_KEY_ID")
)


def caller(event: Event) -> Claims:
    """The verified token's claims, of a tenant that is active and is the authorizer's."""
    claims = verified_caller(runtime, event)
    resolve_tenant(runtime, claims)  # revoked, disabled or unmapped: refused as predict refuses
    return claims


def page_size(query: dict[str, Any]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_PAGE
    if not (isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 3):
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}.")
    limit = int(raw)
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}.")
    return limit


@app.route("GET", "/api/v1/history")
def history(event: Event) -> Response:
    claims = caller(event)
    query = event.get("queryStringParameters") or {}
    multi = event.get("multiValueQueryStringParameters") or {}
    if any(len(values or ()) > 1 for values in multi.values()):
        raise BadRequest("Give each query parameter once.")
    if set(query) - {"limit", "cursor"}:
        raise BadRequest("The query takes only limit and cursor.")
    limit = page_size(query)
    cursor = query.get("cursor")
    after = None if cursor is None else runtime.cursors.open(claims.tenant_id, claims.subject, str(cursor))
    records, last = runtime.history.page(claims.tenant_id, claims.subject, limit, after)
    body: dict[str, Any] = {"records": [shown(record) for record in records]}
    if last is not None:
        body["next_cursor"] = runtime.cursors.issue(claims.tenant_id, claims.subject, last)
    return json_response(200, body)


@app.route("GET", "/api/v1/history/{request_id}")
def one_record(event: Event) -> Response:
    claims = caller(event)
    request_id = str((event.get("pathParameters") or {}).get("request_id") or "")
    not_found = NotFound("No such request in your history.")
    if not REQUEST_ID_PATTERN.fullmatch(request_id):
        raise not_found
    record = runtime.history.find(claims.tenant_id, claims.subject, request_id)
    if record is None:
        raise not_found
    return json_response(200, shown(record))


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime.deadline.begin(context, event)
    logger.remove_keys(["tenant_id"])
    logger.append_keys(correlation_id=(event.get("requestContext") or {}).get("requestId"))
    result = app.resolve(event)
    if metrics.metric_set:
        metrics.flush_metrics()
    return result


end_init()  # the last line of init (model_runtime/runtime.py)
