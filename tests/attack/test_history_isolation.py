"""Inference history under attack (OWASP API1:2023 again, on the history routes).

A caller reads only their own records: the caller and tenant come from the verified token, a
request id of someone else's is the same 404 as one that never was, and a cursor is signed for
its caller, so an edited, forged or someone else's cursor is a 400 that reveals nothing.
"""

from __future__ import annotations

import base64
import time

import pytest

from tests.attack.kit import Api, Caller

pytestmark = pytest.mark.blackbox

HISTORY = "/api/v1/history"


def predicted_request_id(api: Api, who: Caller) -> str:
    reply = api.request("POST", "/api/v1/predict", {"instances": who.rows()}, token=who.token)
    assert reply.status == 200, reply.body[:300]
    request_id = reply.header("X-Request-Id")
    assert request_id
    return request_id


def own_record(api: Api, who: Caller, request_id: str) -> dict[str, object]:
    """The caller's record of `request_id`, once the subscription has delivered it."""
    deadline = time.monotonic() + 30
    while True:
        reply = api.request("GET", f"{HISTORY}/{request_id}", token=who.token)
        if reply.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reply.status == 200, reply.body[:300]
    record: dict[str, object] = reply.json()
    return record


def test_the_history_routes_need_a_token(api: Api) -> None:
    for path in (HISTORY, f"{HISTORY}/some-request"):
        assert api.request("GET", path).status == 401
        assert api.request("GET", path, token="not.a.token").status == 401


def test_another_tenants_user_cannot_read_a_record_by_its_id(
    api: Api, caller_a: Caller, caller_b: Caller
) -> None:
    # Given alice's served request, in her history
    request_id = predicted_request_id(api, caller_a)
    assert own_record(api, caller_a, request_id)["request_id"] == request_id
    # When bob asks for it by its id, or lists his history
    theirs = api.request("GET", f"{HISTORY}/{request_id}", token=caller_b.token)
    never = api.request("GET", f"{HISTORY}/00000000-0000-0000-0000-000000000000", token=caller_b.token)
    listed = api.request("GET", HISTORY, token=caller_b.token)
    # Then it is the same 404 as a request that never was, and not in his list
    assert theirs.status == never.status == 404 and theirs.body == never.body
    assert listed.status == 200
    assert request_id not in listed.body.decode()


def test_a_tampered_or_foreign_cursor_is_a_400(api: Api, caller_a: Caller, caller_b: Caller) -> None:
    # Given a cursor of each caller (two served requests each, pages of one)
    for who in (caller_a, caller_b):
        ids = [predicted_request_id(api, who) for _ in range(2)]
        own_record(api, who, ids[-1])
    cursors = {}
    for who in (caller_a, caller_b):
        page = api.request("GET", f"{HISTORY}?limit=1", token=who.token).json()
        cursors[who.account.username] = page["next_cursor"]
    mine, theirs = cursors[caller_a.account.username], cursors[caller_b.account.username]
    head, _, mac = mine.partition(".")
    elsewhere = base64.urlsafe_b64encode(b"1970-01-01T00:00:00.000Z#x").rstrip(b"=").decode()
    for cursor in (theirs, f"{elsewhere}.{mac}", f"{head}.{mac[::-1]}", head, "AAAA.AAAA"):
        # When alice pages with it
        reply = api.request("GET", f"{HISTORY}?cursor={cursor}", token=caller_a.token)
        # Then it is a 400 problem (the kit checks: never a 5xx, no leak), with no records
        assert reply.status == 400, cursor
        assert b"records" not in reply.body
    # And her own cursor pages on
    assert api.request("GET", f"{HISTORY}?cursor={mine}&limit=1", token=caller_a.token).status == 200


@pytest.mark.parametrize("limit", ["0", "101", "-5", "ten", "1.5"])
def test_a_limit_out_of_range_is_a_400(api: Api, caller_a: Caller, limit: str) -> None:
    assert api.request("GET", f"{HISTORY}?limit={limit}", token=caller_a.token).status == 400
