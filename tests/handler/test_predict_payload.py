"""Handler tests of predict's payload defences: the size cap, then the token, then the payload.

A request that fails any of these must be answered without touching S3 and without loading a
model: that is what keeps a malformed or oversized batch from costing a model fetch. Each test runs
in a fresh container (no model cached yet), so the first GetObject would show up in `s3_calls`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from functions.predict.app import lambda_handler
from tests.support import (
    FakeLambdaContext,
    assert_problem,
    assert_security_headers,
    current_runtime,
    load_event,
    response_header,
)
from tests.unit.test_payload import (
    any_documents,
    finite_numbers,
    near_valid_documents,
    nested_documents,
    render,
)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
VALID_BODY = '{"instances":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}'
SECRETS = ("987654.321", "SECRETSTRING")


def assert_refused(response: dict[str, Any], status: int) -> dict[str, Any]:
    """A problem+json response with `status`, the security headers, and no echo of the input."""
    problem = assert_problem(response, status)
    assert_security_headers(response)
    for secret in SECRETS:
        assert secret not in response["body"]
    return problem


def assert_nothing_fetched(s3_calls: list[str]) -> None:
    assert s3_calls == []
    assert len(current_runtime().models) == 0


def with_body(event: dict[str, Any], body: str, *, base64_encoded: bool = False) -> dict[str, Any]:
    event["body"] = body
    event["isBase64Encoded"] = base64_encoded
    return event


def without_token(event: dict[str, Any]) -> dict[str, Any]:
    event["headers"].pop("Authorization", None)
    event["multiValueHeaders"].pop("Authorization", None)
    return event


def padded(body: str, size: int) -> str:
    """`body` with trailing JSON whitespace up to exactly `size` bytes."""
    assert len(body.encode()) <= size
    return body + " " * (size - len(body.encode()))


def use_max_body_bytes(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    # Only the settings: the instrumented S3 client must stay.
    runtime = current_runtime()
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, max_body_bytes=size))


ROW = "[5.1,3.5,1.4,0.2]"
BAD_BODIES = {
    "1001-rows": '{"instances":[' + ",".join([ROW] * 1001) + "]}",
    "wrong-feature-count": '{"instances":[' + ROW + ",[987654.321,1,2,3,4]]}",
    "ragged-rows": '{"instances":[' + ROW + ",[987654.321,1]]}",
    "string": '{"instances":[[1,"SECRETSTRING",3,4]]}',
    "numeric-string": '{"instances":[[1,"1.5",3,4]]}',
    "bool": '{"instances":[[1,true,3,4]]}',
    "null": '{"instances":[[1,null,3,4]]}',
    "nan": '{"instances":[[1,NaN,3,987654.321]]}',
    "infinity": '{"instances":[[1,Infinity,3,4]]}',
    "minus-infinity": '{"instances":[[1,-Infinity,3,4]]}',
    "1e999": '{"instances":[[1,1e999,3,4]]}',
    "minus-1e999": '{"instances":[[1,-1e999,3,4]]}',
    "int-beyond-float": '{"instances":[[1,1' + "0" * 400 + ",3,4]]}",
    "10000-digit-int": '{"instances":[[1,' + "7" * 10_000 + ",3,4]]}",
    "nested-list": '{"instances":[[1,[987654.321],3,4]]}',
    "object-in-row": '{"instances":[[1,{"a":"SECRETSTRING"},3,4]]}',
    "object-as-row": '{"instances":[{"a":1}]}',
    "empty-list": '{"instances":[]}',
    "missing-instances": '{"rows":[[1,2,3,4]]}',
    "extra-key": '{"instances":[[1,2,3,4]],"tenant_id":"SECRETSTRING"}',
    "duplicate-key": '{"instances":[[1,2,3,4]],"instances":[[987654.321,2,3,4]]}',
    "deep-nesting": "[" * 100_000,
    "deep-object-nesting": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "top-level-list": "[[1,2,3,4]]",
    "top-level-string": '"SECRETSTRING"',
    "empty-body": "",
    "lone-surrogate": '{"instances":[[1,2,3,4]],"x":"\ud800"}',
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_payload_is_400_before_any_model_fetch(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str], body: str
) -> None:
    # Given a fresh container and alice's valid token with a malformed batch
    event = with_body(load_event("predict_alice", alice_token=alice_token), body)
    # When predict handles it
    response = lambda_handler(event, context)
    # Then it is a 400 problem, and no model was fetched from S3 or loaded
    assert_refused(response, 400)
    assert_nothing_fetched(s3_calls)


def test_invalid_utf8_in_a_base64_body_is_400(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str]
) -> None:
    # Given a base64 body whose bytes are not UTF-8
    raw = b'{"instances":[[1,2,3,4]],"x":"\xff\xfeSECRETSTRING"}'
    event = with_body(
        load_event("predict_alice", alice_token=alice_token),
        base64.b64encode(raw).decode(),
        base64_encoded=True,
    )
    # When predict handles it, Then it is a 400 and nothing was fetched
    assert_refused(lambda_handler(event, context), 400)
    assert_nothing_fetched(s3_calls)


def test_body_that_is_not_base64_is_400(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str]
) -> None:
    # Given a body flagged as base64 that is not base64
    event = with_body(
        load_event("predict_alice", alice_token=alice_token), "not*base64!", base64_encoded=True
    )
    # Then it is a 400 and nothing was fetched
    assert_refused(lambda_handler(event, context), 400)
    assert_nothing_fetched(s3_calls)


def test_oversized_body_event_is_413(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str]
) -> None:
    # Given the sample event whose body exceeds the 1 MiB cap
    event = load_event("predict_oversized_body", alice_token=alice_token)
    assert len(event["body"]) > DEFAULT_MAX_BODY_BYTES
    # When predict handles it, Then it is a 413 and nothing was fetched
    assert_refused(lambda_handler(event, context), 413)
    assert_nothing_fetched(s3_calls)


def test_wrong_content_type_event_is_415(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str]
) -> None:
    # Given a valid batch sent as text/csv
    event = load_event("predict_wrong_content_type", alice_token=alice_token)
    # When predict handles it, Then it is a 415 and nothing was fetched
    assert_refused(lambda_handler(event, context), 415)
    assert_nothing_fetched(s3_calls)


def test_base64_body_event_is_served(alice_token: str, context: FakeLambdaContext) -> None:
    # Given the sample event whose valid batch is base64-encoded by the gateway
    event = load_event("predict_base64_body", alice_token=alice_token)
    # When predict handles it
    response = lambda_handler(event, context)
    # Then both rows are predicted
    assert response["statusCode"] == 200
    assert_security_headers(response)
    assert len(json.loads(response["body"])["predictions"]) == 2


def test_base64_body_decoding_past_1mib_is_413(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str]
) -> None:
    # Given a base64 body that decodes to one byte more than 1 MiB (its encoded length passes
    # the cheap length check, so the decoded size is what refuses it)
    raw = padded(VALID_BODY, DEFAULT_MAX_BODY_BYTES + 1).encode()
    event = with_body(
        load_event("predict_alice", alice_token=alice_token),
        base64.b64encode(raw).decode(),
        base64_encoded=True,
    )
    # When predict handles it, Then it is a 413 and nothing was fetched
    assert_refused(lambda_handler(event, context), 413)
    assert_nothing_fetched(s3_calls)


def test_base64_body_exactly_at_the_cap_is_served(
    alice_token: str, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a small cap and a base64 body that decodes to exactly that many bytes
    use_max_body_bytes(monkeypatch, 200)
    raw = padded(VALID_BODY, 200).encode()
    event = with_body(
        load_event("predict_alice", alice_token=alice_token),
        base64.b64encode(raw).decode(),
        base64_encoded=True,
    )
    # When predict handles it, Then it is served
    assert lambda_handler(event, context)["statusCode"] == 200


@pytest.mark.parametrize("cap", [200, DEFAULT_MAX_BODY_BYTES], ids=["small-cap", "default-1MiB"])
def test_body_exactly_at_the_cap_is_served_and_one_byte_more_is_413(
    alice_token: str,
    context: FakeLambdaContext,
    s3_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    cap: int,
) -> None:
    # Given the body cap in force (the template default, or a small one set by the operator)
    if cap != DEFAULT_MAX_BODY_BYTES:
        use_max_body_bytes(monkeypatch, cap)
    assert current_runtime().settings.max_body_bytes == cap
    # When a valid batch padded to one byte past the cap is sent
    over = lambda_handler(
        with_body(load_event("predict_alice", alice_token=alice_token), padded(VALID_BODY, cap + 1)), context
    )
    # Then it is a 413 and nothing was fetched
    assert_refused(over, 413)
    assert_nothing_fetched(s3_calls)
    # When the same batch padded to exactly the cap is sent
    at_cap = lambda_handler(
        with_body(load_event("predict_alice", alice_token=alice_token), padded(VALID_BODY, cap)), context
    )
    # Then it is served
    assert at_cap["statusCode"] == 200
    assert len(json.loads(at_cap["body"])["predictions"]) == 2


def test_cap_counts_utf8_bytes_not_characters(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a small cap and a body with fewer characters than the cap but more UTF-8 bytes
    use_max_body_bytes(monkeypatch, 200)
    body = '{"instances":[[1,2,3,4]],"x":"' + "é" * 100 + '"}'
    assert len(body) <= 200 < len(body.encode())
    # When predict handles it, Then it is a 413 and nothing was fetched
    event = with_body(load_event("predict_alice", alice_token=alice_token), body)
    assert_refused(lambda_handler(event, context), 413)
    assert_nothing_fetched(s3_calls)


def test_size_cap_comes_before_authentication(
    demo: Any, context: FakeLambdaContext, s3_calls: list[str]
) -> None:
    # Given an oversized body and no token at all
    event = without_token(load_event("predict_oversized_body"))
    # When predict handles it
    response = lambda_handler(event, context)
    # Then the size cap answers first (step 1): 413, not 401
    assert_refused(response, 413)
    assert response_header(response, "WWW-Authenticate") is None
    assert_nothing_fetched(s3_calls)


@pytest.mark.parametrize(
    "body", [BAD_BODIES["nan"], BAD_BODIES["string"], "{not json"], ids=["nan", "string", "junk"]
)
def test_authentication_comes_before_payload_validation(
    demo: Any, context: FakeLambdaContext, s3_calls: list[str], body: str
) -> None:
    # Given a small invalid body and no token
    event = with_body(load_event("predict_no_token"), body)
    # When predict handles it
    response = lambda_handler(event, context)
    # Then the missing token answers first: 401 with a Bearer challenge, not 400
    assert_refused(response, 401)
    assert (response_header(response, "WWW-Authenticate") or "").startswith("Bearer")
    assert_nothing_fetched(s3_calls)


# --- no input is a server error -----------------------------------------------------------------

alice_rows = st.lists(st.lists(finite_numbers, min_size=4, max_size=4), min_size=1, max_size=5)
handler_bodies = st.one_of(
    st.one_of(any_documents, near_valid_documents(), nested_documents).map(render),
    alice_rows.map(lambda rows: render({"instances": rows})),
    st.text(max_size=64),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=handler_bodies)
@example(body='{"instances":[[[1' + "0" * 400 + "],[1],[2],[3]]]}")
def test_property_no_body_gets_a_server_error(
    alice_token: str, context: FakeLambdaContext, body: str
) -> None:
    # Given alice's valid token and any body: nested arrays, objects, extreme numbers, any text
    event = with_body(load_event("predict_alice", alice_token=alice_token), body)
    # When predict answers it
    response = lambda_handler(event, context)
    # Then the answer is a prediction or the client's error, never a 5xx
    assert response["statusCode"] == 200 or 400 <= response["statusCode"] < 500, body
    assert_security_headers(response)


# --- bodies are UTF-8 JSON, and nothing else (RFC 8259 8.1) ----------------------------------------

OTHER_ENCODINGS = ["utf-16-le", "utf-16-be", "utf-16", "utf-32", "utf-32-le", "utf-8-sig"]


@pytest.mark.parametrize("encoding", OTHER_ENCODINGS)
def test_a_body_not_in_plain_utf8_is_400(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str], encoding: str
) -> None:
    # Given a valid body encoded as UTF-16 or UTF-32 (with or without a BOM), or UTF-8 with a BOM,
    # which json.loads would have detected and read
    body = base64.b64encode(VALID_BODY.encode(encoding)).decode()
    event = with_body(load_event("predict_alice", alice_token=alice_token), body, base64_encoded=True)
    # When predict answers it
    response = lambda_handler(event, context)
    # Then it is refused as invalid JSON, before any model is fetched
    assert assert_refused(response, 400)["detail"] == "The request body is not valid JSON."
    assert_nothing_fetched(s3_calls)


@pytest.mark.parametrize("charset", ["utf-16", "UTF-16LE", "iso-8859-1", '"utf-32"'])
def test_a_charset_other_than_utf8_is_415(
    alice_token: str, context: FakeLambdaContext, s3_calls: list[str], charset: str
) -> None:
    # Given a request that declares a charset other than UTF-8
    event = load_event("predict_alice", alice_token=alice_token)
    event["headers"]["Content-Type"] = f"application/json; charset={charset}"
    # When predict answers it
    response = lambda_handler(event, context)
    # Then it is told the media type is unsupported, before any model is fetched
    assert_refused(response, 415)
    assert_nothing_fetched(s3_calls)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", 'application/json;charset="UTF-8"']
)
def test_a_utf8_charset_is_served(alice_token: str, context: FakeLambdaContext, content_type: str) -> None:
    # Given a request that declares UTF-8, in any case, quoted or not
    event = load_event("predict_alice", alice_token=alice_token)
    event["headers"]["Content-Type"] = content_type
    # When predict answers it
    response = lambda_handler(event, context)
    # Then it is served
    assert response["statusCode"] == 200
