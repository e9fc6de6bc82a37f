"""Domain exceptions. Each carries what the client may see; `http.problem` renders it.

Messages are fixed strings chosen for the client: never exception text, never input, never a
resource name. What the operator needs goes to the structured log where the error is raised.
"""

from __future__ import annotations


class ProblemError(Exception):
    status = 500
    title = "Internal Server Error"
    type_slug = "internal-error"
    # RFC 6749 5.2 `error` code, rendered as a member of the problem body when set: only the
    # token endpoint's errors carry one (`oauth_error_for` in model_runtime.oauth).
    oauth_error: str | None = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ProblemError):
    status = 400
    title = "Bad Request"
    type_slug = "bad-request"


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="inference"'})


class InvalidCredentials(ProblemError):
    """Unknown user, wrong password, disabled user or tenant: one answer for all of them."""

    status = 401
    title = "Unauthorized"
    type_slug = "invalid-credentials"

    def __init__(self) -> None:
        # RFC 9110 15.5.2: every 401 carries a challenge. The token endpoint's own scheme is HTTP
        # Basic (RFC 6749 2.3.1, client authentication), so that is the one it names.
        super().__init__(
            "The username or password is incorrect.",
            headers={"WWW-Authenticate": 'Basic realm="inference", charset="UTF-8"'},
        )


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"

    def __init__(self) -> None:
        super().__init__("This identity has no active model.")


class NotFound(ProblemError):
    status = 404
    title = "Not Found"
    type_slug = "not-found"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Payload Too Large"
    type_slug = "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported Media Type"
    type_slug = "unsupported-media-type"


class TooManyRequests(ProblemError):
    status = 429
    title = "Too Many Requests"
    type_slug = "too-many-requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many failed attempts. Try again later.",
            headers={"Retry-After": str(max(1, retry_after))},
        )


class ServiceUnavailable(ProblemError):
    status = 503
    title = "Service Unavailable"
    type_slug = "service-unavailable"

    def __init__(self, detail: str = "The service is temporarily unavailable.") -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class ModelUnavailable(ServiceUnavailable):
    """The tenant's model could not be served (missing, tampered, wrong sklearn version)."""

    def __init__(self) -> None:
        super().__init__("The model is temporarily unavailable.")


class ModelRunBudgetExceeded(ServiceUnavailable):
    """The tenant's model ran past the tenant's run budget and was cut off (model_serving.run_budget)."""

    def __init__(self) -> None:
        super().__init__("The model took longer than this tenant's run budget allows.")


class ModelRunFailed(ProblemError):
    """ONNX Runtime failed while running the tenant's model: the tenant's model failed, not this
    service (a 500), and not the request (a 4xx: the rows passed every check of the model card).
    RFC 9110 15.6.3: a 502 is an invalid answer from the component the server relied on."""

    status = 502
    title = "Bad Gateway"
    type_slug = "model-failed"

    def __init__(self) -> None:
        super().__init__("The model failed to answer these rows.")


# --- token endpoint (OAuth 2.0, RFC 6749 5.2) --------------------------------------------------


class InvalidClient(ProblemError):
    """Client authentication failed: unknown client, wrong secret, revoked client or tenant.

    One answer for all of them, like `InvalidCredentials`. RFC 6749 5.2: a 401 with the
    `WWW-Authenticate` scheme the client can use (HTTP Basic, 2.3.1).
    """

    status = 401
    title = "Unauthorized"
    type_slug = "invalid-client"
    oauth_error = "invalid_client"

    def __init__(self) -> None:
        super().__init__(
            "Client authentication failed.", headers={"WWW-Authenticate": 'Basic realm="inference"'}
        )


class UnsupportedGrantType(BadRequest):
    type_slug = "unsupported-grant-type"
    oauth_error = "unsupported_grant_type"

    def __init__(self) -> None:
        super().__init__("'grant_type' must be 'password' or 'client_credentials'.")


class NoFiniteAnswer(ProblemError):
    """The tenant's model gave NaN or an infinity for rows that passed every check.

    RFC 9110 15.5.21's 422: the request is well-formed and in range, and nothing on the server
    failed, but these rows cannot be answered. Not a 5xx: the same rows fail the same way on every
    retry, the operator cannot fix a tenant's model's arithmetic, and a 5xx would page them
    (Api5xxAlarm) for it. Not a 400: the rows meet the model card; the limit is the model's.
    """

    status = 422
    title = "Unprocessable Content"
    type_slug = "no-finite-answer"

    def __init__(self) -> None:
        super().__init__("The model gave no finite answer for these rows.")


# --- the tenant-admin API (functions/admin) -----------------------------------------------------


class NotAdmin(ProblemError):
    """A valid token of an active tenant without the `admin` role, on an admin route: one fixed
    body for every admin route, whatever it would have done."""

    status = 403
    title = "Forbidden"
    type_slug = "admin-role-required"

    def __init__(self) -> None:
        super().__init__("This route needs the tenant's admin role.")


class Conflict(ProblemError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"
