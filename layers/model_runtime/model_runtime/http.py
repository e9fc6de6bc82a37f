"""HTTP edge: security headers, JSON and problem+json responses, the raw body, error mapping.

Every response the functions produce goes through `json_response` or `problem`, so every one of
them carries `SECURITY_HEADERS`. Domain errors become problem+json (RFC 9457) in exactly one place:
the handlers `install_error_handlers` registers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from model_runtime.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
)

SECURITY_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

PROBLEM_TYPE_BASE = "https://inference.example/problems/"


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def problem(error: ProblemError) -> Response[str]:
    body = {
        "type": PROBLEM_TYPE_BASE + error.type_slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    return Response(
        status_code=error.status,
        content_type="application/problem+json",
        body=json.dumps(body, separators=(",", ":")),
        headers={**SECURITY_HEADERS, **error.headers},
    )


def raw_body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The request body as bytes, refused with 413 past `max_bytes` before anything parses it."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        # Base64 inflates by 4/3: anything longer than this cannot decode to an allowed size.
        if len(body) > (max_bytes + 2) // 3 * 4 + 4:
            raise PayloadTooLarge(f"The request body must not exceed {max_bytes} bytes.")
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("The request body is not valid base64.") from None
    else:
        # A str has at most as many characters as its UTF-8 bytes: reject the obvious first.
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"The request body must not exceed {max_bytes} bytes.")
        data = body.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The request body must not exceed {max_bytes} bytes.")
    return data


def header(event: Mapping[str, Any], name: str) -> str:
    """A request header, case-insensitively; '' when absent."""
    headers = event.get("headers") or {}
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value or ""


def media_type(event: Mapping[str, Any]) -> str:
    """The Content-Type without parameters, lower-cased."""
    return header(event, "Content-Type").split(";", 1)[0].strip().lower()


def install_error_handlers(app: APIGatewayRestResolver, logger: Logger, metrics: Metrics) -> None:
    """Map domain errors, AWS faults, unknown routes and anything unexpected to problem+json."""

    @app.exception_handler(ProblemError)
    def _problem(error: ProblemError) -> Response[str]:
        metrics.add_metric(name=f"Rejected{type(error).__name__}", unit=MetricUnit.Count, value=1)
        return problem(error)

    @app.exception_handler([BotoCoreError, ClientError])
    def _dependency(error: Exception) -> Response[str]:
        # DynamoDB, S3 or KMS failed or throttled: the operator gets the operation and code,
        # the client a 503 it may retry, with no resource name.
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else ""
        operation = getattr(error, "operation_name", "")
        logger.warning(
            "dependency failed",
            extra={"aws_operation": operation, "aws_error": code or type(error).__name__},
        )
        metrics.add_metric(name="DependencyFailure", unit=MetricUnit.Count, value=1)
        return problem(ServiceUnavailable())

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        metrics.add_metric(name="RejectedNotFound", unit=MetricUnit.Count, value=1)
        return problem(NotFound("No such resource."))

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response[str]:
        # The traceback goes to the log; the client learns nothing about the failure.
        logger.exception("unhandled error")
        metrics.add_metric(name="UnhandledError", unit=MetricUnit.Count, value=1)
        return problem(ProblemError("The server could not complete the request."))
