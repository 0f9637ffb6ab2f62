"""Several upstreams for one provider: pick the healthy one with the fewest requests in flight.

An upstream that fails a request before its first byte or a health check cools down (is taken
out) and is put back by the next passing health check or when its cooldown ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Upstream:
    url: str
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    healthy: bool = True
    down_until: float = 0.0
    latency_sum: float = 0.0  # seconds to the first byte, over successful requests
    latency_count: int = 0
    last_error: str | None = None  # why it last failed (key already redacted by the caller)

    def usable(self, now: float) -> bool:
        return self.healthy and now >= self.down_until

    def fail(self, cooldown: float, why: str | None = None) -> None:
        self.failures += 1
        self.last_error = why or self.last_error
        self.healthy = False
        self.down_until = time.monotonic() + cooldown

    def ok(self, first_byte: float | None = None) -> None:
        self.healthy = True
        self.down_until = 0.0
        if first_byte is not None:
            self.latency_sum += first_byte
            self.latency_count += 1

    def describe(self) -> dict:
        return {"url": self.url, "healthy": self.usable(time.monotonic()),
                "in_flight": self.in_flight, "requests": self.requests,
                "failures": self.failures, "last_error": self.last_error,
                "mean_first_byte_ms": round(1000 * self.latency_sum / self.latency_count, 2)
                if self.latency_count else None}


class Fleet:
    def __init__(self, urls: list[str]) -> None:
        self.upstreams = [Upstream(u) for u in urls]

    def pick(self, tried: set[str]) -> Upstream | None:
        """Least in flight among the usable ones not yet tried; when none is usable, the
        untried one whose cooldown ends first (better a try than a certain failure)."""
        now = time.monotonic()
        fresh = [u for u in self.upstreams if u.url not in tried]
        usable = [u for u in fresh if u.usable(now)]
        if usable:
            return min(usable, key=lambda u: (u.in_flight, u.requests))
        return min(fresh, key=lambda u: u.down_until, default=None)
