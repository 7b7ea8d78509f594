"""Client-side pacing: a token bucket shared by everything talking to one endpoint.

IONOS limits requests per contract across all endpoints (5/s, bursts of 10). Several
embedders and threads in one process must therefore draw from one bucket per endpoint,
or together they would exceed the contract and collect 429s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second, at most `capacity` saved up; one token per request."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self._lock = threading.Lock()
        self._clock = clock
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._tokens = float(capacity)
        self._last = clock()
        self._paused_until = 0.0

    def configure(self, rate: float, capacity: float) -> None:
        """Change the rate and capacity; tokens already saved are kept up to the new capacity."""
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        with self._lock:
            self._refill(self._clock())
            self.rate = float(rate)
            self.capacity = float(capacity)
            self._tokens = min(self._tokens, self.capacity)

    def _refill(self, now: float) -> None:
        # Nothing accrues during a pause: when it ends the server's own bucket may be
        # just as empty, so a saved-up burst would only earn another 429.
        start = max(self._last, self._paused_until)
        if now > start:
            self._tokens = min(self.capacity, self._tokens + (now - start) * self.rate)
        self._last = max(self._last, now)

    def try_acquire(self) -> float:
        """Take a token if one is available and return 0, else return the seconds to wait."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if now < self._paused_until:
                return self._paused_until - now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until a token is taken; return False instead if `stop` is set meanwhile."""
        return acquire_with(self.try_acquire, stop)

    def pause(self, seconds: float) -> None:
        """Hand out nothing for `seconds` and start empty afterwards (the server said wait)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens = 0.0
            self._paused_until = max(self._paused_until, now + seconds)


_registry_lock = threading.Lock()
_buckets: dict[str, TokenBucket] = {}


def shared_bucket(key: str, rate: float, capacity: float) -> TokenBucket:
    """The process-wide bucket for `key` (an endpoint URL), created or set to these limits.

    The most recent limits win: they describe the same contract, and a changed `--rps`
    should take effect rather than be ignored.
    """
    with _registry_lock:
        bucket = _buckets.get(key)
        if bucket is None:
            bucket = _buckets[key] = TokenBucket(rate, capacity)
            return bucket
    bucket.configure(rate, capacity)
    return bucket


def forget_shared_buckets() -> None:
    """Drop every shared bucket (for tests that reuse an endpoint URL with new limits)."""
    with _registry_lock:
        _buckets.clear()


def acquire_with(try_acquire: Callable[[], float], stop: threading.Event | None = None) -> bool:
    """Block until `try_acquire` (0: a token taken, else the seconds to wait) takes a token;
    False instead if `stop` is set meanwhile. Any bucket's `acquire`, in this process or
    shared through a database."""
    while True:
        if stop is not None and stop.is_set():
            return False
        wait = try_acquire()
        if wait <= 0:
            return True
        if stop is not None:
            if stop.wait(wait):
                return False
        else:
            time.sleep(wait)
