"""The run budget holds for runs in several threads at once: the local stack's gateway runs
requests concurrently, so a second tenant's run must never unwatch the first (on Lambda an
execution environment runs one request at a time)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import onnxruntime as ort
from model_serving.run_budget import TenantBudget, Watchdog


def _wait_until(condition: Any, seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_every_armed_run_past_its_deadline_is_terminated_not_only_the_last() -> None:
    # Given two runs armed at once (two threads' requests), both already past their deadlines
    watchdog = Watchdog(tick_seconds=0.002, idle_seconds=0.5)
    first, second = ort.RunOptions(), ort.RunOptions()
    armed_first = watchdog.arm(first, time.monotonic() - 1)
    armed_second = watchdog.arm(second, time.monotonic() - 1)
    # When the watchdog looks
    # Then both are cut off: arming the second did not unwatch the first
    assert _wait_until(lambda: armed_first.terminated and armed_second.terminated)
    assert first.terminate and second.terminate
    watchdog.disarm(armed_first)
    watchdog.disarm(armed_second)


def test_disarming_one_run_leaves_the_other_watched() -> None:
    # Given two runs, the first one ending in time (disarmed) and the second one running late
    watchdog = Watchdog(tick_seconds=0.002, idle_seconds=0.5)
    on_time, late = ort.RunOptions(), ort.RunOptions()
    armed_on_time = watchdog.arm(on_time, time.monotonic() + 60)
    armed_late = watchdog.arm(late, time.monotonic() + 0.05)
    watchdog.disarm(armed_on_time)
    # Then the late one is still cut off at its deadline, and the finished one never is
    assert _wait_until(lambda: armed_late.terminated)
    assert not on_time.terminate
    watchdog.disarm(armed_late)


def test_a_threads_tenant_budget_is_its_own() -> None:
    # Given tenant-a's budget entered in this thread
    tenant_a = SimpleNamespace(tenant_id="tenant-a", run_budget_ms=1000)
    seen: list[TenantBudget | None] = []
    with TenantBudget(tenant_a):  # type: ignore[arg-type]
        mine = TenantBudget.current()
        # When another thread asks for its current budget
        other = threading.Thread(target=lambda: seen.append(TenantBudget.current()))
        other.start()
        other.join()
    # Then it has none (it never entered one), and this thread's is tenant-a's until it leaves
    assert mine is not None and mine.tenant_id == "tenant-a"
    assert seen == [None]
    assert TenantBudget.current() is None


def test_a_run_with_an_earlier_deadline_wakes_a_sleeping_watchdog() -> None:
    # Given a watchdog asleep until a far deadline (a long tick, one run due in a minute)
    watchdog = Watchdog(tick_seconds=30, idle_seconds=60)
    patient, hurried = ort.RunOptions(), ort.RunOptions()
    armed_patient = watchdog.arm(patient, time.monotonic() + 60)
    assert _wait_until(lambda: watchdog.looks >= 1)
    # When a run due in 50 ms is armed (a tenant with a shorter budget)
    armed_hurried = watchdog.arm(hurried, time.monotonic() + 0.05)
    # Then it is cut off at its deadline, not when the watchdog would next have looked
    assert _wait_until(lambda: armed_hurried.terminated)
    assert not patient.terminate
    watchdog.disarm(armed_patient)
    watchdog.disarm(armed_hurried)


def test_runs_that_end_in_time_do_not_wake_the_watchdog() -> None:
    # Given a watchdog that has looked once at a first run
    watchdog = Watchdog(tick_seconds=30, idle_seconds=60)
    watchdog.disarm(watchdog.arm(ort.RunOptions(), time.monotonic() + 60))
    assert _wait_until(lambda: watchdog.looks >= 1)
    looks = watchdog.looks
    # When a thousand runs are armed and end well before their deadlines (after the tick)
    for _ in range(1000):
        watchdog.disarm(watchdog.arm(ort.RunOptions(), time.monotonic() + 60))
    time.sleep(0.05)
    # Then the watchdog thread never woke for them: a warm request costs no thread switch
    assert watchdog.looks == looks
