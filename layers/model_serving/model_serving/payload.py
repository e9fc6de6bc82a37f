"""Prediction requests: strict JSON, then the exact shape the tenant's model takes.

Everything here runs before a model is fetched or loaded, and its cost grows with the body only,
which the size cap bounds. The happy path checks types with set operations that run in C; only a
rejected request pays for the slower scan that says where the problem is. Error messages name
positions and counts, never the values sent.

Large bodies that hold nothing but numbers take a fast path (`_numbers_only_rows`): the
document's frame (`{"instances": [...]}`, optionally with `"parameters"`) is matched by two small
regexes, the rows are checked to hold only number, bracket, comma and whitespace bytes, and
orjson (a strict RFC 8259 parser, five times json.loads' speed on such rows) reads them. The
fast path can only accept: a body it is unsure of (a string, a literal, an escape, the wrong
shape, anything else) goes to the strict path below, so refusals and their messages are the
strict path's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import orjson
from model_runtime.errors import BadRequest
from model_runtime.strict_json import parse_json

_NUMBER_TYPES = frozenset({int, float})  # exact types: bool is a subclass of int and is refused
_NUMBER_OR_NULL_TYPES = _NUMBER_TYPES | {type(None)}  # null: a missing value, where the model takes NaN


def validate_instances(body: bytes, n_features: int, max_batch: int) -> npt.NDArray[np.float64]:
    """The rows of a `{"instances": [[...], ...]}` body as a float64 array of shape (rows, n_features).

    Raises `BadRequest` for anything else: 1..max_batch rows, each exactly n_features finite
    numbers (int or float, not bool), no other keys.
    """
    rows, parameters = validate_request(body, n_features, max_batch)
    if parameters != Parameters():
        raise BadRequest("'instances' is the only field allowed.")
    return rows


def validate_request(
    body: bytes | str,
    n_features: int,
    max_batch: int,
    *,
    feature_names: tuple[str, ...] | None = None,
    accepts_missing: bool = False,
) -> tuple[npt.NDArray[np.float64], Parameters]:
    """`validate_instances` for a body that may also ask for probabilities:
    `{"instances": [...], "parameters": {"probabilities": true}}`. Any other parameter is a 400.

    With `feature_names`, a row may also be an object keyed by exactly those names, in any order.
    With `accepts_missing`, a value may be `null`, served as NaN (the model was proven to take it).
    `body` may be an ASCII str (`model_runtime.http.capped_body`): it is encoded only once its
    counts have not refused it.
    """
    if isinstance(body, str):
        _refuse_by_byte_counts(body, n_features, max_batch)
        body = body.encode("ascii")
    else:
        _refuse_by_byte_counts(body, n_features, max_batch)
    if len(body) >= FAST_PATH_BYTES:
        accepted = _numbers_only_rows(body, n_features, max_batch)
        if accepted is not None:
            return accepted
    document = parse_json(body)
    if not isinstance(document, dict):
        raise BadRequest("The request body must be a JSON object.")
    if "instances" not in document:
        raise BadRequest("'instances' is required.")
    parameters = _parameters(document)
    instances = document["instances"]
    if not isinstance(instances, list):
        raise BadRequest("'instances' must be a list of rows.")
    if not 1 <= len(instances) <= max_batch:
        raise BadRequest(f"'instances' must hold 1 to {max_batch} rows; it holds {len(instances)}.")

    if feature_names is not None and dict in set(map(type, instances)):
        instances = _rows_from_objects(instances, feature_names)
    if set(map(type, instances)) != {list}:
        _reject_first(i for i, row in enumerate(instances) if type(row) is not list)
    if set(map(len, instances)) != {n_features}:
        for i, row in enumerate(instances):
            if len(row) != n_features:
                raise BadRequest(f"instances[{i}] has {len(row)} values; this model takes {n_features}.")
    # When the body's only string is the key, it holds no string, bool or null values, so the
    # per-value type scan is skipped: a byte-level check is ~10x cheaper on a 13 000-value batch.
    allowed = _NUMBER_OR_NULL_TYPES if accepts_missing else _NUMBER_TYPES
    numbers_only = _only_number_literals(body)
    if not numbers_only:
        _check_value_types(instances, allowed)
    try:
        rows = np.array(instances, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        # numbers_only let a nested list or object through, or an integer is too large for a
        # float64; nesting is looked for first, since a nested huge integer raises OverflowError.
        _check_value_types(instances, allowed)
        _reject_first(
            (i, j)
            for i, row in enumerate(instances)
            for j, value in enumerate(row)
            if type(value) is int and abs(value) > 1 << 1023
        )
    if rows.ndim != 2:  # equal-length lists nested inside every row
        _check_value_types(instances, allowed)
        _reject_first(())
    if not np.isfinite(rows).all():
        # The parser refuses NaN literals: a NaN here is a null, allowed only for such a model.
        refused = np.isinf(rows) if accepts_missing else ~np.isfinite(rows)
        if refused.any():
            _reject_first(tuple(int(k) for k in index) for index in np.argwhere(refused))
    return rows, parameters


def _rows_from_objects(instances: list[Any], feature_names: tuple[str, ...]) -> list[Any]:
    """Object rows as lists in the model's column order; a row keyed by anything but exactly the
    feature names is a 400 that names the row, never the key (which is the client's text)."""
    names = set(feature_names)
    rows = []
    for i, row in enumerate(instances):
        if type(row) is dict:
            if len(row) != len(names) or row.keys() != names:
                raise BadRequest(
                    f"instances[{i}] must be keyed by exactly the model's {len(names)} feature names "
                    "(GET /api/v1/model lists them)."
                )
            rows.append([row[name] for name in feature_names])
        else:
            rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class Parameters:
    """What a prediction request may ask for beside its rows."""

    probabilities: bool = False


_PARAMETERS_KEY = "parameters"


def _parameters(document: dict[str, Any]) -> Parameters:
    """The optional `"parameters": {"probabilities": true|false}` member; anything else is a 400."""
    if len(document) == 1:
        return Parameters()
    if len(document) != 2 or _PARAMETERS_KEY not in document:
        raise BadRequest("'instances' and 'parameters' are the only fields allowed.")
    given = document[_PARAMETERS_KEY]
    if not isinstance(given, dict) or not set(given) <= {"probabilities"}:
        raise BadRequest("'parameters' may only hold 'probabilities'.")
    probabilities = given.get("probabilities", False)
    if type(probabilities) is not bool:
        raise BadRequest("'parameters.probabilities' must be true or false.")
    return Parameters(probabilities=probabilities)


# Below this size, parsing costs about what counting does, and the parser names the position.
PARSE_FREELY_BYTES = 4096
# Bodies from this size on try the fast path first: all of them, since orjson's fixed cost is
# below the strict path's even for one row (measured, a row of 10 values: 14 us against 22 us).
FAST_PATH_BYTES = 0


def _refuse_by_byte_counts[Text: (bytes, str)](body: Text, n_features: int, max_batch: int) -> None:
    """Refuse, without parsing, a body whose byte counts alone prove it is not a valid batch.

    A valid body without parameters holds no string but its key, so every bracket and comma in
    it is structure:
    rows + 1 of each bracket, n_features - 1 commas in each row and rows - 1 between them, that
    is rows * n_features - 1 commas in all. A body with too many rows or values, or (past
    PARSE_FREELY_BYTES) whose counts do not fit that equation, costs counting, not parsing.
    """
    shape = f"'instances' must hold 1 to {max_batch} rows of exactly {n_features} numbers."
    # An ASCII str's characters are its bytes: the same counts, on text.
    comma, opening, closing, quote = (
        (",", "[", "]", '"') if isinstance(body, str) else (b",", b"[", b"]", b'"')
    )
    # The optional "parameters" member adds one comma, hence the limit is rows * n_features.
    # Long numbers are refused in the same reading, before anything converts one.
    commas = _count_commas_up_to(body, comma, max_batch * n_features + 1)
    if commas > max_batch * n_features:
        raise BadRequest(shape)  # before the whole-body count below: this one may stop early
    opens = body.count(opening)
    if opens > max_batch + 1:
        raise BadRequest(shape)
    if (
        len(body) > PARSE_FREELY_BYTES
        and body.count(quote) == 2
        and (commas != (opens - 1) * n_features - 1 or body.count(closing) != opens)
    ):
        raise BadRequest(shape)


# The longest number a valid body needs. The shortest text that reads back as a given float64 is
# at most 24 characters ("-2.2250738585072014e-308"); %.17g writes at most 24, JavaScript's fixed
# notation at most 25 ("-0.0000012345678901234567"), an int64 20. 40 leaves room for writers that
# pad with zeros. Converting a 4 300-digit integer costs json.loads milliseconds (issue #23: a
# 1 MiB body of them took 36 ms to refuse in-process); finding it costs a translate of the first
# 16 KiB (bench, rejections: 1.2-1.5x the 100-byte rejection).
MAX_NUMBER_CHARS = 40
_NUMBER_BYTES_AS_ZERO = bytes(0x30 if byte in b"0123456789.eE+-" else 0x20 for byte in range(256))
_TOO_LONG_NUMBER = b"0" * (MAX_NUMBER_CHARS + 1)


def _refuse_long_numbers(text: bytes) -> None:
    """Refuse text with a run of number characters (digits, ".", "e", "E", "+", "-") longer than
    MAX_NUMBER_CHARS: outside numbers, a valid body holds none longer than one ("e" in a key).
    One translate: about 15 us for a 1 000-row batch."""
    if _TOO_LONG_NUMBER in text.translate(_NUMBER_BYTES_AS_ZERO):
        raise BadRequest(
            f"A number is longer than {MAX_NUMBER_CHARS} characters; a float64 needs at most 24."
        )


def _count_commas_up_to[Text: (bytes, str)](body: Text, comma: Text, limit: int) -> int:
    """How many commas `body` holds, or some number >= `limit` once that many are seen; refuses a
    number longer than MAX_NUMBER_CHARS in what it reads (`_refuse_long_numbers`).

    bytes.count reads about a byte a nanosecond, so counting a 1 MiB body whole costs 1-2 ms.
    Reading in growing chunks stops as soon as the limit is reached (a body with too many values
    is refused after reading only as far as its limit-th comma), or at the first chunk with a
    giant number. A body that reaches neither is read whole: every number in it was checked.
    """
    count, start, size = 0, 0, 16 * 1024
    while start < len(body) and count < limit:
        # The window runs past the chunk by the bound, so a run across a chunk's end is seen whole;
        # an ASCII str (`capped_body`) is encoded a window at a time, never copied whole here.
        window = body[start : start + size + MAX_NUMBER_CHARS]
        _refuse_long_numbers(window if isinstance(window, bytes) else window.encode("ascii"))
        count += body.count(comma, start, start + size)
        start += size
        size *= 2
    return count


_NUMBER_LITERAL_BYTES = b"0123456789.eE+-[]{},: \t\r\n"


def _only_number_literals(body: bytes) -> bool:
    """True when, past the one `"instances"` key, the body has only number and punctuation bytes."""
    return not body.replace(b'"instances"', b"", 1).translate(None, _NUMBER_LITERAL_BYTES)


def _check_value_types(instances: list[list[Any]], allowed: frozenset[type] = _NUMBER_TYPES) -> None:
    if not set(map(type, chain.from_iterable(instances))) <= allowed:
        _reject_first(
            (i, j)
            for i, row in enumerate(instances)
            for j, value in enumerate(row)
            if type(value) not in allowed
        )


def _reject_first(positions: Iterable[int | tuple[int, ...]]) -> NoReturn:
    position = next(iter(positions), None)
    if position is None:  # no culprit located: still the client's fault, never a 500
        raise BadRequest("'instances' must be a list of rows of finite numbers.")
    if isinstance(position, int):
        raise BadRequest(f"instances[{position}] must be a list of numbers.")
    i, j = position
    raise BadRequest(f"instances[{i}][{j}] must be a finite number.")


# --- the fast path: a numbers-only body, parsed by orjson -----------------------------------------

# The frame around the rows; each space stands for optional JSON whitespace (RFC 8259 2).
_WS = rb"[ \t\n\r]*"
_HEAD = re.compile(rb' \{ "instances" : \['.replace(b" ", _WS))
_TAIL = re.compile(
    rb' (?: , "parameters" : \{ (?: "probabilities" : (true|false) )? \} )? \} '.replace(b" ", _WS)
)
# What rows of numbers are written with: no quote (so no string, no key), no letter but the
# exponent's (so no true, false or null), no brace (so no object).
_ROWS_BYTES = b"0123456789.eE+-[], \t\n\r"


def _numbers_only_rows(
    body: bytes, n_features: int, max_batch: int
) -> tuple[npt.NDArray[np.float64], Parameters] | None:
    """What the strict path would return for `body`, or None to let the strict path decide.

    Accepts only `{"instances": [...]}`, optionally with a `"parameters"` member after it, whose
    rows hold nothing but numbers, brackets, commas and whitespace. The frame's two regexes leave
    no room for a second key, so orjson, which keeps the last of duplicate keys, reads the same
    document as the strict path's parser; beyond that, orjson is as strict as RFC 8259 (it
    refuses +1, 01, .5, 5., NaN and a number beyond float64) and rounds every number as
    `float()` does (tests/unit/test_payload.py holds the two paths equal, property-tested).
    Measured on 1 000 rows of 10 float64s as Python writes them (211 KB): orjson.loads 0.55 ms,
    json.loads 3.0 ms, NumPy's loadtxt 2.6 ms.
    """
    framed = _frame(body)
    if framed is None:
        return None
    rows_text, probabilities = framed
    if rows_text.translate(None, _ROWS_BYTES):
        return None
    try:
        instances = orjson.loads(body)["instances"]
        if not 1 <= len(instances) <= max_batch or set(map(len, instances)) != {n_features}:
            return None  # too many rows, the wrong length: the strict path names the problem
        # fromiter over the flat values: half np.array's cost on lists of lists
        values = np.fromiter(chain.from_iterable(instances), np.float64, len(instances) * n_features)
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError; a row that is a
        return None  # number has no len, a value that is a list is no float
    if not np.isfinite(values).all():
        return None
    return values.reshape(len(instances), n_features), Parameters(probabilities=probabilities)


def _frame(body: bytes) -> tuple[bytes, bool] | None:
    """The rows of a `{"instances": [[...], ...]}` body (the text between its outer brackets)
    and whether it asks for probabilities; None unless the frame is exactly that."""
    head = _HEAD.match(body)
    end = body.rfind(b"]")  # the frame's tail holds no "]"
    if head is None or end <= head.end():
        return None
    tail = _TAIL.fullmatch(body, end + 1)
    if tail is None:
        return None
    return body[head.end() : end], tail[1] == b"true"
