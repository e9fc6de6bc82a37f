"""Unit tests of `model_serving.payload`: strict JSON and the exact shape the tenant's model takes.

Every rejection must be a `BadRequest` (a 400 at the edge), never another exception that would
become a 500, and its message may name positions and counts but never echo the values sent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from model_runtime.errors import BadRequest
from model_runtime.strict_json import parse_json
from model_serving import payload
from model_serving.payload import Parameters, validate_instances, validate_request

N_FEATURES = 4
MAX_BATCH = 1000
SECRET_NUMBER = "987654.321"
SECRET_TEXT = "SECRETSTRING"
VALID_ROW = [5.1, 3.5, 1.4, 0.2]

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def body_of(document: Any) -> bytes:
    return json.dumps(document).encode()


def rows_body(rows: list[Any]) -> bytes:
    return body_of({"instances": rows})


def reject(body: bytes, n_features: int = N_FEATURES, max_batch: int = MAX_BATCH) -> str:
    """The client-facing message of the `BadRequest` that `body` must raise."""
    with pytest.raises(BadRequest) as caught:
        validate_instances(body, n_features, max_batch)
    assert caught.value.status == 400
    return caught.value.detail


# --- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[1, 2, 3, 4]]", [[1.0, 2.0, 3.0, 4.0]]),
        ("[[1.5, -2.25, 0.0, -0]]", [[1.5, -2.25, 0.0, 0.0]]),
        ("[[1e3, -2.5E-2, 3e+2, 0.1e1]]", [[1000.0, -0.025, 300.0, 1.0]]),
        ("[[-1, -2, -3, -4], [9007199254740993, 1, 2, 3]]", [[-1, -2, -3, -4], [2.0**53, 1, 2, 3]]),
    ],
)
def test_valid_numbers_become_a_float64_array(text: str, expected: list[list[float]]) -> None:
    # Given rows of JSON ints, floats, negatives and exponents
    body = ('{"instances": ' + text + "}").encode()
    # When they are validated
    rows = validate_instances(body, N_FEATURES, MAX_BATCH)
    # Then they come back as a float64 array of shape (rows, n_features) with the same values
    assert rows.dtype == np.float64
    assert rows.shape == (len(expected), N_FEATURES)
    assert rows.tolist() == expected


def test_exactly_max_batch_rows_are_accepted() -> None:
    # Given a batch of exactly max_batch rows
    body = rows_body([VALID_ROW] * MAX_BATCH)
    # When it is validated
    rows = validate_instances(body, N_FEATURES, MAX_BATCH)
    # Then every row is kept
    assert rows.shape == (MAX_BATCH, N_FEATURES)


# --- rejected, with the position named and no value echoed -----------------------------------------


def test_one_row_more_than_max_batch_is_refused() -> None:
    # Given max_batch + 1 well-formed rows
    body = rows_body([VALID_ROW] * (MAX_BATCH + 1))
    # When validated, Then it is refused, naming the limit
    assert str(MAX_BATCH) in reject(body)


def test_wrong_feature_count_names_the_row() -> None:
    # Given a batch whose fourth row has one value too many
    rows = [VALID_ROW] * 3 + [[987654.321, 1.0, 2.0, 3.0, 4.0]]
    # When validated
    detail = reject(rows_body(rows))
    # Then the message names the row and both counts, and not the values
    assert detail == "instances[3] has 5 values; this model takes 4."
    assert SECRET_NUMBER not in detail


def test_ragged_rows_are_refused() -> None:
    # Given rows of different lengths, the first one being right
    detail = reject(rows_body([VALID_ROW, [987654.321, 1.0, 2.0]]))
    # Then the short row is named
    assert detail == "instances[1] has 3 values; this model takes 4."


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (SECRET_TEXT, "string"),
        (SECRET_NUMBER, "numeric string"),  # "987654.321": numpy would turn it into a number
        ("1.5", "short numeric string"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ([987654.321], "nested list"),
        ({SECRET_TEXT: 987654.321}, "object"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_non_number_values_name_their_cell(value: Any, name: str) -> None:
    # Given a row whose third value is not a JSON number (`name`)
    rows = [VALID_ROW, [1.0, 2.0, value, 4.0]]
    # When validated
    detail = reject(rows_body(rows))
    # Then the cell is named and its value is not echoed
    assert detail == "instances[1][2] must be a finite number.", name
    assert SECRET_TEXT not in detail
    assert SECRET_NUMBER not in detail


@pytest.mark.parametrize(
    "row", [{"a": 1}, SECRET_TEXT, 987654.321, None], ids=["object", "str", "num", "null"]
)
def test_a_row_that_is_not_a_list_is_named(row: Any) -> None:
    # Given a batch whose second row is not a list
    detail = reject(rows_body([VALID_ROW, row]))
    # Then the row is named and nothing it held is echoed
    assert detail == "instances[1] must be a list of numbers."
    assert SECRET_TEXT not in detail
    assert SECRET_NUMBER not in detail


@pytest.mark.parametrize("token", ["1e999", "-1e999", "1e309", "-9.9e308"])
def test_numbers_beyond_float64_name_their_cell(token: str) -> None:
    # Given a number that JSON allows but a float64 cannot hold (infinite after parsing, or an
    # integer too large to convert)
    body = ('{"instances": [[1, 2, 3, 4], [1, ' + token + ", 3, 4]]}").encode()
    # When validated
    detail = reject(body)
    # Then the cell is named
    assert detail == "instances[1][1] must be a finite number."


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_refused(token: str) -> None:
    # Given Python's JSON extensions, which json.loads would otherwise accept as floats
    body = ('{"instances": [[1, ' + token + ", 3, 987654.321]]}").encode()
    # When validated, Then the body is not valid JSON and nothing is echoed
    detail = reject(body)
    assert detail == "The request body is not valid JSON."
    assert SECRET_NUMBER not in detail


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"instances": [[1, 2, 3, ' + b"9" * 10_000 + b"]]}",
            "A number is longer than 40 characters; a float64 needs at most 24.",
        ),
        (b'{"instances": []}', "'instances' must hold 1 to 1000 rows; it holds 0."),
        (b'{"rows": [[1, 2, 3, 4]]}', "'instances' is required."),
        (b"{}", "'instances' is required."),
        (
            b'{"instances": [[1, 2, 3, 4]], "tenant_id": "SECRETSTRING"}',
            "'instances' and 'parameters' are the only fields allowed.",
        ),
        (
            b'{"instances": [[1, 2, 3, 4]], "instances": [[987654.321, 2, 3, 4]]}',
            "The request body is not valid JSON.",
        ),
        (b"[[1, 2, 3, 4]]", "The request body must be a JSON object."),
        (b'"SECRETSTRING"', "The request body must be a JSON object."),
        (b"987654.321", "The request body must be a JSON object."),
        (b"null", "The request body must be a JSON object."),
        (b'{"instances": "SECRETSTRING"}', "'instances' must be a list of rows."),
        (b'{"instances": {"0": [1, 2, 3, 4]}}', "'instances' must be a list of rows."),
        (
            b'{"instances": [[1, 2, 3, 4]], "x": "\xff\xfe SECRETSTRING"}',
            "The request body is not valid JSON.",
        ),
        (b"\xff\xfe\x00{", "The request body is not valid JSON."),
        (b"", "The request body is not valid JSON."),
        (b"   ", "The request body is not valid JSON."),
        (b'{"instances": [[1, 2, 3, 4]]', "The request body is not valid JSON."),
    ],
    ids=[
        "10000-digit-int",
        "empty-list",
        "missing-instances",
        "empty-object",
        "extra-key",
        "duplicate-key",
        "top-level-list",
        "top-level-string",
        "top-level-number",
        "top-level-null",
        "instances-string",
        "instances-object",
        "invalid-utf8-in-string",
        "invalid-utf8",
        "empty-body",
        "blank-body",
        "truncated",
    ],
)
def test_malformed_documents_are_refused_without_echo(body: bytes, expected: str) -> None:
    # Given a body that is not a {"instances": [...]} document of the right shape
    # When validated
    detail = reject(body)
    # Then it is refused with a fixed message that echoes nothing sent
    assert detail == expected
    assert SECRET_TEXT not in detail
    assert SECRET_NUMBER not in detail


def test_100000_deep_list_nesting_is_refused_before_parsing() -> None:
    # Given 100 000 nested lists: far more '[' than max_batch rows could need
    body = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    # When validated, Then it is refused as too many rows (the scan runs before json.loads)
    assert "1 to 1000 rows" in reject(body)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    ],
    ids=["unclosed-lists", "closed-lists", "objects"],
)
def test_deep_nesting_is_bad_json_not_a_recursion_error(body: bytes) -> None:
    # Given nesting deep enough to exhaust the parser's recursion limit
    # When the JSON parser sees it (directly, and through validation with a row limit high
    # enough that the '[' count does not stop it first)
    # Then both raise BadRequest, never RecursionError
    with pytest.raises(BadRequest, match="not valid JSON"):
        parse_json(body)
    assert reject(body, max_batch=1_000_000) == "The request body is not valid JSON."


def test_parse_json_accepts_plain_rfc8259_json() -> None:
    # Given an ordinary JSON document
    # When parsed, Then it is the same document
    assert parse_json(b'{"a": [1, 2.5, "x", null, true], "b": {}}') == {
        "a": [1, 2.5, "x", None, True],
        "b": {},
    }


# --- properties -----------------------------------------------------------------------------------

finite_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    # Integers up to the longest number a body may hold (payload.MAX_NUMBER_CHARS: 40 characters).
    st.integers(min_value=-(10**39) + 1, max_value=10**40 - 1),
)


@st.composite
def valid_batches(draw: st.DrawFn) -> tuple[int, int, list[list[int | float]]]:
    n_features = draw(st.integers(min_value=1, max_value=8))
    max_batch = draw(st.integers(min_value=1, max_value=30))
    rows = draw(
        st.lists(
            st.lists(finite_numbers, min_size=n_features, max_size=n_features),
            min_size=1,
            max_size=max_batch,
        )
    )
    return n_features, max_batch, rows


@PROPERTY_SETTINGS
@given(valid_batches())
def test_property_every_valid_batch_is_returned_unchanged(
    batch: tuple[int, int, list[list[int | float]]],
) -> None:
    # Given any 1..max_batch rows of exactly n_features finite JSON numbers
    n_features, max_batch, rows = batch
    # When validated
    result = validate_instances(rows_body(rows), n_features, max_batch)
    # Then the array holds exactly those numbers, as float64
    assert result.dtype == np.float64
    assert result.shape == (len(rows), n_features)
    assert result.tolist() == [[float(v) for v in row] for row in rows]


PROPERTY_FEATURES = 3
PROPERTY_MAX_BATCH = 4


@dataclass(frozen=True)
class RawNumber:
    """A number token written as-is, for spellings json.dumps never produces (1e999, 2**1024)."""

    text: str


def render(value: Any) -> str:
    """JSON text of `value`; floats nan/inf become NaN/Infinity, as Python's json writes them."""
    if isinstance(value, RawNumber):
        return value.text
    if isinstance(value, list):
        return "[" + ",".join(map(render, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(key) + ":" + render(item) for key, item in value.items()) + "}"
    return json.dumps(value)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # includes nan, inf and -inf
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=25,
)
raw_numbers = st.one_of(
    st.sampled_from(["1e999", "-1e999", "1E400", "2e308", "-0", "1E2", "0.5e-3", "-1.0E+2"]),
    # Integers around the float64 limit: some round to a finite float, some overflow.
    st.integers(min_value=2**1023, max_value=2**1025).map(str),
    st.integers(min_value=2**1023, max_value=2**1025).map(lambda n: f"-{n}"),
).map(RawNumber)
# What numpy would quietly turn into numbers, or what is not a finite number at all.
junk_cells = st.sampled_from([True, False, None, math.nan, math.inf, -math.inf, "1.5", "", [], {}, [1.0]])
MUTATIONS = (
    "none",
    "junk-cell",
    "raw-number",
    "any-cell",
    "row-length",
    "row-count",
    "not-a-row",
    "extra-key",
)


