"""HTTP edge: routing, security headers, JSON and problem+json responses, the raw body.

Every response the functions produce is a `Response` built by `json_response` or `problem`, so
every one of them carries `SECURITY_HEADERS`. Domain errors, AWS faults, unknown routes and
anything unexpected become problem+json (RFC 9457) in exactly one place: `Router.resolve`.

Why not Powertools' `APIGatewayRestResolver`: on the warm predict path it cost about 35 us per
request, more than all of our own checks together (README, Performance). Two routes per function
need a dictionary lookup, not a framework.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from model_runtime.deadlines import describe_failure
from model_runtime.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
)

Event = dict[str, Any]

SECURITY_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

PROBLEM_TYPE_BASE = "https://inference.example/problems/"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_api_gateway(self) -> dict[str, Any]:
        """The Lambda proxy-integration result API Gateway (REST) expects."""
        return {"statusCode": self.status, "headers": dict(self.headers), "body": self.body}


def json_text(body: Any) -> str:
    """`body` as compact JSON, by orjson (1000 floats: about 0.05 ms, against json.dumps' 0.5 ms).

    orjson writes NaN and the infinities as `null` and refuses integers past 64 bits, so a text
    holding `null` (or an orjson refusal) is written again by json.dumps with allow_nan=False:
    it raises `ValueError` for a non-finite float, and otherwise gives the same document.
    """
    try:
        text = orjson.dumps(body)
    except orjson.JSONEncodeError:
        text = b"null"
    if b"null" in text:
        return json.dumps(body, separators=(",", ":"), allow_nan=False)
    return text.decode()


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response; `ValueError` (never `NaN` or `Infinity`, which strict parsers refuse)
    if `body` holds a non-finite float."""
    return Response(
        status,
        json_text(body),
        {**SECURITY_HEADERS, "Content-Type": "application/json", **(headers or {})},
    )


def problem(error: ProblemError) -> Response:
    body = {
        "type": PROBLEM_TYPE_BASE + error.type_slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if error.oauth_error:
        body["error"] = error.oauth_error  # RFC 6749 5.2, for OAuth client libraries
    return Response(
        error.status,
        json.dumps(body, separators=(",", ":")),
        {**SECURITY_HEADERS, "Content-Type": "application/problem+json", **error.headers},
    )


def raw_body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The request body as bytes, refused with 413 past `max_bytes` before anything parses it."""
    body = capped_body(event, max_bytes)
    return body.encode("ascii") if isinstance(body, str) else body


def capped_body(event: Mapping[str, Any], max_bytes: int) -> bytes | str:
    """`raw_body`, except that an ASCII body is returned as the event's own str (its characters
    are its bytes): a body near the cap that the payload's byte counts refuse is then never
    copied. Encoding 1 MiB cost 0.1-0.2 ms here, more than the rest of such a refusal."""
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
        if body.isascii():  # O(1): CPython keeps the flag
            return str(body)
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


def utf8_or_unspecified(event: Mapping[str, Any]) -> bool:
    """True unless the Content-Type names a charset other than UTF-8 (RFC 8259 8.1: JSON is UTF-8).

    Bodies are always read as UTF-8, so a client that declares another charset is told so with a
    415 rather than having its document read differently from what it meant.
    """
    for parameter in header(event, "Content-Type").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return False
    return True


RouteHandler = Callable[[Event], Response]


class Router:
    """(method, resource) -> handler, and the one place errors become responses."""

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        self.routes: dict[tuple[str, str], RouteHandler] = {}
        self._logger = logger
        self._metrics = metrics

    def route(self, method: str, resource: str) -> Callable[[RouteHandler], RouteHandler]:
        def register(handler: RouteHandler) -> RouteHandler:
            self.routes[(method, resource)] = handler
            return handler

        return register

    def resolve(self, event: Event) -> dict[str, Any]:
        handler = self.routes.get((event.get("httpMethod", ""), event.get("resource", "")))
        try:
            if handler is None:
                raise NotFound("No such resource.")
            response = handler(event)
        except ProblemError as error:
            self._count(f"Rejected{type(error).__name__}")
            response = problem(error)
        except (BotoCoreError, ClientError) as error:
            # DynamoDB, S3 or KMS failed or throttled: the operator gets the operation and code,
            # the client a 503 it may retry, with no resource name.
            self._logger.warning("dependency failed", extra=describe_failure(error))
            self._count("DependencyFailure")
            response = problem(ServiceUnavailable())
        except Exception:
            # The traceback goes to the log; the client learns nothing about the failure.
            self._logger.exception("unhandled error")
            self._count("UnhandledError")
            response = problem(ProblemError("The server could not complete the request."))
        return response.to_api_gateway()

    def _count(self, name: str) -> None:
        self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
