"""The container's read-through cache: fresh for its TTL, last known good for a grace while
refreshing fails with a dependency error, never in place of an answer, and never a call per
request during an outage (model_runtime/ttl_cache.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import EndpointConnectionError
from model_runtime import ttl_cache
from model_runtime.ttl_cache import RefreshBackoff, TtlCache, backoff_seconds

from tests.faults import FakeClock

TTL, GRACE = 60.0, 300.0


class Source:
    """What the cache reads: a value, or an outage; counts the reads."""

    def __init__(self) -> None:
        self.value: str | None = "v1"
        self.down = False
        self.reads = 0
        self.during_read: Callable[[], None] = lambda: None

    def read(self, key: str) -> str | None:
        self.reads += 1
        self.during_read()
        if self.down:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.example/")
        return self.value


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def source() -> Source:
    return Source()


def cache(source: Source, grace: float = GRACE) -> TtlCache[str | None]:
    return TtlCache(source.read, TTL, grace=grace, name="test")


def test_a_value_is_read_once_per_ttl(clock: FakeClock, source: Source) -> None:
    values = cache(source)
    assert [values.get("k") for _ in range(3)] == ["v1"] * 3
    clock.advance(TTL + 1)
    source.value = "v2"
    assert values.get("k") == "v2"
    assert source.reads == 2


def test_last_known_good_lasts_the_grace_past_the_ttl_and_no_longer(clock: FakeClock, source: Source) -> None:
    values = cache(source)
    values.get("k")
    source.down = True
    clock.advance(TTL + GRACE - 1)
    assert values.get("k") == "v1"
    clock.advance(2)
    with pytest.raises(EndpointConnectionError):
        values.get("k")


def test_a_successful_refresh_applies_at_once_whatever_it_says(clock: FakeClock, source: Source) -> None:
    # Given a value served stale through an outage
    values = cache(source)
    values.get("k")
    source.down = True
    clock.advance(TTL + 1)
    assert values.get("k") == "v1"
    # When the source is back and now says "gone"
    source.down, source.value = False, None
    clock.advance(ttl_cache.BACKOFF_CAP_SECONDS)
    # Then gone it is, well within the grace
    assert values.get("k") is None


def test_grace_zero_serves_nothing_stale(clock: FakeClock, source: Source) -> None:
    values = cache(source, grace=0)
    values.get("k")
    source.down = True
    clock.advance(TTL + 0.001)
    with pytest.raises(EndpointConnectionError):
        values.get("k")


def test_other_errors_are_not_outages(clock: FakeClock, source: Source) -> None:
    # A bug or a malformed item is not "AWS is down": no stale value, no backoff hides it
    values = cache(source)
    values.get("k")
    clock.advance(TTL + 1)

    def broken() -> None:
        raise ValueError("malformed item")

    source.during_read = broken
    for _ in range(2):
        with pytest.raises(ValueError, match="malformed"):
            values.get("k")
    assert source.reads == 3


def test_after_a_failure_the_key_is_not_read_again_until_its_backoff_has_passed(
    clock: FakeClock, source: Source
) -> None:
    values = cache(source)
    source.down = True
    with pytest.raises(EndpointConnectionError):
        values.get("k")
    # Requests within the backoff: refused at once, no read
    for _ in range(10):
        with pytest.raises(RefreshBackoff):
            values.get("k")
    assert source.reads == 1
    # After it: one read, which fails again and backs off again (longer)
    clock.advance(ttl_cache.BACKOFF_BASE_SECONDS)
    with pytest.raises(EndpointConnectionError):
        values.get("k")
    assert source.reads == 2
    # Other keys are not held back by this one
    source.down = False
    assert values.get("other") == "v1"


def test_while_one_refresh_is_in_flight_other_requests_get_last_known_good(
    clock: FakeClock, source: Source
) -> None:
    # Given an expired value, and a refresh that is slow (another request arrives during it)
    values = cache(source)
    values.get("k")
    clock.advance(TTL + 1)
    seen: list[str | None] = []
    source.during_read = lambda: seen.append(values.get("k"))
    source.value = "v2"
    # When the refresh runs
    assert values.get("k") == "v2"
    # Then the request that came meanwhile got the last known good value, and started no read
    assert seen == ["v1"]
    assert source.reads == 2


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    for failures in range(1, 12):
        ceiling = min(ttl_cache.BACKOFF_CAP_SECONDS, ttl_cache.BACKOFF_BASE_SECONDS * 2 ** (failures - 1))
        delays = {backoff_seconds(failures) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered: containers do not retry in lockstep
    assert max(backoff_seconds(30) for _ in range(50)) <= ttl_cache.BACKOFF_CAP_SECONDS