@st.composite
def near_valid_documents(draw: st.DrawFn) -> Any:
    """A valid document, then at most one mutation: most examples sit on the contract's edge."""
    rows: list[list[Any]] = draw(
        st.lists(
            st.lists(finite_numbers, min_size=PROPERTY_FEATURES, max_size=PROPERTY_FEATURES),
            min_size=1,
            max_size=PROPERTY_MAX_BATCH,
        )
    )
    document: dict[str, Any] = {"instances": rows}
    mutation = draw(st.sampled_from(MUTATIONS))
    i = draw(st.integers(min_value=0, max_value=len(rows) - 1))
    j = draw(st.integers(min_value=0, max_value=PROPERTY_FEATURES - 1))
    if mutation == "junk-cell":
        rows[i][j] = draw(junk_cells)
    elif mutation == "raw-number":
        rows[i][j] = draw(raw_numbers)
    elif mutation == "any-cell":
        rows[i][j] = draw(json_values)
    elif mutation == "row-length":
        rows[i] = rows[i][:j] if draw(st.booleans()) else [*rows[i], 1.0]
    elif mutation == "row-count":
        document["instances"] = (
            [] if draw(st.booleans()) else rows + [[1.0] * PROPERTY_FEATURES] * PROPERTY_MAX_BATCH
        )
    elif mutation == "not-a-row":
        rows[i] = draw(st.one_of(junk_cells, json_values))
    elif mutation == "extra-key":
        document[draw(st.text(max_size=8).filter(lambda k: k != "instances"))] = draw(json_values)
    return document


