"""Unit tests of `parse_credentials`: what a login body must be before any lookup or hash."""

from __future__ import annotations

import json

import pytest
from model_runtime.credentials import Credentials, parse_credentials
from model_runtime.errors import BadRequest
from model_runtime.passwords import MAX_PASSWORD_CHARS

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def as_json(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def refused(body: bytes, media_type: str = JSON) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse_credentials(body, media_type)
    return caught.value


# --- accepted --------------------------------------------------------------------------------


def test_json_credentials_are_parsed() -> None:
    # Given a JSON object with exactly a username and a password
    body = as_json(username="alice", password="alice-local-demo")
    # When it is parsed
    credentials = parse_credentials(body, JSON)
    # Then both come back as sent
    assert credentials == Credentials("alice", "alice-local-demo")


def test_oauth2_password_form_is_parsed_with_percent_decoding() -> None:
    # Given an OAuth2 password-grant form, with the optional scope and client_id an OAuth2
    # client library sends, and a password that needs percent-encoding
    body = b"grant_type=password&username=alice&password=p%40ss+w%C3%B6rd%26&scope=&client_id=cli"
    # When it is parsed
    credentials = parse_credentials(body, FORM)
    # Then the password is decoded exactly
    assert credentials == Credentials("alice", "p@ss w\u00f6rd&")


@pytest.mark.parametrize(
    "username", ["a", "a" * 64, "alice.smith_1@example.com", "bob+test-2", "ALICE", "0start"]
)
def test_usernames_within_the_pattern_are_accepted(username: str) -> None:
    # Given a username of 1 to 64 allowed characters that starts with a letter or digit
    # When it is parsed
    credentials = parse_credentials(as_json(username=username, password="hunter2"), JSON)
    # Then it is accepted unchanged
    assert credentials.username == username


@pytest.mark.parametrize("password", ["x", "x" * MAX_PASSWORD_CHARS, '\u00e9\u00e8 \U0001f511 " \\ \n'])
def test_passwords_of_1_to_max_characters_are_accepted(password: str) -> None:
    # Given a password at either length limit, or one full of non-ASCII and JSON-escaped characters
    # When it is parsed
    credentials = parse_credentials(as_json(username="alice", password=password), JSON)
    # Then it is accepted unchanged
    assert credentials.password == password


def test_repr_hides_the_password() -> None:
    # Given parsed credentials
    credentials = parse_credentials(as_json(username="alice", password="s3cret-value"), JSON)
    # When they end up in a log line or a traceback
    text = f"{credentials!r} {credentials}"
    # Then the password is not there, the username is
    assert "s3cret-value" not in text
    assert "alice" in text


# --- refused ---------------------------------------------------------------------------------


REFUSED_JSON: dict[str, bytes] = {
    "malformed": b'{"username": "alice", "password": ',
    "empty": b"",
    "not-utf8": b'{"username":"alice","password":"hunter2\xff\xfe"}',
    "lone-surrogate-escape": b'{"username":"alice","password":"\\ud800"}',
    "array": b'["alice", "hunter2"]',
    "string": b'"alice"',
    "deep-nesting": b"[" * 100_000,
    "missing-password": as_json(username="alice"),
    "missing-username": as_json(password="hunter2"),
    "extra-field": as_json(username="alice", password="hunter2", tenant_id="tenant-b"),
    "password-number": as_json(username="alice", password=12345),
    "password-null": as_json(username="alice", password=None),
    "password-bool": as_json(username="alice", password=True),
    "password-list": as_json(username="alice", password=["hunter2"]),
    "password-object": as_json(username="alice", password={"hunter2": "hunter2"}),
    "password-empty": as_json(username="alice", password=""),
    "password-too-long": as_json(username="alice", password="x" * (MAX_PASSWORD_CHARS + 1)),
    "username-number": as_json(username=42, password="hunter2"),
    "username-null": as_json(username=None, password="hunter2"),
    "username-list": as_json(username=["alice"], password="hunter2"),
    "username-empty": as_json(username="", password="hunter2"),
    "username-too-long": as_json(username="a" * 65, password="hunter2"),
    "username-leading-symbol": as_json(username=".alice", password="hunter2"),
    "username-space": as_json(username="al ice", password="hunter2"),
    "username-newline": as_json(username="alice\n", password="hunter2"),
    "username-nul": as_json(username="alice\u0000", password="hunter2"),
    "username-quote": as_json(username="alice'--", password="hunter2"),
    "username-slash": as_json(username="../alice", password="hunter2"),
    "username-non-ascii": as_json(username="\u0430lice", password="hunter2"),  # Cyrillic a
}


@pytest.mark.parametrize("case", sorted(REFUSED_JSON))
def test_invalid_json_credentials_are_refused(case: str) -> None:
    # Given a JSON body that is not exactly a valid username and password
    # When it is parsed
    error = refused(REFUSED_JSON[case])
    # Then it is a 400 whose detail is a fixed message, not the input
    assert error.status == 400
    assert "alice" not in error.detail and "hunter2" not in error.detail


REFUSED_FORMS: dict[str, bytes] = {
    "repeated-username": b"grant_type=password&username=alice&username=bob&password=hunter2",
    "repeated-password": b"grant_type=password&username=alice&password=hunter2&password=hunter3",
    "repeated-grant-type": b"grant_type=password&grant_type=password&username=alice&password=hunter2",
    "unknown-field": b"grant_type=password&username=alice&password=hunter2&tenant_id=tenant-b",
    "wrong-grant-type": b"grant_type=client_credentials&username=alice&password=hunter2",
    "missing-grant-type": b"username=alice&password=hunter2",
    "missing-password": b"grant_type=password&username=alice",
    "blank-password": b"grant_type=password&username=alice&password=",
    "empty-segment": b"grant_type=password&&username=alice&password=hunter2",
    "field-without-value": b"grant_type=password&username=alice&password",
    "not-utf8": b"grant_type=password&username=alice&password=\xff",
    "too-many-fields": b"&".join([b"grant_type=password", b"username=alice", b"password=hunter2"] * 3),
}


@pytest.mark.parametrize("case", sorted(REFUSED_FORMS))
def test_invalid_forms_are_refused(case: str) -> None:
    # Given an OAuth2 form that is not exactly one password grant
    # When it is parsed
    error = refused(REFUSED_FORMS[case], FORM)
    # Then it is a 400 that does not repeat the input
    assert error.status == 400
    assert "alice" not in error.detail and "hunter2" not in error.detail and "tenant-b" not in error.detail


@pytest.mark.parametrize("media_type", ["text/plain", "", "application/xml", "multipart/form-data"])
def test_other_media_types_are_refused(media_type: str) -> None:
    # Given well-formed JSON credentials sent with another media type
    body = as_json(username="alice", password="alice-local-demo")
    # When they are parsed
    error = refused(body, media_type)
    # Then they are refused without being read
    assert error.status == 400
    assert "alice" not in error.detail


def test_json_body_is_not_parsed_as_a_form() -> None:
    # Given form-encoded credentials labelled as JSON
    body = b"grant_type=password&username=alice&password=alice-local-demo"
    # When they are parsed
    # Then the label decides the parser, and the body is not JSON
    assert refused(body, JSON).detail == "The request body is not valid JSON."
