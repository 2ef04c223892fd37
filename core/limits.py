"""Rate limits for a shared server: at most so many events per time window for each key (a visitor's
session, or a client address on the REST route)."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimiter:
    """A sliding window: `allow(key)` is True while `key` had fewer than `count` events in the last
    `seconds`, and then counts this one. `count=None` allows everything. At most `max_keys` keys are
    remembered (the least recently seen go first), so a flood of new keys cannot grow memory."""

    def __init__(self, count: int | None, seconds: float, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.count, self.seconds, self.max_keys, self._clock = count, seconds, max_keys, clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        self._events.move_to_end(key)
        while events and events[0] <= now - self.seconds:
            events.popleft()
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)
        return events

    def allow(self, key: str, events: int = 1) -> bool:
        """Whether `key` may act `events` times now (all or none), counting them if so."""
        if self.count is None:
            return True
        with self._lock:
            now = self._clock()
            recent = self._recent(key, now)
            if len(recent) + events > self.count:
                return False
            recent.extend([now] * events)
            return True

    def retry_after(self, key: str, events: int = 1) -> float:
        """Seconds until `key` may act `events` times (0 when it may now; never more than `count`)."""
        if self.count is None:
            return 0.0
        if events > self.count:
            raise ValueError(f"{events} events can never fit a limit of {self.count}")
        with self._lock:
            now = self._clock()
            recent = self._recent(key, now)
            excess = len(recent) + events - self.count
            return 0.0 if excess <= 0 else max(0.0, recent[excess - 1] + self.seconds - now)
