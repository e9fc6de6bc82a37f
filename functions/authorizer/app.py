"""Authorizer: API Gateway's REQUEST Lambda authorizer in front of predict and the model card.

It verifies the bearer token with the code predict uses (`Tokens.verify`), maps the token's
tenant (`access.resolve_tenant`), and answers with that tenant's API key as `usageIdentifierKey`:
the API's key source is AUTHORIZER, so API Gateway meters and throttles each tenant on its tier's
usage plan before any function runs, while clients send only their bearer token.

- Bad, expired, forged or revoked token: the error "Unauthorized", which API Gateway turns into a
  401 (the UNAUTHORIZED gateway response, the same body predict gives).
- Unmapped or disabled tenant, or a tenant without an API key: a Deny policy, a 403
  (ACCESS_DENIED, the same body as predict's 403).
- DynamoDB or KMS failing (after the last known good values: model_runtime/ttl_cache.py): one
  warning line and the metric `AuthorizerDependencyFailure`, then an error that is not
  "Unauthorized", which API Gateway answers with its AUTHORIZER_CONFIGURATION_ERROR gateway
  response: template.yaml makes it the 503 with Retry-After that predict gives for the same fault.
- Otherwise an Allow policy for the tenant routes of this stage, the tenant id in the context
  (predict checks it against the token it verifies again; in per-tenant mode API Gateway also
  names the invocation's tenant from it), credentials that reach that tenant's data alone
  (model_runtime/tenant_credentials.py; never logged), and the tenant's API key. STS failing is
  a dependency failure like DynamoDB's: the 503 above, after the last session still valid.

API Gateway caches the answer per Authorization header for at most `MappingTtlSeconds`
(template.yaml), so a revocation or a tier change reaches the gateway as soon as the functions.
This function must not import numpy or scikit-learn: its cold start is on every tenant's path.
"""

from __future__ import annotations

import gc

gc.disable()  # no collection while init imports; `end_init` (last line) resumes it

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_runtime.access import resolve_tenant
from model_runtime.deadlines import DEPENDENCY_ERRORS, describe_failure
from model_runtime.errors import Forbidden, Unauthorized
from model_runtime.http import header
from model_runtime.runtime import Runtime, end_init
from model_runtime.settings import require_settings
from model_runtime.tenant_credentials import TenantCredentials
from model_runtime.tokens import Claims, bearer_token

logger = Logger()
metrics = Metrics()
# This container's state, built at init; a missing setting fails the init, naming the variable.
runtime = Runtime(require_settings(logger, "TABLE_NAME", "SIGNING_KEY_ID", "TENANT_DATA_ROLE_ARN"))

# The routes this authorizer guards, as the tail of an execute-api ARN (see `allowed_resource`).
TENANT_ROUTES = "*/api/v1/*"


class Unauthenticated(Exception):
    """API Gateway's contract: an authorizer error whose message is exactly "Unauthorized" is a 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class AuthorizerUnavailable(Exception):
    """A dependency failed. Any message but "Unauthorized" is, for API Gateway, an authorizer
    error (500 AuthorizerConfigurationException, the AUTHORIZER_CONFIGURATION_ERROR gateway
    response), which template.yaml answers as a 503 with Retry-After and the security headers.
    Lambda's runtime records the type and this fixed message; `from None` keeps botocore's
    traceback, and the names in its message, out of that record."""

    def __init__(self) -> None:
        super().__init__("Service Unavailable")


def allowed_resource(method_arn: str) -> str:
    """`arn:...:api-id/stage/*/api/v1/*` from the invoked method's ARN.

    The answer is cached per token and reused for the token's other requests (predict, then the
    model card): an Allow for the one method first invoked would refuse the second.
    """
    api_and_stage = "/".join(method_arn.split("/", 2)[:2])
    return f"{api_and_stage}/{TENANT_ROUTES}"


def policy(principal: str, effect: str, resource: str) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    resource = allowed_resource(str(event.get("methodArn", "")))
    try:
        claims: Claims = runtime.tokens.verify(bearer_token(header(event, "Authorization")))
        tenant = resolve_tenant(runtime, claims)
        credentials: TenantCredentials | None = (
            runtime.tenant_credentials.for_tenant(tenant.tenant_id)
            if tenant.api_key
            else None  # no key: denied
        )
    except Unauthorized:
        metrics.add_metric(name="AuthorizerUnauthorized", unit=MetricUnit.Count, value=1)
        raise Unauthenticated() from None
    except Forbidden:
        metrics.add_metric(name="AuthorizerForbidden", unit=MetricUnit.Count, value=1)
        return policy(claims.subject, "Deny", resource)
    except DEPENDENCY_ERRORS as error:
        logger.warning("dependency failed", extra=describe_failure(error))
        metrics.add_metric(name="AuthorizerDependencyFailure", unit=MetricUnit.Count, value=1)
        raise AuthorizerUnavailable() from None
    if not tenant.api_key or credentials is None:
        # Without a key API Gateway cannot meter the tenant: refused, never served unmetered.
        logger.warning("tenant has no API key", extra={"tenant_id": tenant.tenant_id})
        metrics.add_metric(name="AuthorizerTenantWithoutKey", unit=MetricUnit.Count, value=1)
        return policy(claims.subject, "Deny", resource)
    metrics.add_metric(name="AuthorizerAllowed", unit=MetricUnit.Count, value=1)
    return {
        **policy(claims.subject, "Allow", resource),
        "context": {"tenant_id": tenant.tenant_id, **credentials.to_context()},
        "usageIdentifierKey": tenant.api_key,
    }


@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.clear_state()
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    runtime.deadline.begin(context, event)  # every AWS call of this request fits in its time left
    return authorize(event)


end_init()  # the last line of init (model_runtime/runtime.py)
