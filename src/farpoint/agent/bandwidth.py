"""The optional download bandwidth limit: a token bucket the download loop pays into."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket", "read_size"]

_MIN_READ = 1024
_MAX_READ = 1 << 16


def read_size(bytes_per_s: float | None) -> int:
    """How much to read at a time: small enough that a slow limit is paced smoothly."""
    if bytes_per_s is None:
        return _MAX_READ
    return int(min(_MAX_READ, max(_MIN_READ, bytes_per_s / 16)))


class TokenBucket:
    """At most `rate` bytes per second on average, with bursts of up to `burst` bytes.

    `take(n)` returns at once while the bucket holds `n` tokens, else sleeps until the
    debt is paid; tokens accrue at `rate` per second up to `burst`. The clock and the
    sleep are injectable (tests drive them without waiting).
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"a bandwidth limit must be positive, got {rate!r}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else float(read_size(rate))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def take(self, n: int) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:
            # the time slept refills the debt at the next take (it counts from _last)
            self._sleep(-self._tokens / self.rate)
