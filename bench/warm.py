"""Warm latency: our handler against the floor (bare predict) and the two peer patterns;
then what it costs to refuse a bad request; then a profile of the warm path.

Every case serves the same rows, through the same event, in the same process, interleaved (see
`timing.measure`). "Warm" means the container's caches (settings, clients, public keys, tenant
mapping, model) were filled by earlier calls; the mapping caches are refreshed right before each
timed loop, so a `MAPPING_TTL_SECONDS` expiry cannot land inside it.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import joblib
import numpy as np

from bench import peers
from bench.stack import (
    DEMO_TENANTS,
    authorized,
    clear_mapping_caches,
    instances_body,
    model_path,
    moto_stack,
    onboard_demo_tenants,
    predict_event,
    predict_handler,
    runtime,
    sample_rows,
    token_for,
)
from bench.timing import Case, Stats, measure, quiet_stdout

HANDLERS = ("bare", "singleton", "load_per_request", "ours")
UNSEEN_TOKEN = "ours_unseen_token"


def _with_unseen_token(lambda_handler: Callable[..., Any], event: Any, context: Any) -> Any:
    from functions.predict import app  # noqa: PLC0415

    app.runtime.tokens.verified.clear()
    return lambda_handler(event, context)


@dataclass(frozen=True)
class Plan:
    """Iterations per batch size; load-per-request is milliseconds a call, so it gets fewer."""

    iterations: dict[int, int]
    load_per_request_iterations: dict[int, int]
    rejection_iterations: int
    warmup: int = 50
    models: tuple[str, ...] = ("A", "B", "R", "F", "H", "K")
    batches: tuple[int, ...] = (1, 100, 1000)


FULL = Plan({1: 2000, 100: 1000, 1000: 300}, {1: 200, 100: 150, 1000: 60}, rejection_iterations=1000)
QUICK = Plan({1: 500, 100: 200, 1000: 50}, {1: 30, 100: 20, 1000: 10}, rejection_iterations=200)


@dataclass(frozen=True)
class WarmRow:
    model: str
    batch: int
    handler: str
    stats: Stats
    p50_vs_singleton: float = field(default=float("nan"))
    p99_vs_singleton: float = field(default=float("nan"))
    cpu_p50_vs_singleton: float = field(default=float("nan"))


def _context() -> Any:
    from tests.support import FakeLambdaContext  # noqa: PLC0415

    return FakeLambdaContext(function_name="bench-predict")


def _status(response: dict[str, Any]) -> int:
    return int(response["statusCode"])


def _predictions(response: dict[str, Any]) -> list[Any]:
    import json  # noqa: PLC0415

    predictions: list[Any] = json.loads(response["body"])["predictions"]
    return predictions


def _same_predictions(got: list[Any], expected: list[Any]) -> bool:
    """Labels identical; a regressor's values within the registry's 1e-5 relative tolerance."""
    if expected and isinstance(expected[0], float):
        return bool(np.allclose(got, expected, rtol=1e-5, atol=0))
    return got == expected


def run_warm(plan: Plan) -> list[WarmRow]:
    lambda_handler = predict_handler()

    rows_out: list[WarmRow] = []
    context = _context()
    with moto_stack():
        keys = onboard_demo_tenants()
        for name in plan.models:
            username, _, tenant_id, model_file = DEMO_TENANTS[name]
            model = joblib.load(model_path(name))
            peers.init_singleton(model_path(name))
            os.environ["PEER_MODEL_KEY"] = keys[name]
            for batch in plan.batches:
                # A token per batch size: a 100-tree forest's timed loops outlast a token's 15 min.
                token = token_for(username, tenant_id)
                rows = sample_rows(model_file, batch)
                array = np.asarray(rows, dtype=np.float64)
                event = authorized(predict_event(token, instances_body(rows)), tenant_id)
                expected = model.predict(array).tolist()
                calls: dict[str, Callable[[], Any]] = {
                    "bare": partial(model.predict, array),
                    "singleton": partial(peers.singleton_handler, event, context),
                    "load_per_request": partial(peers.load_per_request_handler, event, context),
                    "ours": partial(lambda_handler, event, context),
                }
                if batch == 1:
                    # A token this container has not verified yet: the verified-token cache is
                    # emptied before each call (a one-entry dict: the clear itself costs ~0.1 us).
                    calls[UNSEEN_TOKEN] = partial(_with_unseen_token, lambda_handler, event, context)
                # Same answer from every handler, checked outside the timed loop.
                with quiet_stdout():
                    for handler in ("singleton", "load_per_request", "ours", UNSEEN_TOKEN):
                        if handler not in calls:
                            continue
                        response = calls[handler]()
                        assert _status(response) == 200, (handler, response)
                        assert _same_predictions(_predictions(response), expected), handler
                clear_mapping_caches()
                with quiet_stdout():
                    lambda_handler(event, context)
                n = plan.iterations[batch]
                cases = {
                    handler: Case(
                        calls[handler],
                        plan.load_per_request_iterations[batch] if handler == "load_per_request" else n,
                        warmup=min(plan.warmup, 5) if handler == "load_per_request" else plan.warmup,
                    )
                    for handler in calls
                }
                stats = measure(cases)
                singleton = stats["singleton"]
                for handler in calls:
                    s = stats[handler]
                    rows_out.append(
                        WarmRow(
                            name,
                            batch,
                            handler,
                            s,
                            s.p50_us / singleton.p50_us,
                            s.p99_us / singleton.p99_us,
                            s.cpu_p50_us / singleton.cpu_p50_us,
                        )
                    )
    return rows_out


# --- rejections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectionRow:
    case: str
    description: str
    status: int
    body_bytes: int
    stats: Stats
    p50_vs_baseline: float
    p99_vs_baseline: float


BASELINE_REJECTION = "malformed_100b"


def rejection_bodies(max_body_bytes: int, max_batch: int) -> dict[str, tuple[str, int, str]]:
    """case -> (description, expected status, body), for model A (4 features)."""
    row = [5.1, 3.5, 1.4, 0.2]
    malformed = '{"instances":[[5.1,3.5,1.4,0.2]]'  # trailing garbage below: not JSON
    malformed += " " * (99 - len(malformed)) + ","
    big_rows = instances_body([row] * (max_body_bytes // 16))
    too_large = big_rows[: max_body_bytes + 1]
    too_many = instances_body([row] * (max_batch + 1))
    short_last = instances_body([row] * (max_batch - 1) + [row[:3]])
    # One row as long as the cap allows: passes the cheap row count, so it is parsed in full.
    one_long_row = '{"instances":[[' + ",".join(["1.5"] * ((max_body_bytes - 20) // 4)) + "]]}"
    # Rows of 4 300-digit numbers (Python's default int_max_str_digits), as many as the cap
    # holds: right counts and brackets, so only the number bound refuses them unparsed.
    giant_integers = giant_numbers_body("1" + "7" * 4299, max_body_bytes)
    giant_decimals = giant_numbers_body("1." + "7" * 4298, max_body_bytes)
    return {
        BASELINE_REJECTION: ("100-byte malformed JSON", 400, malformed),
        "too_large": (f"{max_body_bytes + 1}-byte body (cap {max_body_bytes})", 413, too_large),
        "too_many_rows": (f"{max_batch + 1} rows (max_batch {max_batch})", 400, too_many),
        "wrong_shape_1row": ("1 row of 3 values (model takes 4)", 400, instances_body([row[:3]])),
        "wrong_shape_full": (f"{max_batch} rows, the last of 3 values", 400, short_last),
        "wrong_shape_max": (
            f"1 row of {len(one_long_row) // 4} values, just under the cap",
            400,
            one_long_row,
        ),
        "giant_integers": (f"{len(giant_integers)} bytes of 4300-digit integers", 400, giant_integers),
        "giant_decimals": (f"{len(giant_decimals)} bytes of 4300-digit decimals", 400, giant_decimals),
    }


def giant_numbers_body(token: str, max_body_bytes: int) -> str:
    """As many rows of four `token`s as fit in `max_body_bytes`."""
    row = "[" + ",".join([token] * 4) + "]"
    count = (max_body_bytes - len('{"instances":[]}')) // (len(row) + 1)
    return '{"instances":[' + ",".join([row] * count) + "]}"


def run_rejections(plan: Plan) -> list[RejectionRow]:
    lambda_handler = predict_handler()
    context = _context()
    with moto_stack():
        onboard_demo_tenants()
        username, _, tenant_id, _ = DEMO_TENANTS["A"]
        token = token_for(username, tenant_id)
        bodies = rejection_bodies(runtime().settings.max_body_bytes, 1000)
        events = {
            case: authorized(predict_event(token, body), tenant_id) for case, (_, _, body) in bodies.items()
        }
        with quiet_stdout():
            for case, (_, status, _) in bodies.items():
                response = lambda_handler(events[case], context)
                assert _status(response) == status, (case, response)
        clear_mapping_caches()
        with quiet_stdout():
            lambda_handler(events[BASELINE_REJECTION], context)
        # Parsing a body near the cap takes milliseconds: fewer iterations keep the run short.
        slow = max(2, plan.rejection_iterations // 10)
        cases = {
            case: Case(
                partial(lambda_handler, event, context),
                slow if case == "wrong_shape_max" else plan.rejection_iterations,
            )
            for case, event in events.items()
        }
        stats = measure(cases)
    base = stats[BASELINE_REJECTION]
    return [
        RejectionRow(
            case,
            description,
            status,
            len(body.encode()),
            stats[case],
            stats[case].p50_us / base.p50_us,
            stats[case].p99_us / base.p99_us,
        )
        for case, (description, status, body) in bodies.items()
    ]


# --- profile and breakdown ----------------------------------------------------------------------


def profile_warm(calls: int = 5000, top: int = 15) -> str:
    """cProfile of `calls` warm batch-1 requests of ours for model A: the top entries by cumulative
    time (the call chain), then by own time (where the time is actually spent). cProfile's
    per-call overhead inflates code that makes many small calls, such as scikit-learn's checks."""
    lambda_handler = predict_handler()

    context = _context()
    with moto_stack():
        onboard_demo_tenants()
        username, _, tenant_id, model_file = DEMO_TENANTS["A"]
        event = authorized(
            predict_event(token_for(username, tenant_id), instances_body(sample_rows(model_file, 1))),
            tenant_id,
        )
        profiler = cProfile.Profile()
        with quiet_stdout():
            for _ in range(50):
                lambda_handler(event, context)
            clear_mapping_caches()
            lambda_handler(event, context)
            profiler.enable()
            for _ in range(calls):
                lambda_handler(event, context)
            profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


