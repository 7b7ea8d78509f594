"""A token bucket kept in the index database, so that indexers on several machines that
share one service contract (IONOS counts requests per contract) stay under its rate limit
together instead of each earning 429s.

The bucket is a row of `rate_buckets`, taken with SELECT ... FOR UPDATE for each request,
and refilled by the database server's clock, which every indexer shares. It has a
connection of its own, as embedding threads draw from it while the indexer writes.
"""

from __future__ import annotations

import threading

from .connection import connect


class DatabaseBucket:
    """`rate` tokens a second, at most `capacity` saved up, shared through the database."""

    def __init__(self, url: str, name: str, rate: float, capacity: float) -> None:
        self.conn = connect(url)
        self.name = name
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds to wait for one."""
        with self._lock, self.conn.transaction():
            now = self.conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
            self.conn.execute(
                "INSERT INTO rate_buckets (name, tokens, updated_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [self.name, self.capacity, now],
            )
            tokens, updated_at = self.conn.execute(
                "SELECT tokens, updated_at FROM rate_buckets WHERE name = %s FOR UPDATE", [self.name]
            ).fetchone()
            if now < updated_at:  # paused (a 429 said wait): nothing accrues until then
                return updated_at - now
            tokens = min(self.capacity, tokens + (now - updated_at) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self.conn.execute("UPDATE rate_buckets SET tokens = %s, updated_at = %s WHERE name = %s", [tokens, now, self.name])
            return wait

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until a token is taken; False instead if `stop` is set meanwhile."""
        from ...embedding.remote.ratelimit import acquire_with

        return acquire_with(self.try_acquire, stop)

    def pause(self, seconds: float) -> None:
        """Hand out nothing for `seconds`, for every indexer, and start empty afterwards."""
        with self._lock, self.conn.transaction():
            self.conn.execute(
                "UPDATE rate_buckets SET tokens = 0,"
                " updated_at = greatest(updated_at, extract(epoch FROM clock_timestamp())::float8 + %s) WHERE name = %s",
                [seconds, self.name],
            )

    def configure(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = float(rate), float(capacity)
