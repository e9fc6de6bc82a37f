"""Login requests: `{"username", "password"}` as JSON, or an OAuth2 password-grant form.

Lengths are capped before any lookup or hash, so an oversized password costs a parse, not an
argon2 run. Messages never repeat what was sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import parse_qs

from model_runtime.errors import BadRequest
from model_runtime.passwords import MAX_PASSWORD_CHARS
from model_runtime.strict_json import parse_json

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_FORM_FIELDS = frozenset({"grant_type", "username", "password", "scope", "client_id"})


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keep the password out of any log line or traceback
        return f"Credentials(username={self.username!r}, password=***)"


def valid_username(username: object) -> TypeGuard[str]:
    return isinstance(username, str) and USERNAME_PATTERN.fullmatch(username) is not None


def parse_credentials(body: bytes, media_type: str) -> Credentials:
    if media_type == "application/json":
        fields = _json_fields(body)
    elif media_type == "application/x-www-form-urlencoded":
        fields = _form_fields(body)
    else:
        raise BadRequest("Send application/json or application/x-www-form-urlencoded.")
    username, password = fields.get("username"), fields.get("password")
    if not valid_username(username):
        raise BadRequest("'username' must be 1 to 64 letters, digits or . _ @ + -.")
    if not isinstance(password, str) or not 1 <= len(password) <= MAX_PASSWORD_CHARS:
        raise BadRequest(f"'password' must be a string of 1 to {MAX_PASSWORD_CHARS} characters.")
    if not _is_utf8(password):
        raise BadRequest("'password' must be valid Unicode text.")
    return Credentials(username, password)


def _is_utf8(text: str) -> bool:
    # JSON's "\ud800" escapes decode to lone surrogates, which argon2 cannot hash (UTF-8): without
    # this check they reach the hasher and end as a 500 that counts no failed attempt.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_fields(body: bytes) -> dict[str, object]:
    # Duplicate keys are refused: `{"username": "a", "username": "b"}` would otherwise log in as
    # whichever came last, while a proxy or log reads the first.
    document = parse_json(body)
    if not isinstance(document, dict) or set(document) != {"username", "password"}:
        raise BadRequest("The body must be an object with exactly 'username' and 'password'.")
    return document


def _form_fields(body: bytes) -> dict[str, object]:
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=8)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The form body is malformed.") from None
    if not set(form) <= _FORM_FIELDS or any(len(values) != 1 for values in form.values()):
        raise BadRequest("The form has unknown or repeated fields.")
    if form.get("grant_type") != ["password"]:
        raise BadRequest("'grant_type' must be 'password'.")
    return {name: values[0] for name, values in form.items()}
