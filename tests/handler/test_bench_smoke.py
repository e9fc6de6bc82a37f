"""Smoke test of the benchmark (`make bench`): its core functions run, with tiny iteration counts,
and produce every figure. No timing is asserted: speed belongs to the benchmark's own report."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from model_serving.models import ModelCache

from bench import memory, report, warm
from bench.timing import Stats

TINY = warm.Plan(
    iterations={1: 3, 100: 2},
    load_per_request_iterations={1: 2, 100: 1},
    rejection_iterations=2,
    warmup=1,
    models=("A", "B", "R"),
    batches=(1, 100),
)


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """The benchmark configures os.environ as a Lambda container would; other tests must not see it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def warm_rows() -> Iterator[list[warm.WarmRow]]:
    """One tiny warm comparison, shared by the tests that read it (it is the slow part). Module
    scope runs before conftest's per-test socket guard, so it installs its own."""

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("network access in a unit test")

    saved = dict(os.environ)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        rows = warm.run_warm(TINY)
    os.environ.clear()
    os.environ.update(saved)
    yield rows


def _positive(stats: Stats) -> bool:
    figures = (stats.p50_us, stats.p99_us, stats.mean_us, stats.min_us, stats.cpu_p50_us, stats.cpu_p99_us)
    return all(math.isfinite(f) and f > 0 for f in figures)


def test_warm_comparison_measures_every_handler_and_counts_aws_calls(warm_rows: list[warm.WarmRow]) -> None:
    # Given a tiny plan over both demo models, the bench's regression model and two batch sizes
    # When the warm comparison runs
    rows = warm_rows
    # Then every (model, batch, handler) has positive figures and a ratio to the singleton
    assert {(r.model, r.batch, r.handler) for r in rows} == {
        (m, b, h) for m in ("A", "B", "R") for b in (1, 100) for h in warm.HANDLERS
    } | {(m, 1, warm.UNSEEN_TOKEN) for m in ("A", "B", "R")}
    for row in rows:
        assert (
            row.stats.n
            == (TINY.load_per_request_iterations if row.handler == "load_per_request" else TINY.iterations)[
                row.batch
            ]
        )
        assert _positive(row.stats), row
        assert row.p50_vs_singleton > 0 and row.p99_vs_singleton > 0
        # And the AWS call counter works: load-per-request fetches once per call; warm ours never does
        if row.handler == "load_per_request":
            assert row.stats.aws_calls == row.stats.n
        if row.handler == "ours":
            assert row.stats.aws_calls == 0


def test_rejections_get_their_status_and_a_ratio_to_the_small_rejection() -> None:
    # Given the real handler, a valid token and each kind of bad body
    # When the rejection costs are measured (run_rejections asserts each expected status)
    rows = warm.run_rejections(TINY)
    # Then every case has positive figures, the 413 is the oversized body, and the baseline's ratio is 1
    assert {r.case for r in rows} >= {
        warm.BASELINE_REJECTION,
        "too_large",
        "too_many_rows",
        "wrong_shape_1row",
    }
    statuses = {r.case: r.status for r in rows}
    assert statuses["too_large"] == 413
    assert all(status == 400 for case, status in statuses.items() if case != "too_large")
    for row in rows:
        assert _positive(row.stats), row
        assert row.stats.aws_calls == 0
    baseline = next(r for r in rows if r.case == warm.BASELINE_REJECTION)
    assert baseline.p50_vs_baseline == 1.0


def test_memory_cycles_more_tenants_than_the_cache_holds() -> None:
    # Given 3 tenants with small forests and a cache bound of 2 models
    # When they are cycled through the real handler in a fresh process
    result = memory.run_memory(tenants=3, model_bytes=150_000, cache_models=2)
    # Then the figures exist and the cache stayed within its bound of models
    assert result.requests == 6
    assert 0 < result.cached_models <= 2
    assert result.bound_bytes == 2 * result.model_bytes * ModelCache.MEMORY_PER_FILE_BYTE
    assert result.baseline_bytes > 0 and result.peak_bytes > 0 and result.final_bytes > 0


def test_profile_breakdown_and_report_render(warm_rows: list[warm.WarmRow]) -> None:
    # Given a few profiled warm calls, a step-by-step breakdown, and results without the slow sections
    text = warm.profile_warm(calls=3, top=40)  # ties at this resolution: a long list
    steps = warm.breakdown_warm(iterations=3)
    results = report.Results(meta={"mode": "smoke"}, warm=warm_rows)
    # When they are rendered
    rendered = report.render(results)
    breakdown = warm.render_breakdown(steps)
    # Then the profile names the predict route, every step has figures, and the report has table and
    # targets. (Python 3.12's cProfile does not always list the decorated `lambda_handler` frame.)
    assert "app.py" in text and "(predict)" in text
    assert all(_positive(step.stats) for step in steps)
    assert "verify_token" in breakdown and "framework" in breakdown
    assert "Warm predict" in rendered and "Targets" in rendered
    assert any(t.name.startswith("warm batch 1, model A") for t in report.targets(results))
