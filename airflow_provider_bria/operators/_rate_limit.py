"""A thread-safe client-side rate limiter for Bria's per-minute request plans.

Bria sells request rates per minute (Free trial 10, Starter 60, Enterprise 100+) and answers 429 when a plan's
rate is exceeded. The generation operators count **generation submissions** (the billable ``POST`` calls)
against ``requests_per_minute``; status polls and result downloads are paced by ``poll_interval`` instead
(see ``docs/generation.md``).

The limiter spaces calls evenly, one every ``60 / requests_per_minute`` seconds plus a 1 % safety margin
(:data:`SAFETY_MARGIN`), and never bursts: in any rolling 60-second window, even a closed one measured by the
server with a few milliseconds of network jitter, at most ``requests_per_minute`` calls start. Without the
margin, calls exactly one interval apart put ``requests_per_minute + 1`` of them into a closed window.
Slots are reserved under a lock and the wait happens outside it, so many
threads share one limiter fairly (first come, first served) without holding the lock while sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from airflow_provider_bria.exceptions import BriaInputError

#: Fraction added to the interval so server-side windows never see one call too many (costs 1 % of the rate).
SAFETY_MARGIN = 0.01


class RateLimiter:
    """Space calls at least ``60 / requests_per_minute`` seconds (plus :data:`SAFETY_MARGIN`) apart (thread-safe).

    :param requests_per_minute: the allowed rate; ``None`` disables limiting.
    :param clock: monotonic clock (tests may inject one).
    :param sleep: sleep function (tests may inject one).
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.requests_per_minute = validate_requests_per_minute(requests_per_minute)
        rpm = self.requests_per_minute
        self.interval = 60.0 / rpm * (1.0 + SAFETY_MARGIN) if rpm else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: float | None = None
        self.acquired = 0
        self.waited_seconds = 0.0

    def reserve(self) -> float:
        """Reserve the next slot and return how many seconds the caller must wait for it (no sleeping)."""
        with self._lock:
            self.acquired += 1
            if not self.interval:
                return 0.0
            now = self._clock()
            slot = now if self._next_free is None or self._next_free <= now else self._next_free
            self._next_free = slot + self.interval
            wait = slot - now
            self.waited_seconds += wait
            return wait

    def acquire(self, cancelled: threading.Event | None = None) -> bool:
        """Block until the caller may make one call.

        :param cancelled: when given and set while waiting, stop waiting early.
        :returns: ``False`` if ``cancelled`` was set (the caller should not make the call), else ``True``.
        """
        wait = self.reserve()
        if wait > 0:
            if cancelled is not None:
                if cancelled.wait(wait):
                    return False
            else:
                self._sleep(wait)
        return not (cancelled is not None and cancelled.is_set())


def validate_requests_per_minute(value: float | None) -> float | None:
    """Check ``requests_per_minute``: ``None`` (no limit) or a positive finite number.

    :param value: the configured rate.
    :raises BriaInputError: when the value is not a positive number.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise BriaInputError(f"requests_per_minute must be a positive number or None, got {value!r}")
    return float(value)
