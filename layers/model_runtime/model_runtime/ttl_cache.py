"""A small read-through cache whose entries live a fixed number of seconds, and outlive an outage.

Static stability (docs/static-stability.md, decision record 0008): when a refresh fails with a
dependency error (`deadlines.DEPENDENCY_ERRORS`: throttling, 5xx, timeouts, refused connections),
a value read successfully before stays usable for `grace` seconds past its TTL. A refresh that
*succeeds* replaces the value at once, whatever it says (disabled, revoked, gone): grace stands in
for a missing answer, never for an answer. With `grace` 0 nothing stale is ever used.

After a failed refresh the key is not tried again before a jittered, capped backoff has passed,
and while one refresh of a key is under way no other request starts another: in between, requests
get the last known good value or, without one, `RefreshBackoff` (a 503) at once. So an outage
costs one call per key per backoff, not one per request.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from model_runtime.deadlines import DEPENDENCY_ERRORS, describe_failure

logger = Logger(child=True)
metrics = Metrics()

BACKOFF_BASE_SECONDS: Final = 1.0
BACKOFF_CAP_SECONDS: Final = 5.0
WARNING_INTERVAL_SECONDS: Final = 60.0


class RefreshBackoff(BotoCoreError):
    """A recent refresh of this key failed, and there is no usable value: not tried again yet."""

    fmt = "A recent refresh failed; it is not retried yet."


def backoff_seconds(failed_refreshes: int) -> float:
    """Capped exponential backoff with "equal jitter": never near zero, never in lockstep."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failed_refreshes - 1))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter, not a secret


class _Entry[T]:
    __slots__ = ("error", "failed_refreshes", "fresh_until", "retry_at", "usable_until", "value", "warned_at")

    def __init__(self, value: T, fresh_until: float, usable_until: float) -> None:
        self.value = value
        self.fresh_until = fresh_until  # fresh until then (-inf: no value, only a failure)
        self.usable_until = usable_until  # last known good until then
        self.failed_refreshes = 0  # consecutive failed refreshes
        self.retry_at = -math.inf
        self.error = ""
        self.warned_at = -math.inf


class TtlCache[T]:
    """Entries live `ttl` seconds, and `grace` seconds more while refreshing them fails. Negative
    results are cached too, so an unknown tenant cannot make every request reach DynamoDB.
    `name` names the cache in the operator's log."""

    def __init__(
        self,
        load: Callable[[str], T],
        ttl: float,
        max_entries: int = 4096,
        *,
        grace: float = 0.0,
        name: str = "cache",
        fallback_scope: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._grace = grace
        self._max_entries = max_entries
        self.name = name
        self._fallback_scope = fallback_scope
        self._entries: dict[str, _Entry[T]] = {}
        self._loading: set[str] = set()

    def get(self, key: str) -> T:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > now:
            return entry.value
        return self._refresh(key, entry, now)

    def _refresh(self, key: str, entry: _Entry[T] | None, now: float) -> T:
        stale = entry is not None and entry.usable_until > now  # a last known good value
        # Backing off after a failure, or (with a value to give) another request is refreshing.
        if entry is not None and (entry.retry_at > now or (stale and key in self._loading)):
            if stale:
                return self._last_known_good(key, entry, now)
            raise RefreshBackoff()
        self._loading.add(key)
        try:
            with self._fallback_scope() if stale else nullcontext():
                value = self._load(key)
        except DEPENDENCY_ERRORS as error:
            failed_at = time.monotonic()  # the backoff starts when the (retried) load gave up
            failed = self._remember_failure(key, entry, failed_at, error)
            if failed.usable_until > failed_at:
                return self._last_known_good(key, failed, failed_at)
            raise
        finally:
            self._loading.discard(key)
        if len(self._entries) >= self._max_entries and key not in self._entries:
            self._entries.clear()
        fresh_until = now + self._ttl
        self._entries[key] = _Entry(value, fresh_until, fresh_until + self._grace)
        return value

    def _remember_failure(
        self, key: str, entry: _Entry[T] | None, now: float, error: BotoCoreError | ClientError
    ) -> _Entry[T]:
        if entry is None:
            entry = _Entry(None, -math.inf, -math.inf)  # type: ignore[arg-type] # no value, ever
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = entry
        entry.failed_refreshes += 1
        entry.retry_at = now + backoff_seconds(entry.failed_refreshes)
        entry.error = describe_failure(error)["aws_error"]
        return entry

    def _last_known_good(self, key: str, entry: _Entry[T], now: float) -> T:
        metrics.add_metric(name="StaleServed", unit=MetricUnit.Count, value=1)
        if now - entry.warned_at >= WARNING_INTERVAL_SECONDS:
            entry.warned_at = now
            logger.warning(
                "serving last known good",
                extra={
                    "cache": self.name,
                    "key": key,
                    "aws_error": entry.error,
                    "stale_seconds": round(now - entry.fresh_until, 1),
                },
            )
        return entry.value

    def clear(self) -> None:
        self._entries.clear()
