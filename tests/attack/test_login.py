"""Login attacks: user enumeration, password guessing, oversized and ill-typed input.

Lockout is exercised on throwaway usernames (lockout applies to unknown usernames too), so the
demo users, which the other tests log in as, are never locked.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.attack.kit import Api, Operator, Reply, assert_problem

pytestmark = pytest.mark.blackbox

TOKEN = "/api/v1/auth/token"
FORM = "application/x-www-form-urlencoded"
MAX_ATTEMPTS = 20  # bound on the guessing loop, far above any sane lockout threshold
LOCAL_LOCKOUT_THRESHOLD = 5  # template.yaml's LockoutThreshold default, which the local stack uses
LOCAL_LOCKOUT_SECONDS = 900  # and its LockoutSeconds default

# Headers that differ per request whatever the outcome (dates, request and trace ids).
VOLATILE_HEADERS = {
    "date",
    "x-amzn-requestid",
    "x-amz-apigw-id",
    "x-amzn-trace-id",
    "apigw-requestid",
    "x-amz-cf-id",
    "x-amz-cf-pop",
    "via",
    "x-cache",
}


def throwaway_username() -> str:
    return f"attack-{uuid.uuid4().hex[:12]}"


def login(api: Api, username: Any, password: Any, *, form: bool = False) -> Reply:
    if form:
        body = f"grant_type=password&username={username}&password={password}"
        return api.request("POST", TOKEN, body, content_type=FORM)
    return api.request("POST", TOKEN, {"username": username, "password": password})


def stable_headers(reply: Reply) -> list[tuple[str, str]]:
    return sorted(
        (name.lower(), value) for name, value in reply.headers.items() if name.lower() not in VOLATILE_HEADERS
    )


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_unknown_user_and_wrong_password_are_indistinguishable(api: Api, form: bool) -> None:
    # Given a real username with a wrong password, and a username that does not exist
    real = api.accounts[0]
    wrong_password = login(api, real.username, f"wrong-{uuid.uuid4().hex}", form=form)
    unknown_user = login(api, throwaway_username(), f"wrong-{uuid.uuid4().hex}", form=form)
    # Then status, body and headers are the same: nothing tells the attacker the user exists
    assert wrong_password.status == unknown_user.status == 401
    assert wrong_password.body == unknown_user.body
    assert stable_headers(wrong_password) == stable_headers(unknown_user)
    # And the real user, after one wrong guess, still logs in (which also resets her counter)
    assert api.login(real)


def guess_until_locked(api: Api, username: str) -> tuple[list[int], Reply]:
    """Wrong passwords until a 429 (or MAX_ATTEMPTS); the statuses before it and the 429 itself."""
    statuses: list[int] = []
    for _ in range(MAX_ATTEMPTS):
        reply = login(api, username, f"guess-{uuid.uuid4().hex}")
        if reply.status == 429:
            return statuses, reply
        statuses.append(reply.status)
    pytest.fail(f"no lockout after {MAX_ATTEMPTS} wrong passwords: {statuses}")


def test_repeated_failures_lock_the_username_for_a_cool_down(api: Api) -> None:
    # Given a username (that does not even exist) guessed at repeatedly
    username = throwaway_username()
    statuses, locked = guess_until_locked(api, username)
    # Then the first failures are plain 401s, then the username is locked with a 429
    assert statuses and set(statuses) == {401}
    if not api.deployed:
        assert len(statuses) == LOCAL_LOCKOUT_THRESHOLD
    assert_problem(locked)
    retry_after = int(locked.header("Retry-After") or "0")
    assert retry_after >= 1
    if not api.deployed:
        assert retry_after <= LOCAL_LOCKOUT_SECONDS
    # And it stays locked, with the same answer, whatever is tried next
    again = login(api, username, "another-guess")
    assert again.status == 429 and again.body == locked.body
    # And other users are not affected
    assert api.login(api.accounts[0])


@pytest.mark.local_only
def test_lockout_holds_for_the_right_password_until_the_cool_down_ends(api: Api, operator: Operator) -> None:
    # Given a real user locked out by wrong guesses
    user = operator.provisioned.lockable_user
    guess_until_locked(api, user.username)
    # When the right password is sent during the cool-down
    during = login(api, user.username, user.password)
    # Then it is refused like any guess: the lockout does not reveal which guess was right
    assert during.status == 429
    # When the cool-down has passed (the counter's expiry moved into the past, as time would)
    operator.client("dynamodb").update_item(
        TableName=operator.env["TABLE_NAME"],
        Key={"pk": {"S": f"attempts#{user.username}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    # Then the right password works again
    after = login(api, user.username, user.password)
    assert after.status == 200, after.body[:200]


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_a_100_kb_password_is_a_400_without_hashing_it(api: Api, form: bool) -> None:
    reply = login(api, throwaway_username(), "p" * 100_000, form=form)
    assert reply.status == 400
    # the limit is stated, the input is not echoed
    assert b"ppppp" not in reply.body


NON_STRING_FIELDS: dict[str, dict[str, Any]] = {
    "password-number": {"password": 12345},
    "password-null": {"password": None},
    "password-list": {"password": ["a", "b"]},
    "password-object": {"password": {"$ne": None}},
    "password-bool": {"password": True},
    "password-empty": {"password": ""},
    "username-number": {"username": 12345},
    "username-null": {"username": None},
    "username-list": {"username": ["alice"]},
    "username-object": {"username": {"$ne": None}},
    "username-bool": {"username": False},
}


@pytest.mark.parametrize("case", list(NON_STRING_FIELDS))
def test_non_string_fields_are_a_400(api: Api, case: str) -> None:
    body = {"username": throwaway_username(), "password": "some-password"} | NON_STRING_FIELDS[case]
    reply = api.request("POST", TOKEN, body)
    assert reply.status == 400, reply.body[:200]


MALFORMED_LOGINS: dict[str, tuple[str | None, bytes]] = {
    "not-json": ("application/json", b'{"username": "x", "password": '),
    "json-array": ("application/json", b'["x", "y"]'),
    "extra-field": ("application/json", b'{"username": "x", "password": "y", "tenant_id": "tenant-b"}'),
    "missing-password": ("application/json", b'{"username": "x"}'),
    "duplicate-username": ("application/json", b'{"username": "x", "username": "y", "password": "z"}'),
    "deep-nesting": ("application/json", b'{"username":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    "empty-body": ("application/json", b""),
    "form-repeated-field": (FORM, b"grant_type=password&username=x&username=y&password=z"),
    "form-wrong-grant": (FORM, b"grant_type=client_credentials&username=x&password=y"),
    "form-unknown-field": (FORM, b"grant_type=password&username=x&password=y&tenant_id=tenant-b"),
    "form-bad-percent-encoding": (FORM, b"grant_type=password&username=%zz&password=%"),
    "text-plain": ("text/plain", b'{"username": "x", "password": "y"}'),
    "no-content-type": (None, b'{"username": "x", "password": "y"}'),
    "username-sql": ("application/json", b'{"username": "x\' OR \'1\'=\'1", "password": "y"}'),
    "username-key-prefix": ("application/json", b'{"username": "attempts#alice", "password": "y"}'),
    "username-null-byte": ("application/json", b'{"username": "alice\\u0000", "password": "y"}'),
    "username-65-chars": ("application/json", b'{"username": "' + b"u" * 65 + b'", "password": "y"}'),
    "password-lone-surrogate": ("application/json", b'{"username": "x", "password": "\\ud800"}'),
}


@pytest.mark.parametrize("case", list(MALFORMED_LOGINS))
def test_malformed_login_requests_are_a_400(api: Api, case: str) -> None:
    content_type, body = MALFORMED_LOGINS[case]
    reply = api.request("POST", TOKEN, body, content_type=content_type)
    assert reply.status == 400, reply.body[:200]


def test_an_oversized_login_body_is_a_413(api: Api) -> None:
    body = b'{"username": "x", "password": "' + b"p" * (300 * 1024) + b'"}'
    reply = api.request("POST", TOKEN, body)
    assert reply.status == 413
