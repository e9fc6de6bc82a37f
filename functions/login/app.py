"""Login: trades a username and password, or a machine client's id and secret, for a
short-lived RS256 access token.

POST /api/v1/auth/token   JSON or OAuth2 form body -> {"access_token", "token_type", "expires_in"}
                          (grant_type=password, or client_credentials with HTTP Basic, RFC 6749 4.4)
GET  /.well-known/jwks.json                         -> the public keys that verify those tokens

Unknown user, wrong password, disabled user or tenant all get one identical 401 after the same
argon2 work. Repeated failures lock the username (known or not) with a 429 for a cool-down; the
same holds for client ids. Every token-endpoint error carries RFC 6749 5.2's `error` member.
This function must not import numpy or scikit-learn: its cold start stays small.
"""

from __future__ import annotations

import gc

gc.disable()  # no collection while init imports; `end_init` (last line) resumes it

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_runtime.access import new_attempt_id, released_on_dependency_failure, reserve_login_attempt
from model_runtime.credentials import Credentials
from model_runtime.errors import (
    InvalidClient,
    InvalidCredentials,
    ProblemError,
    TooManyRequests,
    UnsupportedMediaType,
)
from model_runtime.http import (
    Event,
    Response,
    Router,
    header,
    json_response,
    media_type,
    raw_body,
    utf8_or_unspecified,
)
from model_runtime.oauth import (
    ClientCredentialsGrant,
    oauth_error_for,
    parse_token_request,
    verify_client_secret,
)
from model_runtime.passwords import verify_password
from model_runtime.roles import stored_roles
from model_runtime.runtime import Runtime, end_init
from model_runtime.settings import require_settings
from model_runtime.table import client_subject
from model_runtime.tokens import IssuedToken

MAX_LOGIN_BODY_BYTES = 256 * 1024  # generous: a too-long password is a 400 that names the limit

logger = Logger()
metrics = Metrics()
app = Router(logger, metrics)
# This container's state, built at init; a missing setting fails the init, naming the variable.
runtime = Runtime(require_settings(logger, "TABLE_NAME", "SIGNING_KEY_ID"))


@app.route("POST", "/api/v1/auth/token")
def issue_access_token(event: Event) -> Response:
    try:
        body = raw_body(event, MAX_LOGIN_BODY_BYTES)
        if not utf8_or_unspecified(event):
            raise UnsupportedMediaType("Send the credentials in UTF-8.")
        request = parse_token_request(body, media_type(event), header(event, "Authorization"))
        now = int(time.time())
        if isinstance(request, ClientCredentialsGrant):
            return client_credentials_token(request, now)
        return password_token(request, now)
    except ProblemError as error:
        raise oauth_error_for(error) from None  # every token-endpoint error names its RFC 6749 code


def password_token(credentials: Credentials, now: int) -> Response:
    username, attempt = credentials.username, new_attempt_id()
    with released_on_dependency_failure(runtime, username, attempt, now):
        return checked_password_token(credentials, attempt, now)


def checked_password_token(credentials: Credentials, attempt: str, now: int) -> Response:
    username = credentials.username

    # The attempt is counted before the argon2 work, atomically, so racing guesses cannot get
    # past the threshold; a success takes it back.
    if wait := reserve_login_attempt(runtime, username, now, attempt):
        metrics.add_metric(name="LoginLockedOut", unit=MetricUnit.Count, value=1)
        raise TooManyRequests(wait)

    user = runtime.table.get_user(username)
    password_ok = verify_password(user.password_hash if user else None, credentials.password)
    # Read on every path (an unknown user's "tenant" is none): a right password on a disabled
    # account must not cost one DynamoDB read more than a wrong one, or timing tells it.
    tenant = runtime.table.get_tenant(user.tenant_id if user else "")
    if not (user and password_ok and user.active and tenant and tenant.active):
        # A right password on a disabled account stays counted too: otherwise the lockout would
        # tell an attacker which guess was right.
        metrics.add_metric(name="LoginFailure", unit=MetricUnit.Count, value=1)
        logger.info("login refused", extra={"username": username})
        raise InvalidCredentials()

    runtime.table.clear_attempts(username)
    token = runtime.tokens.issue(user.username, user.tenant_id, now, stored_roles(user.roles))
    metrics.add_metric(name="LoginSuccess", unit=MetricUnit.Count, value=1)
    logger.info("token issued", extra={"username": username, "tenant_id": user.tenant_id})
    return token_response(token)


def client_credentials_token(grant: ClientCredentialsGrant, now: int) -> Response:
    """RFC 6749 4.4: a machine client trades its id and secret for a token of its tenant.

    The attempt is counted before the secret is checked (`access.reserve_login_attempt`), so a
    client id under attack locks like a username does; unknown, revoked and wrong-secret clients
    get one identical 401 after the same work.
    """
    subject, attempt = client_subject(grant.client_id), new_attempt_id()
    with released_on_dependency_failure(runtime, subject, attempt, now):
        return checked_client_token(grant, subject, attempt, now)


def checked_client_token(grant: ClientCredentialsGrant, subject: str, attempt: str, now: int) -> Response:
    if wait := reserve_login_attempt(runtime, subject, now, attempt):
        metrics.add_metric(name="ClientLockedOut", unit=MetricUnit.Count, value=1)
        locked = TooManyRequests(wait)
        locked.oauth_error = "invalid_client"
        raise locked

    client = runtime.table.get_client(grant.client_id)
    secret_ok = verify_client_secret(client.secret_sha256 if client else None, grant.client_secret)
    tenant = runtime.table.get_tenant(client.tenant_id if client else "")  # every path, as above
    if not (client and secret_ok and client.active and tenant and tenant.active):
        metrics.add_metric(name="ClientAuthFailure", unit=MetricUnit.Count, value=1)
        logger.info("client refused", extra={"client_id": grant.client_id})
        raise InvalidClient()

    runtime.table.clear_attempts(subject)
    token = runtime.tokens.issue(client.client_id, client.tenant_id, now, stored_roles(client.roles))
    metrics.add_metric(name="ClientTokenIssued", unit=MetricUnit.Count, value=1)
    logger.info("token issued", extra={"client_id": client.client_id, "tenant_id": client.tenant_id})
    return token_response(token)


def token_response(token: IssuedToken) -> Response:
    return json_response(
        200,
        {"access_token": token.access_token, "token_type": "Bearer", "expires_in": token.expires_in},
    )


@app.route("GET", "/.well-known/jwks.json")
def jwks(_: Event) -> Response:
    metrics.add_metric(name="JwksServed", unit=MetricUnit.Count, value=1)
    return json_response(200, runtime.tokens.jwks())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime.deadline.begin(context, event)  # every AWS call of this request fits in its time left
    return app.resolve(event)


end_init()  # the last line of init (model_runtime/runtime.py)
