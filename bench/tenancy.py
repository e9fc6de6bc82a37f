"""Tenant isolation at scale, simulated: what `per-tenant` and `shared` mode cost as tenants grow.

Nobody can run 10,000 tenants' traffic through Lambda here, so this section replays a model of
it, fed with figures measured in the same bench run:

- `cold_s`: predict's cold start (fresh interpreter, imports, the first request, which fetches
  and parses the tenant's model: `bench/cold.py`);
- `miss_s`: a warm container's cache miss, the model's S3 GetObject (moto in-process), its
  SHA-256 check and ONNX Runtime's session creation (`measure_miss`);
- `warm_s`: a warm request (model A, batch 1, p50 of `ours` in the warm section).

The model of Lambda (its documented behaviour where there is one, a stated guess where not):

- Requests arrive as a Poisson process (`RATE_PER_S` in all) and each picks a tenant by a Zipf
  law (exponent `ZIPF_S`): the first tenant gets the most, the long tail a few each.
- An execution environment serves one request at a time. A request goes to an idle environment
  that may serve it (any in `shared` mode, one of its own tenant's in `per-tenant` mode), the
  most recently used first; if there is none, a new environment starts (a cold start).
- An idle environment is reclaimed after `IDLE_RECLAIM_S`. AWS does not document this; 10
  minutes is within what is commonly observed (5 to 15+), and is the parameter that matters most.
- `shared`: each environment keeps the last `CACHE_MODELS` tenants' models (the bench's cache);
  a warm environment without the tenant's model pays `miss_s`. `per-tenant`: an environment
  serves one tenant, so after its cold start it never misses.
- Billing: the duration rounded up to the millisecond, times the memory (`MEMORY_GB`, the
  template's default); a cold start bills its init too (on-demand Lambda bills INIT since
  2025-08-01).
- Not modelled: Lambda's own routing overhead, environments recycled after hours, AWS S3's
  latency (higher than moto's in-process answer, which makes `miss_s` an underestimate: this
  favours `shared`), and the per-tenant cap (2,500 tenant environments per 1,000 concurrency),
  which `peak_environments` is there to check against.

The first `WARMUP_SHARE` of the requests fill the environments and are not counted.
"""

from __future__ import annotations

import heapq
import itertools
import math
import statistics
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from bench.cold import ColdReport
from bench.warm import WarmRow

TENANT_COUNTS = (10, 100, 1000, 10_000)
MODES = ("per-tenant", "shared")
RATE_PER_S = 50.0
ZIPF_S = 1.0
IDLE_RECLAIM_S = 600.0
CACHE_MODELS = 10
MEMORY_GB = 1.0  # template.yaml PredictMemorySize default (1024 MB)
REQUESTS = 400_000  # about 2.2 hours of traffic at RATE_PER_S
WARMUP_SHARE = 0.25
SEED = 20261207
PER_MILLION = 1_000_000
HIT, MISS, COLD = "hit", "miss", "cold"  # what serving one request took


@dataclass(frozen=True)
class Inputs:
    """The measured figures the simulation is fed with, in seconds."""

    cold_s: float
    miss_s: float
    warm_s: float


@dataclass(frozen=True)
class Outcome:
    mode: str
    tenants: int
    counted: int
    cold_starts_per_million: float
    misses_per_million: float
    added_p50_ms: float
    added_p99_ms: float
    gb_s_per_million: float
    peak_environments: int
    most_tenants_in_one_environment: int


@dataclass
class TenancyReport:
    inputs: Inputs
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(slots=True, eq=False)
class _Environment:
    pool: int
    busy_until: float  # also when it was last used: it is reclaimed `idle_reclaim_s` after
    models: OrderedDict[int, None] = field(default_factory=OrderedDict)


def traffic(tenants: int, requests: int, seed: int = SEED) -> tuple[list[float], list[int]]:
    """Arrival times (s) and the tenant of each request: Poisson arrivals, Zipf tenants."""
    generator = np.random.default_rng(seed)
    times = np.cumsum(generator.exponential(1 / RATE_PER_S, requests))
    weights = 1 / np.arange(1, tenants + 1) ** ZIPF_S
    chosen = generator.choice(tenants, size=requests, p=weights / weights.sum())
    return times.tolist(), chosen.tolist()


