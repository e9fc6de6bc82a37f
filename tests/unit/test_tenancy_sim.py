"""The scale simulation behind the choice of isolation mode (bench/tenancy.py) models what it
says: per-tenant environments never hold two tenants, a shared cache misses only when tenants
outnumber it, idle environments are reclaimed, and billing rounds each duration up to the ms."""

from __future__ import annotations

import dataclasses

import pytest

from bench.tenancy import PER_MILLION, Inputs, simulate

INPUTS = Inputs(cold_s=0.4, miss_s=0.005, warm_s=0.0003)
REQUESTS = 20_000


def test_a_per_tenant_environment_never_holds_a_second_tenant_and_never_misses() -> None:
    # Given many tenants' traffic in per-tenant mode
    outcome = simulate("per-tenant", 1000, INPUTS, requests=REQUESTS)

    # Then every environment served one tenant only, so a warm one always had the model
    assert outcome.most_tenants_in_one_environment == 1
    assert outcome.misses_per_million == 0
    assert outcome.cold_starts_per_million > 0  # the long tail starts environments


def test_a_shared_environment_misses_once_tenants_outnumber_its_cache() -> None:
    # Given shared mode with fewer tenants than the cache holds, then with many more
    few = simulate("shared", 5, INPUTS, requests=REQUESTS, cache_models=10)
    many = simulate("shared", 1000, INPUTS, requests=REQUESTS, cache_models=10)

    # Then the first never misses once warm, and the second misses on most requests
    assert few.misses_per_million == 0
    assert few.most_tenants_in_one_environment == 5
    assert many.most_tenants_in_one_environment == 10
    assert many.misses_per_million > PER_MILLION / 2
    assert many.added_p50_ms == pytest.approx(INPUTS.miss_s * 1000)


def test_one_tenant_costs_the_same_in_both_modes() -> None:
    # Given a single tenant: per-tenant and shared environments are then the same thing
    per_tenant = simulate("per-tenant", 1, INPUTS, requests=REQUESTS)
    shared = simulate("shared", 1, INPUTS, requests=REQUESTS)

    # Then the two modes count the same
    assert per_tenant == dataclasses.replace(shared, mode="per-tenant")


def test_an_environment_idle_past_the_reclaim_time_is_gone_and_each_request_is_billed_in_whole_ms() -> None:
    # Given environments reclaimed long before the next request arrives (50 req/s on average)
    outcome = simulate("shared", 1, INPUTS, requests=REQUESTS, idle_reclaim_s=1e-6)

    # Then every request is a cold start, billed 400 ms at 1 GB and adding the cold start's time
    assert outcome.cold_starts_per_million == pytest.approx(PER_MILLION)
    # reclaimed, not kept: live at once only as many as 400 ms cold starts overlap (about 20)
    assert outcome.peak_environments < REQUESTS / 100
    assert outcome.gb_s_per_million == pytest.approx(400 / 1000 * PER_MILLION)
    assert outcome.added_p99_ms == pytest.approx((INPUTS.cold_s - INPUTS.warm_s) * 1000)


def test_a_warm_single_row_request_is_billed_one_millisecond() -> None:
    # Given one tenant whose environments are never reclaimed
    outcome = simulate("per-tenant", 1, INPUTS, requests=REQUESTS, idle_reclaim_s=1e9)

    # Then after the warm-up nearly every request is a hit billed 1 ms (0.3 ms rounded up)
    assert outcome.cold_starts_per_million < 1000
    hits_billed = 1 / 1000 * PER_MILLION
    assert hits_billed <= outcome.gb_s_per_million < hits_billed + 0.4 * 1000


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        simulate("pooled", 10, INPUTS, requests=100)
