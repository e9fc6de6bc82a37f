"""A small read-through cache whose entries live a fixed number of seconds."""

from __future__ import annotations

import time
from collections.abc import Callable


class TtlCache[T]:
    """Entries live `ttl` seconds. Negative results are cached too, so an unknown tenant cannot
    make every request reach DynamoDB."""

    def __init__(self, load: Callable[[str], T], ttl: float, max_entries: int = 4096) -> None:
        self._load = load
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, T]] = {}

    def get(self, key: str) -> T:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = self._load(key)
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (now + self._ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