def simulate(
    mode: str,
    tenants: int,
    inputs: Inputs,
    *,
    requests: int = REQUESTS,
    idle_reclaim_s: float = IDLE_RECLAIM_S,
    cache_models: int = CACHE_MODELS,
) -> Outcome:
    """Replay `requests` arrivals over `tenants` tenants in `mode` and count what they cost."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    times, chosen = traffic(tenants, requests)
    per_tenant = mode == "per-tenant"
    costs = {  # kind -> (billed duration, latency added to a warm request), seconds
        HIT: (inputs.warm_s, 0.0),
        MISS: (inputs.warm_s + inputs.miss_s, inputs.miss_s),
        COLD: (inputs.cold_s, inputs.cold_s - inputs.warm_s),
    }
    pools: dict[int, list[_Environment]] = {}  # per-tenant: one per tenant; shared: pool 0 only
    reclaims: list[tuple[float, int, _Environment]] = []  # (when, serial, environment), a heap
    counted_from = int(requests * WARMUP_SHARE)
    cold = misses = live = peak = most_tenants = 0
    order = itertools.count()  # ties in the heap: first pushed, first reclaimed
    billed_ms = 0
    added: list[float] = []
    for index, (now, tenant) in enumerate(zip(times, chosen, strict=True)):
        while reclaims and reclaims[0][0] <= now:
            when, _, idle = heapq.heappop(reclaims)
            if idle.busy_until + idle_reclaim_s == when:  # not used again since it was pushed
                pools[idle.pool].remove(idle)
                live -= 1
        key = tenant if per_tenant else 0
        pool = pools.setdefault(key, [])  # least recently used first
        env = next((e for e in reversed(pool) if e.busy_until <= now), None)
        if env is None:
            env, live, kind = _Environment(key, now), live + 1, COLD
            peak = max(peak, live)
        else:
            pool.remove(env)
            kind = HIT if tenant in env.models else MISS
        duration, extra = costs[kind]
        pool.append(env)
        env.models[tenant] = None
        env.models.move_to_end(tenant)
        if len(env.models) > cache_models:
            env.models.popitem(last=False)
        most_tenants = max(most_tenants, len(env.models))
        env.busy_until = now + duration
        heapq.heappush(reclaims, (env.busy_until + idle_reclaim_s, next(order), env))
        if index >= counted_from:
            cold += kind == COLD
            misses += kind == MISS
            billed_ms += math.ceil(duration * 1000)
            added.append(extra)
    counted = requests - counted_from
    added.sort()
    scale = PER_MILLION / counted
    return Outcome(
        mode=mode,
        tenants=tenants,
        counted=counted,
        cold_starts_per_million=cold * scale,
        misses_per_million=misses * scale,
        added_p50_ms=added[len(added) // 2] * 1000,
        added_p99_ms=added[min(len(added) - 1, math.ceil(0.99 * len(added)) - 1)] * 1000,
        gb_s_per_million=billed_ms / 1000 * MEMORY_GB * scale,
        peak_environments=peak,
        most_tenants_in_one_environment=most_tenants,
    )


def measure_miss(repeats: int = 15) -> float:
    """A warm container's cache miss for model A, in seconds (median): the S3 GetObject from
    moto in-process, the SHA-256 check and ONNX Runtime's session creation, as `ModelCache`
    does them."""
    from model_serving.models import fetch_model_object, load_verified  # noqa: PLC0415

    from bench.stack import DEMO_TENANTS, moto_stack, onboard_demo_tenants, runtime  # noqa: PLC0415

    with moto_stack():
        onboard_demo_tenants()
        state = runtime()
        tenant = state.table.get_tenant(DEMO_TENANTS["A"][2])
        assert tenant is not None
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = fetch_model_object(state.s3, state.settings.model_bucket, tenant)
            load_verified(tenant, response["Body"].read())
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def inputs_from(warm: list[WarmRow], cold: ColdReport) -> Inputs:
    """This run's figures: predict's cold start, a cache miss (measured now), model A's warm p50."""
    ours = next(r for r in warm if (r.model, r.batch, r.handler) == ("A", 1, "ours"))
    predict = next(s for s in cold.starts if s.name == "predict")
    return Inputs(cold_s=predict.ours_s, miss_s=measure_miss(), warm_s=ours.stats.p50_us / 1e6)


def run_tenancy(inputs: Inputs, requests: int = REQUESTS) -> TenancyReport:
    started = time.perf_counter()
    report = TenancyReport(inputs)
    for tenants in TENANT_COUNTS:
        for mode in MODES:
            report.outcomes.append(simulate(mode, tenants, inputs, requests=requests))
    report.seconds = round(time.perf_counter() - started, 1)
    return report
