"""Timing loops, percentiles, and the two things every loop must control: stdout and AWS calls.

- Powertools' Metrics prints an EMF line and Logger writes JSON to stdout on every call. On Lambda
  that write is cheap (a pipe to the runtime); on a terminal it is not. Every handler, ours and
  the peers alike, runs with stdout sent to /dev/null, at the file-descriptor level too, since
  Logger's handler holds the original `sys.stdout`.
- A warm call must not reach AWS. Every botocore API call in the timed loop is counted, so the
  table shows it rather than asserting it.
- Cases are interleaved in rounds, so a burst of noise on this shared 2-core machine lands on
  every case alike and ratios stay meaningful even when absolute times drift.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient


@dataclass(frozen=True)
class Stats:
    """Latency of one case, in microseconds: wall clock, and this thread's CPU time (which a
    neighbour process taking the CPU does not inflate, so a wall p99 far above the CPU p99 is the
    machine, not the code)."""

    n: int
    p50_us: float
    p99_us: float
    mean_us: float
    min_us: float
    cpu_p50_us: float
    cpu_p99_us: float
    aws_calls: int = 0


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_ns)))
    return float(sorted_ns[rank - 1])


def summarize(wall_ns: list[int], cpu_ns: list[int], aws_calls: int = 0) -> Stats:
    ordered, cpu = sorted(wall_ns), sorted(cpu_ns)
    return Stats(
        n=len(ordered),
        p50_us=percentile(ordered, 50) / 1e3,
        p99_us=percentile(ordered, 99) / 1e3,
        mean_us=sum(ordered) / len(ordered) / 1e3,
        min_us=ordered[0] / 1e3,
        cpu_p50_us=percentile(cpu, 50) / 1e3,
        cpu_p99_us=percentile(cpu, 99) / 1e3,
        aws_calls=aws_calls,
    )


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """stdout to /dev/null for both `print` and handlers that kept a reference to the old stream."""
    sys.stdout.flush()
    saved_fd = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            with contextlib.redirect_stdout(devnull):
                yield
        finally:
            for stream in (sys.stdout, sys.__stdout__):
                if stream is not None:
                    stream.flush()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


@contextlib.contextmanager
def count_aws_calls() -> Iterator[list[str]]:
    """Every botocore API call made inside the block, by operation name, whatever the client."""
    calls: list[str] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: BaseClient, operation_name: str, api_params: Any) -> Any:
        calls.append(operation_name)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Case:
    call: Callable[[], object]
    iterations: int
    warmup: int = 20


def measure(cases: Mapping[str, Case]) -> dict[str, Stats]:
    """Time each case's `call`, round-robin: one call of each case per round (a case with fewer
    iterations is spread evenly over the rounds), so seconds-long bursts of load from other
    processes land on every case alike. The order within a round is shuffled (a fixed seed):
    in a fixed order each case always follows the same one, and a case that follows its own kind
    of work finds its code and data hot in the CPU's caches (the singleton always ran right after
    bare's identical scikit-learn predict).

    gc stays enabled and is never forced, as on Lambda. stdout is silenced and AWS calls are
    counted for all cases.
    """
    wall: dict[str, list[int]] = {name: [] for name in cases}
    cpu: dict[str, list[int]] = {name: [] for name in cases}
    calls: dict[str, int] = dict.fromkeys(cases, 0)
    rounds = max(case.iterations for case in cases.values())
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    with quiet_stdout(), count_aws_calls() as aws_calls:
        for case in cases.values():
            for _ in range(case.warmup):
                case.call()
        aws_calls.clear()
        order = list(cases.items())
        shuffler = random.Random(20261206)
        for round_index in range(rounds):
            shuffler.shuffle(order)
            for name, case in order:
                due = case.iterations * (round_index + 1) // rounds - case.iterations * round_index // rounds
                if not due:
                    continue
                before = len(aws_calls)
                call = case.call
                for _ in range(due):
                    cpu_started = cpu_clock()
                    started = clock()
                    call()
                    ended = clock()
                    cpu_ended = cpu_clock()
                    wall[name].append(ended - started)
                    cpu[name].append(cpu_ended - cpu_started)
                calls[name] += len(aws_calls) - before
    return {name: summarize(wall[name], cpu[name], calls[name]) for name in cases}
