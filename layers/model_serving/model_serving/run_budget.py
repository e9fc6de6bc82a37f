"""The run budget: every run of a tenant's graph is cut off at the tenant's time budget.

ONNX Runtime checks a run's `RunOptions.terminate` between the kernels it executes and then
fails the run; this container's one `Watchdog` thread sets the flag of a run that is past its
deadline. A run that ends in time costs a set insert and removal and no thread wake-up: the
watchdog sleeps until the earliest deadline it knows of, and once runs stop it sleeps until one
comes.

Measured 2026-12-06 on this machine (2 vCPUs shared with other work, load ~5; the iris
LogisticRegression, batch 1, five interleaved rounds of 5 000 runs, `scripts/measure_run_budget.py`):
`session.run` alone p50 7.9 us (p99 13.5); with a `threading.Timer` started and cancelled around
each run (a thread per request) p50 136 us (p99 3.9 ms); with the watchdog p50 7.9 us (p99 24).
The budget's own bookkeeping per request (`TenantBudget`, a `RunOptions`, arm and disarm) is
about 2.5 us there (best of repeated timeit runs: 1.0 + 0.65 + 0.8). Predict's whole warm
request is about 230 us: a thread per request would add half of it.

A run past its budget is `ModelRunBudgetExceeded` (503); ONNX Runtime failing on the tenant's
graph (an allocation it refuses, a kernel error) is `ModelRunFailed` (502): the tenant's model
failed, not the service. Both are counted per tenant (`tenant_metrics`), and the session stays
usable: the next request is served.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import onnxruntime as ort
from aws_lambda_powertools import Logger
from model_runtime.errors import ModelRunBudgetExceeded, ModelRunFailed
from model_runtime.table import Tenant
from model_runtime.tenant_metrics import tenant_metrics

logger = Logger(child=True)


class _Run:
    """One armed run: its options, its deadline on the monotonic clock, and whether it was cut."""

    __slots__ = ("deadline", "options", "terminated")

    def __init__(self, options: ort.RunOptions, deadline: float) -> None:
        self.options = options
        self.deadline = deadline
        self.terminated = False


class Watchdog:
    """One daemon thread that terminates armed runs at their deadline.

    The thread sleeps until the earliest deadline of the runs armed when it last looked (at most
    `tick_seconds` ahead): a run that ends in time never wakes it, so while runs keep coming it
    wakes about once a tick, not once a request. `arm` wakes it early only for a run whose
    deadline comes before the thread's next wake-up: a budget under the tick (50 ms; the
    default budget is 1 s) costs a wake-up per run. After `idle_seconds` without a run it waits
    without a timeout, so an idle container (and a frozen Lambda environment) costs nothing.
    """

    def __init__(self, tick_seconds: float = 0.05, idle_seconds: float = 1.0) -> None:
        self._tick = tick_seconds
        self._idle = idle_seconds
        # On Lambda one run at a time; the local stack's gateway runs requests in threads.
        self._armed: set[_Run] = set()
        self._last_armed = 0.0
        # When the thread looks next; infinity while it is looking, or not running at all.
        self._next_look = float("inf")
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.looks = 0  # how often the thread has looked at the armed runs (for tests)

    def arm(self, options: ort.RunOptions, deadline: float) -> _Run:
        """Watch the run of `options` until `disarm`; `deadline` is on `time.monotonic`'s clock."""
        run = _Run(options, deadline)
        self._armed.add(run)
        self._last_armed = time.monotonic()
        # The run is in `_armed` before `_next_look` is read; the thread sets `_next_look` to
        # infinity before it copies `_armed`. So either it sees this run, or this wakes it.
        if deadline < self._next_look:
            self._wake()
        return run

    def disarm(self, run: _Run) -> None:
        self._armed.discard(run)

    def _wake(self) -> None:
        with self._changed:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="run-budget", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while True:
                self._next_look = float("inf")
                self.looks += 1
                now = time.monotonic()
                next_look = now + self._tick
                for run in list(self._armed):
                    if run.terminated:
                        continue
                    if now >= run.deadline:
                        run.terminated = True
                        run.options.terminate = True
                    else:
                        next_look = min(next_look, run.deadline)
                if not self._armed and now - self._last_armed > self._idle:
                    self._changed.wait()  # `_next_look` stays infinite: the next `arm` wakes us
                    continue
                self._next_look = next_look
                self._changed.wait(next_look - now)


watchdog = Watchdog()


class TenantBudget:
    """`with TenantBudget(tenant):` runs of ONNX graphs inside (`run_session`) share the tenant's
    run budget, from the time the block starts. Outside such a block (registration, tests) a run
    is not cut off, except by `probe_within`."""

    __slots__ = ("budget_ms", "deadline", "tenant_id")
    # Per thread: on Lambda one request at a time, but the local gateway runs requests in threads.
    _local: ClassVar[threading.local] = threading.local()

    def __init__(self, tenant: Tenant) -> None:
        self.tenant_id = tenant.tenant_id
        self.budget_ms = tenant.run_budget_ms
        self.deadline = time.monotonic() + tenant.run_budget_ms / 1000

    def __enter__(self) -> None:
        TenantBudget._local.current = self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        TenantBudget._local.current = None

    @staticmethod
    def current() -> TenantBudget | None:
        return getattr(TenantBudget._local, "current", None)


def run_session(session: ort.InferenceSession, outputs: list[str], feeds: dict[str, Any]) -> Any:
    """`session.run(outputs, feeds)`, cut off at the current tenant's budget (`TenantBudget`)."""
    budget = TenantBudget.current()
    if budget is None:
        return session.run(outputs, feeds)
    options = ort.RunOptions()
    armed = watchdog.arm(options, budget.deadline)
    try:
        return session.run(outputs, feeds, options)
    except Exception as error:
        if armed.terminated:
            _count(budget, "ModelRunBudgetExceeded", "model run cut off at the tenant's run budget")
            raise ModelRunBudgetExceeded() from None
        _count(
            budget,
            "ModelRunFailed",
            f"ONNX Runtime failed running the tenant's model: {type(error).__name__}",
        )
        raise ModelRunFailed() from None
    finally:
        watchdog.disarm(armed)


def _count(budget: TenantBudget, metric: str, message: str) -> None:
    logger.warning(message, extra={"tenant_id": budget.tenant_id, "budget_ms": budget.budget_ms})
    tenant_metrics.event(metric)


def probe_within(session: ort.InferenceSession, feeds: dict[str, Any], budget_ms: int) -> bool:
    """Whether one run of `session` on `feeds` ends within `budget_ms` (registration's probe).
    An error of the run itself is raised as ONNX Runtime raised it."""
    options = ort.RunOptions()
    armed = watchdog.arm(options, time.monotonic() + budget_ms / 1000)
    try:
        session.run(None, feeds, options)
    except Exception:
        if armed.terminated:
            return False
        raise
    finally:
        watchdog.disarm(armed)
    return True
