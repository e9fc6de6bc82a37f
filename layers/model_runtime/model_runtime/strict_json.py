"""Request bodies as strict RFC 8259 JSON, for both functions.

Python's `json.loads` is more forgiving than the RFC, and each leniency lets a filter in front of
the API (a WAF, a log pipeline, a proxy) read a different document than the function does:
- given bytes, it detects UTF-16 and UTF-32 and skips a UTF-8 BOM; RFC 8259 8.1 says JSON
  exchanged between systems is UTF-8, and a BOM must not be added;
- it accepts NaN, Infinity and -Infinity;
- with duplicate keys, the last one wins while another reader may take the first.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from model_runtime.errors import BadRequest


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key")
    return document


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`, or `BadRequest`.

    Bytes that are not UTF-8, a BOM (json.loads refuses one in a str), deep nesting and numbers
    past Python's digit limit are all just "not valid JSON".
    """
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest("The request body is not valid JSON.") from None
