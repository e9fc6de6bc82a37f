"""Giant numbers are refused before anything converts them (model_serving/payload.py,
`_refuse_long_numbers`): json.loads turning a 4 300-digit integer into an int, or NumPy's reader
a 4 300-digit decimal into a float, costs milliseconds a token; finding one costs a translate."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
from model_runtime.errors import BadRequest
from model_serving import payload
from model_serving.payload import MAX_NUMBER_CHARS, validate_request

REFUSED = f"A number is longer than {MAX_NUMBER_CHARS} characters; a float64 needs at most 24."


def body_of(token: str, size: int) -> bytes:
    """A body of about `size` bytes whose rows of 4 values are all `token`."""
    row = "[" + ",".join([token] * 4) + "]"
    count = max(1, (size - 20) // (len(row) + 1))
    return ('{"instances":[' + ",".join([row] * count) + "]}").encode()


GIANTS = {
    "4300-digit integer": "1" + "7" * 4299,
    "4300-digit decimal": "1." + "7" * 4298,
    "41-digit integer": "1" + "0" * 40,
    "long exponent": "1e" + "0" * 40 + "5",
    "negative long fraction": "-0." + "3" * 39,
}


@pytest.mark.parametrize("name", GIANTS)
@pytest.mark.parametrize("size", [100, 1 << 20], ids=["small", "1MiB"])
def test_a_number_past_the_bound_is_refused_before_any_conversion(name: str, size: int) -> None:
    # Given a body of such numbers (small: the strict path's size; 1 MiB: the fast path's)
    body = body_of(GIANTS[name], size)
    # When validated, with every converter watched
    with (
        mock.patch.object(payload, "parse_json", side_effect=AssertionError("json.loads ran")),
        mock.patch.object(payload, "_numbers_only_rows", side_effect=AssertionError("fast path ran")),
        pytest.raises(BadRequest) as refused,
    ):
        validate_request(body, 4, 100_000)
    # Then it is refused with a fixed message, before either path parses it
    assert refused.value.detail == REFUSED


def test_the_longest_numbers_a_writer_needs_are_accepted() -> None:
    # Given the longest spellings of float64s and int64s that common writers produce
    tokens = [
        "-2.2250738585072014e-308",  # repr: the longest shortest round trip (24)
        "-0.0000012345678901234567",  # JavaScript's fixed notation (25)
        "-9223372036854775808",  # int64's minimum (20)
        "1" + "0" * (MAX_NUMBER_CHARS - 1),  # exactly the bound
    ]
    body = json.dumps({"instances": [[float(t) if "." in t or "e" in t else int(t) for t in tokens]]})
    raw = ('{"instances": [[' + ", ".join(tokens) + "]]}").encode()
    # Then both are accepted, with the values the strict reading gives
    for candidate in (body.encode(), raw, b" " * payload.FAST_PATH_BYTES + raw):
        rows, _ = validate_request(candidate, 4, 10)
        assert rows.tolist() == [[float(t) for t in tokens]]


def test_a_giant_number_past_the_first_chunk_is_refused_too() -> None:
    # Given a 1 MiB body of valid rows whose last value is 41 digits, across a chunk boundary
    valid = body_of("1.5", 1 << 20)
    boundary = 16 * 1024 + 32 * 1024  # where the second chunk ends
    start = valid.index(b"1.5", boundary - 20)
    body = valid[:start] + b"9" * (MAX_NUMBER_CHARS + 1) + valid[start + 3 :]
    # Then it is refused as well
    with pytest.raises(BadRequest, match="longer than"):
        validate_request(body, 4, 100_000)
    # And the same body without it is accepted
    assert np.asarray(validate_request(valid, 4, 100_000)[0]).shape[1] == 4


def test_number_characters_outside_numbers_never_reach_the_bound() -> None:
    # Given a valid body with every key and literal a body may hold (their "e"s are runs of one)
    body = b'{"instances": [[1e5, 2E-3, -0.5, 7]], "parameters": {"probabilities": true}}'
    # Then it is accepted
    rows, parameters = validate_request(body, 4, 10)
    assert parameters.probabilities and rows.tolist() == [[1e5, 2e-3, -0.5, 7.0]]
