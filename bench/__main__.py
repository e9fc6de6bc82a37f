"""`python -m bench [--quick] [--rebuild] [--profile]`: one run, one table, JSON + PNG in bench/results/.

This machine is shared and noisy: compare ratios within one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import REPO_ROOT, RESULTS_DIR
from bench.report import Results, render, write_chart, write_json, write_tenancy_chart


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _meta(mode: str) -> dict[str, Any]:
    from importlib.metadata import version  # noqa: PLC0415

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": mode,
        "commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "uncommitted_files": len(
            subprocess.run(
                ["git", "status", "--porcelain"], check=False, cwd=REPO_ROOT, capture_output=True, text=True
            ).stdout.splitlines()
        ),
        "versions": {
            p: version(p) for p in ("scikit-learn", "numpy", "aws-lambda-powertools", "moto", "boto3")
        },
    }


NOTES = """Notes: AWS is moto in-process (mock_aws), so a cache miss costs moto's latency, not AWS's; warm
loops count every botocore call (must be 0 for ours). stdout goes to /dev/null during every timed
call of every handler (Powertools prints EMF metrics and logs there). X-Ray tracing disabled (no
daemon). gc enabled. Times: perf_counter_ns; ratios are within this run."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations; no sam build, no cold starts")
    parser.add_argument(
        "--rebuild", action="store_true", help="run `make build` even if .aws-sam/build is fresh"
    )
    parser.add_argument(
        "--profile", action="store_true", help="only profile 5000 warm batch-1 calls (model A)"
    )
    args = parser.parse_args(argv)

    from bench import cold, memory, package, tenancy, warm  # noqa: PLC0415

    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    if args.profile:
        _progress("profiling 5000 warm batch-1 calls of ours (model A)")
        text = warm.profile_warm(5000) + "\n" + warm.render_breakdown(warm.breakdown_warm()) + "\n"
        path = RESULTS_DIR / f"profile-{stamp}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(text)
        print(f"written: {path.relative_to(REPO_ROOT)}")
        return 0

    results = Results(_meta("quick" if args.quick else "full"))
    plan = warm.QUICK if args.quick else warm.FULL
    if not args.quick:  # first, so the build's CPU does not overlap any timing
        _progress("package size (make build, reused when fresh)")
        results.package = package.run_package(rebuild=args.rebuild)
    _progress("warm predict: bare / singleton / load-per-request / ours")
    results.warm = warm.run_warm(plan)
    _progress("rejection cost")
    results.rejections = warm.run_rejections(plan)
    if not args.quick:
        _progress("cold starts (fresh processes, 7 rounds + 1 warm-up)")
        results.cold = cold.run_cold(repeats=7)
    if results.cold is not None:
        _progress("tenant isolation at scale: cache miss measured, then simulated")
        results.tenancy = tenancy.run_tenancy(tenancy.inputs_from(results.warm, results.cold))
    _progress("memory: 50 tenants through a 10-model cache")
    results.memory = memory.run_memory()
    results.meta["load_average_end"] = os.getloadavg()
    results.meta["seconds"] = round(time.perf_counter() - started, 1)

    print(render(results))
    print()
    print(NOTES)
    meta = results.meta
    load = (meta["load_average_start"][0], meta["load_average_end"][0])
    print(f"load average {load[0]:.1f} -> {load[1]:.1f} on {meta['cpus']} CPUs; {meta['seconds']} s")
    json_path = RESULTS_DIR / f"bench-{stamp}.json"
    write_json(results, json_path)
    png_path = RESULTS_DIR / f"bench-{stamp}.png"
    charted = write_chart(results, png_path)
    print(f"written: {json_path.relative_to(REPO_ROOT)}", end="")
    print(f", {png_path.relative_to(REPO_ROOT)}" if charted else " (no chart: pip install matplotlib)")
    if results.tenancy is not None:
        tenancy_png = RESULTS_DIR / f"tenancy-{stamp}.png"
        if write_tenancy_chart(results.tenancy, tenancy_png):
            print(f"written: {tenancy_png.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