@dataclass(frozen=True)
class Step:
    name: str
    stats: Stats


def breakdown_warm(iterations: int = 2000) -> list[Step]:
    """Each step of ours on the warm path, timed alone (model A, batch 1), next to the whole
    handler and the singleton. What the steps do not add up to is the framework: Powertools'
    decorators, routing and response building."""
    from model_runtime.access import resolve_tenant  # noqa: PLC0415
    from model_runtime.http import json_response, raw_body  # noqa: PLC0415
    from model_serving.payload import validate_instances  # noqa: PLC0415

    lambda_handler = predict_handler()
    from functions.predict import app as predict_app  # noqa: PLC0415 - imported by predict_handler

    context = _context()
    with moto_stack():
        onboard_demo_tenants()
        username, _, tenant_id, model_file = DEMO_TENANTS["A"]
        token = token_for(username, tenant_id)
        event = authorized(predict_event(token, instances_body(sample_rows(model_file, 1))), tenant_id)
        peers.init_singleton(model_path("A"))
        with quiet_stdout():
            lambda_handler(event, context)
            clear_mapping_caches()
            lambda_handler(event, context)
        state = runtime()
        body = raw_body(event, state.settings.max_body_bytes)
        claims = state.tokens.verify(token)
        tenant = resolve_tenant(state, claims)
        rows = validate_instances(body, tenant.n_features, tenant.max_batch)
        model = state.models.get(tenant)
        predictions = model.predict(rows)
        steps: dict[str, Callable[[], Any]] = {
            "lambda_handler (whole)": partial(lambda_handler, event, context),
            "app.resolve (no decorators)": partial(predict_app.app.resolve, event),
            "singleton handler": partial(peers.singleton_handler, event, context),
            "raw_body": partial(raw_body, event, state.settings.max_body_bytes),
            "verify_token": partial(state.tokens.verify, token),
            "resolve_tenant": partial(resolve_tenant, state, claims),
            "validate_instances": partial(validate_instances, body, tenant.n_features, tenant.max_batch),
            "runtime.models.get": lambda: state.models.get(tenant),
            "model.predict (list)": lambda: model.predict(rows),
            "json_response": partial(
                json_response, 200, {"predictions": predictions, "model_version": tenant.model_version}
            ),
        }
        stats = measure({name: Case(call, iterations) for name, call in steps.items()})
    return [Step(name, stats[name]) for name in steps]


def render_breakdown(steps: list[Step]) -> str:
    by_name = {s.name: s.stats for s in steps}
    own = [
        s
        for s in steps
        if s.name not in ("lambda_handler (whole)", "app.resolve (no decorators)", "singleton handler")
    ]
    whole = by_name["lambda_handler (whole)"]
    lines = ["Warm path, step by step (model A, batch 1, each step timed alone, p50)"]
    lines += [f"  {s.name:<30} {s.stats.p50_us:8.1f} us   cpu {s.stats.cpu_p50_us:8.1f} us" for s in steps]
    framework = whole.cpu_p50_us - sum(s.stats.cpu_p50_us for s in own)
    decorators = whole.cpu_p50_us - by_name["app.resolve (no decorators)"].cpu_p50_us
    lines.append(
        f"  => framework (whole - our steps), cpu: {framework:.1f} us; decorators alone: {decorators:.1f} us"
    )
    return "\n".join(lines)