any_documents = st.one_of(json_values, st.fixed_dictionaries({"instances": json_values}))

# Cells that are themselves arrays or objects holding extreme numbers: numpy builds 3-D arrays
# from some of them and overflows on others, paths the flat strategies above rarely reach.
extreme_numbers = st.one_of(raw_numbers, finite_numbers, st.floats())
nested_cells = st.recursive(
    extreme_numbers,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.dictionaries(st.text(max_size=4), children, max_size=2),
    ),
    max_leaves=6,
)
nested_documents = st.fixed_dictionaries(
    {
        "instances": st.lists(
            st.lists(nested_cells, min_size=PROPERTY_FEATURES, max_size=PROPERTY_FEATURES),
            min_size=1,
            max_size=PROPERTY_MAX_BATCH,
        )
    }
)


def finite_float(value: Any) -> float | None:
    """`value` as a float64 if it is a JSON number (not a bool) that a float64 holds finitely,
    written in at most `payload.MAX_NUMBER_CHARS` characters."""
    text = value.text if isinstance(value, RawNumber) else render(value)
    if len(text) > payload.MAX_NUMBER_CHARS:
        return None
    if isinstance(value, RawNumber):
        value = float(value.text) if "e" in value.text.lower() or "." in value.text else int(value.text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def expected_rows(document: Any) -> list[list[float]] | None:
    """An independent statement of the contract: the rows a document stands for, or None."""
    if not isinstance(document, dict) or set(document) != {"instances"}:
        return None
    instances = document["instances"]
    if not isinstance(instances, list) or not 1 <= len(instances) <= PROPERTY_MAX_BATCH:
        return None
    if not all(isinstance(row, list) and len(row) == PROPERTY_FEATURES for row in instances):
        return None
    rows = [[finite_float(value) for value in row] for row in instances]
    return None if any(None in row for row in rows) else rows


def assert_array_or_bad_request(document: Any) -> None:
    """validate_instances agrees with `expected_rows`: the same rows, or a BadRequest, nothing else."""
    body = render(document).encode()
    expected = expected_rows(document)
    try:
        result = validate_instances(body, PROPERTY_FEATURES, PROPERTY_MAX_BATCH)
    except BadRequest:
        assert expected is None, "a valid document was refused"
        return
    assert expected is not None, "an invalid document was accepted"
    assert np.isfinite(result).all()
    assert result.tolist() == expected


@PROPERTY_SETTINGS
@given(any_documents)
def test_property_any_json_value_is_a_correct_array_or_bad_request(document: Any) -> None:
    # Given any JSON-ish value, wrapped in {"instances": ...} or not
    # When validated
    # Then it is exactly the contract's finite rows, or a BadRequest when the contract refuses it
    assert_array_or_bad_request(document)


@PROPERTY_SETTINGS
@given(near_valid_documents())
# The edges that matter most, tried on every run rather than left to chance:
@example({"instances": [[True, 1.0, 2.0]]})
@example({"instances": [[RawNumber("1e999"), 1.0, 2.0]]})
@example({"instances": [[RawNumber(str(2**1024)), 1.0, 2.0]]})
@example({"instances": [[RawNumber(str(2**1023)), 1.0, 2.0]]})
@example({"instances": [[1.0, 2.0, 3.0]], "tenant_id": "tenant-b"})
@example({"instances": [[[RawNumber("1" + "0" * 400)], [1], [2]]]})
def test_property_near_valid_documents_are_judged_exactly(document: Any) -> None:
    # Given a valid document, or one mutation away from one (a bool, NaN, 1e999, 2**1024, a
    # missing or extra value, too few or too many rows, a non-list row, an extra key)
    # When validated
    # Then it is exactly the contract's finite rows, or a BadRequest when the contract refuses it
    assert_array_or_bad_request(document)


@PROPERTY_SETTINGS
@given(nested_documents)
@example({"instances": [[[RawNumber("1" + "0" * 400)], [1], [2]]]})
@example({"instances": [[[RawNumber("1e999")], [1.0], [2.0]]]})
@example({"instances": [[{"a": RawNumber(str(2**1024))}, 1, 2]]})
def test_property_nested_cells_with_extreme_numbers_are_judged_exactly(document: Any) -> None:
    # Given rows whose cells are arrays or objects of huge, tiny, overflowing or infinite numbers
    # When validated
    # Then they are refused with a BadRequest (or accepted only if they are the contract's rows)
    assert_array_or_bad_request(document)


@PROPERTY_SETTINGS
@given(st.one_of(st.binary(max_size=256), st.text(max_size=128).map(str.encode)))
def test_property_arbitrary_bytes_raise_nothing_but_bad_request(body: bytes) -> None:
    # Given arbitrary bytes as a request body
    # When validated
    try:
        result = validate_instances(body, PROPERTY_FEATURES, PROPERTY_MAX_BATCH)
    except BadRequest:
        return  # Then a refusal is always a BadRequest
    # Then anything accepted is a finite array of the right width
    assert result.shape[1] == PROPERTY_FEATURES
    assert np.isfinite(result).all()


# --- refused from byte counts, before any parsing ----------------------------------------------------


@pytest.fixture
def parser_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body handed to the JSON parser."""
    calls: list[bytes] = []
    real_parse = payload.parse_json

    def parse(body: bytes) -> Any:
        calls.append(body)
        return real_parse(body)

    monkeypatch.setattr(payload, "parse_json", parse)
    return calls


@pytest.mark.parametrize(
    "rows",
    [
        [VALID_ROW] * (MAX_BATCH - 1) + [VALID_ROW[:3]],  # the last row one value short
        [VALID_ROW] * (MAX_BATCH - 1) + [[*VALID_ROW, 1.0]],  # the last row one value long
        [VALID_ROW[:3]] + [VALID_ROW] * (MAX_BATCH - 1),  # the first row short
        [[1.5] * (N_FEATURES * MAX_BATCH)],  # one row as long as the whole batch may be
    ],
    ids=["last-short", "last-long", "first-short", "one-long-row"],
)
def test_a_large_body_of_the_wrong_shape_is_refused_unparsed(
    rows: list[Any], parser_calls: list[bytes]
) -> None:
    # Given a body past PARSE_FREELY_BYTES whose bracket and comma counts cannot be a valid batch
    body = rows_body(rows)
    assert len(body) > payload.PARSE_FREELY_BYTES
    # When validated
    detail = reject(body)
    # Then it is refused from its byte counts, naming the shape, and the parser never saw it
    assert detail == f"'instances' must hold 1 to {MAX_BATCH} rows of exactly {N_FEATURES} numbers."
    assert parser_calls == []


def test_a_large_valid_body_is_accepted_by_the_fast_path(parser_calls: list[bytes]) -> None:
    # Given a valid batch past PARSE_FREELY_BYTES, with spaces after its commas
    body = rows_body([VALID_ROW] * MAX_BATCH)
    assert len(body) > payload.PARSE_FREELY_BYTES
    # When validated
    # Then the counts fit, and the numbers-only fast path accepts it without the JSON parser
    assert validate_instances(body, N_FEATURES, MAX_BATCH).shape == (MAX_BATCH, N_FEATURES)
    assert parser_calls == []


def test_a_large_body_with_other_strings_is_left_to_the_parser(parser_calls: list[bytes]) -> None:
    # Given a large, wrongly shaped body with a string value (strings could hide brackets or commas)
    rows: list[Any] = [VALID_ROW] * (MAX_BATCH - 1) + [[1.0, 2.0, "x"]]
    # When validated
    detail = reject(rows_body(rows))
    # Then the counts are not trusted: the parser decides, and names the cell
    assert detail == f"instances[{MAX_BATCH - 1}] has 3 values; this model takes 4."
    assert len(parser_calls) == 1


# --- the numbers-only fast path: it accepts only what the strict path accepts, and the same ------

Outcome = tuple[Any, ...]


def strict_outcome(
    body: bytes, n_features: int = PROPERTY_FEATURES, max_batch: int = PROPERTY_MAX_BATCH
) -> Outcome:
    """validate_request's answer with the fast path switched off."""
    with mock.patch.object(payload, "FAST_PATH_BYTES", 1 << 62):
        return outcome(body, n_features, max_batch)


def outcome(body: bytes, n_features: int = PROPERTY_FEATURES, max_batch: int = PROPERTY_MAX_BATCH) -> Outcome:
    try:
        rows, parameters = validate_request(body, n_features, max_batch)
    except BadRequest as error:
        return ("refused", error.status, error.detail)
    return ("accepted", rows.dtype, rows.tolist(), parameters)  # tolist: -0.0 == 0.0


def fast_outcome(
    body: bytes, n_features: int = PROPERTY_FEATURES, max_batch: int = PROPERTY_MAX_BATCH
) -> Outcome | None:
    try:  # a number past the bound is refused before either path sees the body
        payload._refuse_long_numbers(body)
    except BadRequest:
        return None
    accepted = payload._numbers_only_rows(body, n_features, max_batch)
    if accepted is None:
        return None
    rows, parameters = accepted
    return ("accepted", rows.dtype, rows.tolist(), parameters)


def padded(body: bytes) -> bytes:
    """`body` with leading whitespace, so that validate_request takes the fast path at any size."""
    return b" " * payload.FAST_PATH_BYTES + body


def assert_fast_path_agrees(
    body: bytes, n_features: int = PROPERTY_FEATURES, max_batch: int = PROPERTY_MAX_BATCH
) -> Outcome | None:
    """The fast path accepts nothing the strict path refuses, with the same rows and parameters;
    validate_request (fast path first) answers exactly as the strict path, refusals included."""
    fast = fast_outcome(body, n_features, max_batch)
    if fast is not None:
        assert fast == strict_outcome(body, n_features, max_batch)
    assert outcome(padded(body), n_features, max_batch) == strict_outcome(padded(body), n_features, max_batch)
    return fast


def json_text(document: Any, separator: bytes) -> bytes:
    return render(document).replace(",", separator.decode()).encode()


@PROPERTY_SETTINGS
@given(valid_batches(), st.sampled_from([b",", b", "]), st.sampled_from([None, True, False]))
def test_property_fast_path_accepts_every_valid_batch(
    batch: tuple[int, int, list[list[int | float]]], separator: bytes, probabilities: bool | None
) -> None:
    # Given any valid batch, compact or with ", ", with or without "parameters"
    n_features, max_batch, rows = batch
    document: dict[str, Any] = {"instances": rows}
    if probabilities is not None:
        document["parameters"] = {"probabilities": probabilities}
    body = json_text(document, separator)
    # When the fast path reads it
    fast = assert_fast_path_agrees(body, n_features, max_batch)
    # Then it accepts it, with the strict path's rows and parameters
    assert fast == (
        "accepted",
        np.float64,
        [[float(v) for v in row] for row in rows],
        Parameters(bool(probabilities)),
    )


BODY_EDITS = st.sampled_from(
    [
        b"0",
        b"1",
        b"9",
        b".",
        b"e",
        b"E",
        b"+",
        b"-",
        b",",
        b" ",
        b", ",
        b"[",
        b"]",
        b"],[",
        b"{",
        b"}",
        b":",
        b'"',
        b"\n",
        b"\t",
        b"\r",
        b"\xff",
        b"\xef\xbb\xbf",
        b"true",
        b"null",
        b"NaN",
        b"Infinity",
        b"1e999",
        b"0" * 400,
        b'"instances"',
        b'"parameters"',
        b'"probabilities"',
        b"\\u0069",
    ]
)


@st.composite
def edited_bodies(draw: st.DrawFn) -> bytes:
    """A valid body, then up to three byte-level edits (insert, replace or delete) anywhere in it:
    the grammar's edges (01, .5, 5., +1, 1e, --1, ",,", "[]", " 1", "\n") and the frame's."""
    rows = draw(st.lists(st.lists(finite_numbers, min_size=3, max_size=3), min_size=1, max_size=4))
    document: dict[str, Any] = {"instances": rows}
    if draw(st.booleans()):
        document["parameters"] = {"probabilities": draw(st.booleans())}
    body = bytearray(json_text(document, draw(st.sampled_from([b",", b", "]))))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=len(body)))
        end = start + draw(st.integers(min_value=0, max_value=2))
        body[start:end] = b"" if draw(st.booleans()) and end > start else draw(BODY_EDITS)
    return bytes(body)


