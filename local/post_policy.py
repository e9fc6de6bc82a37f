"""S3's checks of a browser-based upload (POST Object with a policy), in front of moto's server.

moto 5.2 stores whatever a form POST sends: it checks neither the signature, nor the expiry, nor
any condition of the policy (moto's `s3.responses` module, `_bucket_response_post`). On AWS those
checks are what keep a tenant admin's upload to one key, a size range and a few minutes
(docs/tenant-admin.md). So the local stack's moto server sits behind `PostPolicyCheck`, which
refuses a POST as S3 documents it does ("Authenticating Requests in Browser-Based Uploads Using
POST (AWS Signature Version 4)" and "Creating a POST Policy"), before moto sees it:

- the SigV4 signature of the base64 policy, with the local stack's secret key: 403 otherwise;
- `expiration` in the past: 403 (`AccessDenied`, "Policy expired");
- every condition: exact matches (`{"key": ...}`, `["eq", "$key", ...]`), prefixes
  (`["starts-with", "$key", ...]`), and `["content-length-range", min, max]` against the file's
  size (`EntityTooLarge` / `EntityTooSmall`, 400);
- every form field but `policy`, `x-amz-signature`, `file` and `x-ignore-*` must be named by a
  condition (403).

Only SigV4 forms are checked (what `model_runtime.uploads` signs); a POST without a policy (a
multi-object delete, say) goes to moto as it came.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.formparser import parse_form_data

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_UNSIGNED_FIELDS = frozenset({"policy", "x-amz-signature", "file"})


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_signature(fields: dict[str, str], secret: str) -> None:
    credential = fields.get("x-amz-credential", "").split("/")
    if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or len(credential) != 5:
        raise Refused(403, "AccessDenied", "Only AWS4-HMAC-SHA256 forms are accepted here.")
    _, date, region, service, _ = credential
    expected = hmac.new(
        _signing_key(secret, date, region, service), fields["policy"].encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        raise Refused(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")


def check_policy(
    policy: dict[str, Any], fields: dict[str, str], bucket: str, size: int, now: datetime
) -> None:
    """Refused unless the form, its bucket and its file's size meet every condition of `policy`."""
    expiration = datetime.strptime(str(policy.get("expiration", "")), "%Y-%m-%dT%H:%M:%S%z")
    if now >= expiration:
        raise Refused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {name.lower(): value for name, value in fields.items()} | {"bucket": bucket}
    covered: set[str] = set()
    for given in policy.get("conditions", []):
        # {"key": "v"} is short for ["eq", "$key", "v"]
        condition = (
            next(("eq", f"${name}", wanted) for name, wanted in given.items())
            if isinstance(given, dict)
            else given
        )
        operator, subject = str(condition[0]).lower(), condition[1]
        if operator == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size > high:
                raise Refused(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
            if size < low:
                raise Refused(
                    400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size."
                )
            continue
        name = str(subject).lstrip("$").lower()
        covered.add(name)
        value = values.get(name, "")
        if (operator == "eq" and value != condition[2]) or (
            operator == "starts-with" and not value.startswith(str(condition[2]))
        ):
            raise Refused(
                403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {name}"
            )
    for name in values:
        if (
            name not in covered
            and name != "bucket"
            and name not in _UNSIGNED_FIELDS
            and not name.startswith("x-ignore-")
        ):
            raise Refused(403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {name}")


class PostPolicyCheck:
    """WSGI middleware: S3's checks of form POSTs, then moto."""

    def __init__(self, app: WsgiApp, secret_key: Callable[[], str]) -> None:
        self.app = app
        self.secret_key = secret_key

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        content_type = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") != "POST" or not content_type.startswith("multipart/form-data"):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        parsed = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        _, form, files = parse_form_data(parsed)
        fields = {name: form[name] for name in form}
        if "policy" in fields:
            upload = files.get("file")
            size = len(upload.read()) if upload is not None else 0
            bucket = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
            try:
                check_signature(fields, self.secret_key())
                policy = json.loads(base64.b64decode(fields["policy"]))
                check_policy(policy, fields, bucket, size, datetime.now(UTC))
            except Refused as refused:
                return _s3_error(start_response, refused)
            except (ValueError, KeyError, TypeError):
                return _s3_error(start_response, Refused(400, "InvalidPolicyDocument", "Invalid Policy."))
        return self.app(environ, start_response)


def _s3_error(start_response: Callable[..., Any], refused: Refused) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{refused.code}</Code><Message>{escape(refused.message)}</Message></Error>"
    ).encode()
    reasons = {400: "Bad Request", 403: "Forbidden"}
    start_response(
        f"{refused.status} {reasons[refused.status]}",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]
