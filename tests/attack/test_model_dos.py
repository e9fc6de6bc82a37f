"""Model denial of service (OWASP API4:2023 unrestricted resource consumption, LLM10 unbounded
consumption): every malformed, oversized or hostile payload is the right 4xx, never a 5xx.

Each request's time is recorded and printed at the end of the run ("attack timings"); speed is
the benchmark's business, so nothing here asserts on it. The body cap is the template's default
MaxBodyBytes (1 MiB): `make smoke` assumes a deployment that keeps it.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable

import pytest

from tests.attack.kit import RUNNING_STACK_URL, TIMINGS, Api, Caller, Reply, assert_still_served

pytestmark = pytest.mark.blackbox

PREDICT = "/api/v1/predict"
MAX_BODY_BYTES = 1024 * 1024
DEEP = 100_000

Payload = Callable[[Caller], bytes]


def instances(rows: object) -> bytes:
    return json.dumps({"instances": rows}).encode()


def row_with(who: Caller, value: str) -> bytes:
    """One row of `who`'s width whose first value is the raw JSON text `value`."""
    numbers = ",".join(["1.5"] * (who.card["n_features"] - 1))
    return b'{"instances":[[' + value.encode() + b"," + numbers.encode() + b"]]}"


def giant_numbers(who: Caller, token: str) -> bytes:
    """Rows of `token`s as many as fit under the body cap: refused before any number is converted."""
    row = "[" + ",".join([token] * who.card["n_features"]) + "]"
    count = (MAX_BODY_BYTES - 20) // (len(row) + 1)
    return ('{"instances":[' + ",".join([row] * count) + "]}").encode()