# A number's spelling, part by part: RFC 8259 numbers and the spellings around them that other
# parsers take (+1, 01, .5, 5., 5.e3, 1e, --1, 1e5e5, 1e999, 400 digits, 5000 digits).
number_spellings = st.tuples(
    st.sampled_from(["", "-", "+", "--", "-+"]),
    st.sampled_from(["", "0", "00", "01", "7", "10", "123", "1" + "0" * 400, "9" * 5000]),
    st.sampled_from(["", ".", ".5", ".05", ".50", ".5.5"]),
    st.sampled_from(["", "e", "E", "e+", "e-", "e5", "E+05", "e-7", "e+-5", "e999", "E-999", "e5e5", "e1.5"]),
).map("".join)


@st.composite
def spelled_bodies(draw: st.DrawFn) -> bytes:
    """A valid batch with one or two values spelled as above: the body then stands or falls by them."""
    rows = draw(
        st.lists(
            st.lists(finite_numbers.map(json.dumps), min_size=PROPERTY_FEATURES, max_size=PROPERTY_FEATURES),
            min_size=1,
            max_size=PROPERTY_MAX_BATCH,
        )
    )
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        i = draw(st.integers(min_value=0, max_value=len(rows) - 1))
        rows[i][draw(st.integers(min_value=0, max_value=PROPERTY_FEATURES - 1))] = draw(number_spellings)
    separator = draw(st.sampled_from([",", ", "]))
    text = "[" + separator.join("[" + separator.join(row) + "]" for row in rows) + "]"
    return ('{"instances":' + text + "}").encode()


