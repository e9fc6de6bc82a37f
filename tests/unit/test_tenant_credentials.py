"""The authorizer's sessions per tenant (`CredentialVendor`): one AssumeRole per tenant and window,
tagged with the tenant, handed out only while they outlive the authorizer cache TTL plus predict's
timeout, and after an STS failure only while that still holds (decision 0017)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.exceptions import ClientError
from model_runtime.runtime import Runtime
from model_runtime.settings import read_settings
from model_runtime.tenant_credentials import (
    CLOCK_MARGIN_SECONDS,
    MIN_SESSION_SECONDS,
    CredentialVendor,
    TenantCredentials,
    session_seconds,
)

from tests.faults import FakeClock

ROLE = "arn:aws:iam::123456789012:role/stack/tenant-data/TenantDataRole-1"


class FakeSts:
    """STS's AssumeRole, answering a new session each call, or failing while `down`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.down = False

    def assume_role(self, **call: Any) -> dict[str, Any]:
        self.calls.append(call)
        if self.down:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "AssumeRole")
        n = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{n}",
                "SecretAccessKey": f"secret-{n}",
                "SessionToken": f"t-{n}",
            }
        }


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> FakeSts:
    fake = FakeSts()
    monkeypatch.setattr(Runtime, "sts", fake)
    return fake


def vendor(needed: float = 100.0) -> CredentialVendor:
    """The vendor of a fresh authorizer container (grace: the template's 300 s)."""
    runtime = Runtime(dataclasses.replace(read_settings(), stale_grace_seconds=300))
    return CredentialVendor(runtime, ROLE, needed)


def test_a_session_is_assumed_for_the_tenant_tagged_with_it_and_named_for_it(
    clock: FakeClock, sts: FakeSts
) -> None:
    credentials = vendor().for_tenant("tenant-a")
    assert credentials == TenantCredentials("ASIA1", "secret-1", "t-1")
    (call,) = sts.calls
    assert call["RoleArn"] == ROLE
    assert call["Tags"] == [{"Key": "tenant_id", "Value": "tenant-a"}]
    assert call["RoleSessionName"] == "tenant-tenant-a"
    assert call["DurationSeconds"] == MIN_SESSION_SECONDS  # the defaults' needs fit STS's minimum


def test_each_tenant_has_its_own_session_and_a_warm_one_is_reused(clock: FakeClock, sts: FakeSts) -> None:
    vend = vendor()
    a, b = vend.for_tenant("tenant-a"), vend.for_tenant("tenant-b")
    assert a != b and [c["Tags"][0]["Value"] for c in sts.calls] == ["tenant-a", "tenant-b"]
    clock.advance(60)
    assert vend.for_tenant("tenant-a") is a and len(sts.calls) == 2


def test_a_session_is_never_handed_out_with_less_than_the_ttl_plus_predicts_timeout_left(
    clock: FakeClock, sts: FakeSts
) -> None:
    # Given a vendor that needs 100 s of validity at hand-out: 900 s sessions
    needed = 100.0
    vend = vendor(needed)
    first = vend.for_tenant("tenant-a")
    minted_at = clock.now
    # When time passes, whatever STS does, every session handed out still has `needed` left
    for step in range(40):
        clock.advance(30)
        sts.down = step % 3 == 0  # STS failing now and then
        try:
            handed = vend.for_tenant("tenant-a")
        except ClientError:
            continue  # a dependency failure: the authorizer's 503
        if handed is first:
            assert minted_at + vend.duration - clock.now >= needed
        else:
            first, minted_at = handed, clock.now


def test_while_sts_fails_the_last_session_is_handed_out_only_while_it_is_still_valid_long_enough(
    clock: FakeClock, sts: FakeSts
) -> None:
    needed = 100.0
    vend = vendor(needed)
    session = vend.for_tenant("tenant-a")
    sts.down = True
    window = vend.duration - needed
    # Within its window: the last known good session
    clock.advance(window - 50)
    assert vend.for_tenant("tenant-a") is session
    # Past it: no session, the dependency failure (the authorizer's 503), never a stale one
    clock.advance(60)
    with pytest.raises(ClientError):
        vend.for_tenant("tenant-a")


def test_with_no_session_yet_an_sts_failure_is_a_dependency_failure(clock: FakeClock, sts: FakeSts) -> None:
    sts.down = True
    with pytest.raises(ClientError):
        vendor().for_tenant("tenant-a")


def test_session_length_covers_the_need_plus_a_hand_out_window() -> None:
    assert session_seconds(60 + 10 + CLOCK_MARGIN_SECONDS) == MIN_SESSION_SECONDS
    assert session_seconds(3600 + 10 + CLOCK_MARGIN_SECONDS) == 3640 + 600


def test_credentials_never_show_their_secrets() -> None:
    credentials = TenantCredentials("ASIAKEY", "the-secret", "the-token")
    assert "the-secret" not in repr(credentials) and "the-token" not in repr(credentials)
    assert TenantCredentials.from_context({"tenant_access_key_id": "ASIAKEY"}) is None  # a part is none
    assert TenantCredentials.from_context(credentials.to_context()) == credentials