# name -> body; each must be a 400 (the payload does not fit the caller's model card)
BAD_PAYLOADS: dict[str, Payload] = {
    "one-row-over-max-batch": lambda who: instances(who.rows(who.card["max_batch"] + 1)),
    "one-feature-short": lambda who: instances(who.rows(1, who.card["n_features"] - 1)),
    "one-feature-over": lambda who: instances(who.rows(1, who.card["n_features"] + 1)),
    "ragged-rows": lambda who: instances([*who.rows(1), who.rows(1, who.card["n_features"] - 1)[0]]),
    "strings": lambda who: instances([["1.5"] * who.card["n_features"]]),
    "bools": lambda who: instances([[True] * who.card["n_features"]]),
    "nulls": lambda who: instances([[None] * who.card["n_features"]]),
    "nan": lambda who: row_with(who, "NaN"),
    "infinity": lambda who: row_with(who, "Infinity"),
    "minus-infinity": lambda who: row_with(who, "-Infinity"),
    "overflowing-float-1e999": lambda who: row_with(who, "1e999"),
    "integer-past-float-range": lambda who: row_with(who, "9" * 400),
    "integer-10000-digits": lambda who: row_with(who, "7" * 10_000),
    "number-41-digits": lambda who: row_with(who, "1" + "0" * 40),
    "1MiB-of-4300-digit-integers": lambda who: giant_numbers(who, "1" + "7" * 4299),
    "1MiB-of-4300-digit-decimals": lambda who: giant_numbers(who, "1." + "7" * 4298),
    "lone-surrogate-string": lambda who: row_with(who, '"\\ud800"'),
    "nested-value": lambda who: instances([[[1.5], *who.rows(1)[0][1:]]]),
    "object-row": lambda who: instances([{"a": 1.5}]),
    "row-not-a-list": lambda who: instances([1.5]),
    "instances-an-object": lambda who: json.dumps({"instances": {"0": who.rows(1)[0]}}).encode(),
    "empty-instances": lambda who: instances([]),
    "empty-row": lambda who: instances([[]]),
    "missing-instances": lambda who: b"{}",
    "extra-key": lambda who: json.dumps({"instances": who.rows(1), "debug": True}).encode(),
    "duplicate-keys": lambda who: (
        b'{"instances":' + json.dumps(who.rows(1)).encode() + b',"instances":[[1]]}'
    ),
    "top-level-array": lambda who: json.dumps(who.rows(1)).encode(),
    "top-level-null": lambda who: b"null",
    "top-level-string": lambda who: b'"instances"',
    "empty-body": lambda who: b"",
    "truncated-json": lambda who: instances(who.rows(2))[:-3],
    "base64-of-a-valid-body": lambda who: base64.b64encode(instances(who.rows(1))),
    "arrays-100000-deep": lambda who: b'{"instances":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "objects-100000-deep": lambda who: b'{"instances":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
    "rows-as-strings-with-brackets": lambda who: instances(["[[[[" * 1000]),
}


def timed(label: str, reply: Reply) -> Reply:
    TIMINGS.append((label, reply.status, reply.seconds))
    return reply


@pytest.mark.parametrize("name", list(BAD_PAYLOADS))
def test_malformed_payload_is_a_400(api: Api, caller_a: Caller, name: str) -> None:
    # Given a payload that does not fit alice's model card
    body = BAD_PAYLOADS[name](caller_a)
    assert len(body) <= MAX_BODY_BYTES, "the case must test validation, not the size cap"
    # When alice sends it
    reply = timed(f"predict {name}", api.request("POST", PREDICT, body, token=caller_a.token))
    # Then it is refused as a bad request, no model ran, and she is still served
    assert reply.status == 400, reply.body[:300]
    assert b"predictions" not in reply.body
    assert_still_served(api, caller_a)


def padded_to(size: int, who: Caller) -> bytes:
    """A valid request for `who`, padded with JSON whitespace to exactly `size` bytes."""
    body = instances(who.rows(10))
    return body + b" " * (size - len(body))


def test_body_exactly_at_the_cap_is_served(api: Api, caller_a: Caller) -> None:
    # Given a valid body of exactly MaxBodyBytes (JSON whitespace is legal padding)
    body = padded_to(MAX_BODY_BYTES, caller_a)
    reply = timed("predict body at the cap (1 MiB)", api.request("POST", PREDICT, body, token=caller_a.token))
    # Then the cap is inclusive: it is answered
    assert reply.status == 200, reply.body[:300]
    assert len(reply.json()["predictions"]) == 10


def test_one_byte_over_the_cap_is_a_413(api: Api, caller_a: Caller) -> None:
    body = padded_to(MAX_BODY_BYTES + 1, caller_a)
    reply = timed(
        "predict body 1 byte over the cap", api.request("POST", PREDICT, body, token=caller_a.token)
    )
    assert reply.status == 413
    assert_still_served(api, caller_a)


def test_a_full_batch_is_served(api: Api, caller_a: Caller) -> None:
    # The legitimate upper bound, for comparison with the hostile payloads' timings
    body = instances(caller_a.rows(caller_a.card["max_batch"]))
    reply = timed("predict max_batch valid rows", api.request("POST", PREDICT, body, token=caller_a.token))
    assert reply.status == 200 and len(reply.json()["predictions"]) == caller_a.card["max_batch"]


def gzip_bomb(who: Caller) -> bytes:
    """About 10 KB that would inflate to about 10 MB of JSON whitespace around a valid request."""
    return gzip.compress(instances(who.rows(1)) + b" " * (10 * MAX_BODY_BYTES), compresslevel=9)


# A gzip stream is not UTF-8 (its second byte is 0x8b). API Gateway hands such a body to the
# function as text; so does `make serve`'s gateway (local/gateway.py), while `sam local start-api`
# answers 502 itself before any function runs (aws/aws-sam-cli#7927): there, only the same header
# comes, with a body that would be served if it were read as sent.
GZIP_CASES = ["uncompressed-body-declared-gzip", *([] if RUNNING_STACK_URL else ["gzip-bomb"])]


@pytest.mark.parametrize("case", GZIP_CASES)
def test_content_encoded_body_is_refused_not_inflated(api: Api, caller_a: Caller, case: str) -> None:
    body = gzip_bomb(caller_a) if case == "gzip-bomb" else instances(caller_a.rows(1))
    reply = timed(
        f"predict {case}",
        api.request("POST", PREDICT, body, token=caller_a.token, headers={"Content-Encoding": "gzip"}),
    )
    # Then the function neither inflates it nor reads it as something it is not
    assert reply.status == 415, reply.body[:300]
    assert_still_served(api, caller_a)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,
    ],
)
def test_non_json_media_types_are_a_415(api: Api, caller_a: Caller, content_type: str | None) -> None:
    body = instances(caller_a.rows(1))
    reply = api.request("POST", PREDICT, body, token=caller_a.token, content_type=content_type)
    assert reply.status == 415