@settings(PROPERTY_SETTINGS, max_examples=1000)
@given(st.one_of(spelled_bodies(), edited_bodies(), near_valid_documents().map(lambda d: json_text(d, b","))))
@example(b'{"instances":[[1,2,3]]}')
@example(b'{"instances":[[-0,2,3]]}')
@example(b'{"instances":[[01,2,3]]}')
@example(b'{"instances":[[1,2,3]],"instances":[[1,2,3]]}')
def test_property_fast_path_agrees_with_the_strict_path(body: bytes) -> None:
    # Given a valid body, or one edited at the byte level, or a near-valid document
    # When both paths read it
    # Then the fast path accepts only what the strict path accepts, as the same rows, and
    # validate_request answers exactly as the strict path does, refusal messages included
    assert_fast_path_agrees(body)


@pytest.mark.parametrize(
    ("body", "rows", "probabilities"),
    [
        (b'{"instances":[[1,2,3]]}', [[1, 2, 3]], False),
        (b'{"instances": [[1.5, -2, 3e2], [0, -0.0, 1E+05]]}', [[1.5, -2, 300], [0, 0, 1e5]], False),
        (
            b' \t\r\n{ "instances" : [[1,2,3],[4,5,6]] , "parameters" : { } } \n',
            [[1, 2, 3], [4, 5, 6]],
            False,
        ),
        (b'{"instances":[[1,2,3]],"parameters":{"probabilities":true}}', [[1, 2, 3]], True),
        (b'{"instances":[[1,2,3]], "parameters": {"probabilities": false}}', [[1, 2, 3]], False),
        (b'{"instances":[[0e5,1e-05,-0.25E-1]]}', [[0, 1e-5, -0.025]], False),
        (b'{"instances":[[10,100.01,1' + b"0" * 39 + b"]]}", [[10, 100.01, 1e39]], False),
        (b'{"instances":[ [1 ,\n2,\t3\r] ]}', [[1, 2, 3]], False),
    ],
    ids=[
        "compact",
        "spaces",
        "whitespace-around",
        "probabilities",
        "probabilities-false",
        "exponents",
        "big",
        "json-whitespace",
    ],
)
def test_fast_path_accepts_numbers_only_bodies(
    body: bytes, rows: list[list[float]], probabilities: bool
) -> None:
    # Given a numbers-only body
    # When the fast path reads it, Then it is accepted as the strict path would
    fast = assert_fast_path_agrees(body)
    assert fast == ("accepted", np.float64, rows, Parameters(probabilities))


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances":[[1,2,3]],"instances":[[1,2,3]]}',  # duplicate key
        b'{"instances":[[1,2,3]],"parameters":{"probabilities":true,"probabilities":false}}',
        b'{"instances":[[1,NaN,3]]}',
        b'{"instances":[[1,Infinity,3]]}',
        b'{"instances":[[1,-Infinity,3]]}',
        b'\xef\xbb\xbf{"instances":[[1,2,3]]}',  # BOM
        b'{"instances":[[1,2,3]]}\xff',  # not UTF-8
        b'{"instances":[[1,2,3\xff]]}',
        b'{"instances":[[1,2]]}',  # a row too short
        b'{"instances":[[1,2,3,4]]}',  # a row too long
        b'{"instances":[[1,2,3],[1,2]]}',  # ragged
        b'{"instances":[[1,2,3],[1,2,3],[1,2,3],[1,2,3],[1,2,3]]}',  # too many rows
        b'{"instances":[]}',
        b'{"instances":[[]]}',
        b'{"instances":[[1,2,3],[]]}',
        b'{"instances":[[1,true,3]]}',
        b'{"instances":[[1,null,3]]}',
        b'{"instances":[[1,"2",3]]}',
        b'{"instances":[[1,[2],3]]}',  # nested array
        b'{"instances":[[[1,2,3]]]}',
        b'{"instances":[[1,{},3]]}',
        b'{"instances":[[01,2,3]]}',  # leading zeros
        b'{"instances":[[-01,2,3]]}',
        b'{"instances":[[00,2,3]]}',
        b'{"instances":[[1,2,3,]]}',  # trailing commas
        b'{"instances":[[1,2,3],]}',
        b'{"instances":[[1,,3]]}',
        b'{"instances":[[+1,2,3]]}',  # what float() takes but JSON does not
        b'{"instances":[[.5,2,3]]}',
        b'{"instances":[[-.5,2,3]]}',
        b'{"instances":[[5.,2,3]]}',
        b'{"instances":[[5.e3,2,3]]}',
        b'{"instances":[[1e,2,3]]}',
        b'{"instances":[[1e+,2,3]]}',
        b'{"instances":[[-,2,3]]}',
        b'{"instances":[[--1,2,3]]}',
        b'{"instances":[[1e-+5,2,3]]}',
        b'{"instances":[[1.2.3,2,3]]}',
        b'{"instances":[[1_0,2,3]]}',
        b'{"instances":[[0x1,2,3]]}',
        b'{"instances":[[1e999,2,3]]}',  # beyond float64
        b'{"instances":[[-1e999,2,3]]}',
        b'{"instances":[[1' + b"0" * 400 + b",2,3]]}",
        b'{"instances":[[1' + b"0" * 5000 + b",2,3]]}",  # past Python's int digit limit
        b'{"instances":[[1,2,3]],"tenant_id":"x"}',  # extra members
        b'{"instances":[[1,2,3]],"parameters":{"probabilities":"true"}}',
        b'{"instances":[[1,2,3]],"parameters":{"threshold":1}}',
        b'{"parameters":{"probabilities":true},"instances":[[1,2,3]]}',  # left to the strict path
        b'{"\\u0069nstances":[[1,2,3]]}',
        b'{"instances":[[1,2,3]]',  # truncated
        b'{"instances":[[1,2,3]]}}',
        b'{"instances":[[1,2,3]]}x',
        b'{"instances":[[1,2 3]]}',  # whitespace between two numbers
    ],
)
def test_fast_path_leaves_anything_else_to_the_strict_path(body: bytes) -> None:
    # Given a body the fast path must not accept (refused, or accepted only by the strict path)
    # When the fast path reads it, Then it declines, and validate_request answers as the strict path
    assert fast_outcome(body) is None
    assert_fast_path_agrees(body)


# Decimal spellings with more digits than a float64 holds (up to 39 characters, under the 40-character
# bound): the fast path's parser (orjson) must round each exactly as the strict path's does.
long_numbers = st.from_regex(r"-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,12})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)


@settings(PROPERTY_SETTINGS, max_examples=500)
@given(st.lists(long_numbers, min_size=3, max_size=3))
@example(["9007199254740993", "2.2250738585072011e-308", "1.7976931348623157e308"])  # 2**53 + 1, ...
@example(["2.4703282292062328e-324", "4.9e-324", "0.30000000000000004441"])  # halfway cases
@example(["1.7976931348623158e308", "123456789012345678901e-20", "-0.000000000000000000001"])
def test_property_fast_path_rounds_long_numbers_as_the_strict_path(numbers: list[str]) -> None:
    # Given a row of numbers spelled with more digits than a float64 keeps
    body = ('{"instances":[[' + ",".join(numbers) + "]]}").encode()
    # When both paths read it (padded, so that validate_request takes the fast path)
    fast = assert_fast_path_agrees(padded(body))
    # Then the fast path accepted it, as the same float64s the strict path made of them
    if all(abs(float(n)) <= 1.7976931348623157e308 for n in numbers):
        assert fast == ("accepted", np.float64, [[float(n) for n in numbers]], Parameters())
