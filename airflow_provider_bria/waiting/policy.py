"""One poll policy for every wait of the provider, and the state both drivers (sync, async) step through.

A wait is: poll (at once, or after a first interval), stop when the answer is final, tolerate a bounded number
of *retryable* poll errors in a row (the taxonomy's transient and ambiguous errors: a poll is a read), end at the
earliest absolute deadline, and sleep ``interval`` between polls, never past a deadline. The first wait after an
immediate first poll can be jittered (a random fraction of the interval) so that waits started together (a
triggerer restart, a backfill) do not poll in lock-step forever.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bria.exceptions import BriaError, BriaInputError, is_retryable_read

#: Retryable poll errors tolerated in a row by the waits that have no knob of their own (captions regeneration).
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
#: The triggers' first wait after their immediate first poll: ``interval`` times a random factor in this range.
TRIGGER_FIRST_WAIT_JITTER: tuple[float, float] = (0.5, 1.0)
#: No jitter: every wait is the plain interval.
NO_JITTER: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class Deadline:
    """An absolute deadline of a wait.

    :param at: the time, in the driver's clock (epoch seconds for triggers, so a restart keeps it).
    :param reason: what reaching it means (``"timeout"``, ``"execution_timeout"``...).
    """

    at: float
    reason: str = "timeout"


class PollTimeout(BriaError):
    """A wait reached a deadline before its answer was final.

    :param deadline: the deadline that passed (the earliest one, when several have).
    :param last: the last successful poll's value (``None`` if none succeeded).
    :param late: seconds between the deadline and the moment it was noticed.
    """

    def __init__(self, deadline: Deadline, last: Any, late: float) -> None:
        self.deadline = deadline
        self.last = last
        self.late = late
        super().__init__(f"the wait's {deadline.reason} deadline passed ({late:.1f} s ago)")


class PollFailed(BriaError):
    """More retryable poll errors in a row than the policy tolerates.

    :param failures: the failed polls in a row, the last one included.
    :param error: the last error.
    :param last: the last successful poll's value (``None`` if none succeeded).
    """

    def __init__(self, failures: int, error: BaseException, last: Any) -> None:
        self.failures = failures
        self.error = error
        self.last = last
        super().__init__(f"polling failed {failures} times in a row; last error: {error}")


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise BriaInputError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PollPolicy:
    """How a wait polls: interval, first-wait jitter, absolute deadlines, tolerated errors.

    :param interval: seconds between two polls (> 0).
    :param deadlines: absolute deadlines (at least one: every wait is bounded); the earliest passed one ends it.
    :param max_consecutive_failures: retryable poll errors tolerated in a row; the next one ends the wait with
        :class:`PollFailed`. ``None``: no count (the deadline alone bounds the wait).
    :param first_wait_jitter: the wait after an immediate first poll is ``interval`` times a random factor in this
        range; every later wait is the plain interval.
    :param poll_first: poll at once (``True``) or wait one interval first (the caller just read the object).
    :param retryable: which poll errors are tolerated (default: the taxonomy's transient and ambiguous errors);
        any other error propagates at once.
    """

    interval: float
    deadlines: Sequence[Deadline]
    max_consecutive_failures: int | None = DEFAULT_MAX_CONSECUTIVE_FAILURES
    first_wait_jitter: tuple[float, float] = NO_JITTER
    poll_first: bool = True
    retryable: Callable[[BaseException], bool] = is_retryable_read
    _earliest: Deadline = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _positive("poll_interval", self.interval)
        if not self.deadlines:
            raise BriaInputError("a wait needs at least one deadline")
        low, high = self.first_wait_jitter
        if not 0 < low <= high <= 1:
            raise BriaInputError(f"first_wait_jitter must satisfy 0 < low <= high <= 1, got {self.first_wait_jitter}")
        failures = self.max_consecutive_failures
        if failures is not None and (isinstance(failures, bool) or not isinstance(failures, int) or failures < 0):
            raise BriaInputError(f"max_consecutive_failures must be an int >= 0, got {failures!r}")
        object.__setattr__(self, "_earliest", min(self.deadlines, key=lambda d: d.at))

    @classmethod
    def within(cls, interval: float, timeout: float, now: float, **kwargs: Any) -> PollPolicy:
        """A policy ending ``timeout`` seconds after ``now`` (a relative budget made absolute at once).

        :param interval: seconds between polls.
        :param timeout: the budget in seconds (> 0).
        :param now: the current time in the driver's clock.
        :param kwargs: the other :class:`PollPolicy` fields.
        """
        return cls(interval, (Deadline(now + _positive("timeout", timeout)),), **kwargs)

    @property
    def earliest(self) -> Deadline:
        """The earliest deadline."""
        return self._earliest

    def passed(self, now: float) -> Deadline | None:
        """The earliest deadline already passed at ``now``, if any."""
        return self._earliest if now >= self._earliest.at else None


class PollState:
    """Where a wait stands; the drivers feed it each poll's outcome and ask it how long to sleep.

    :param policy: the policy.
    :param clock: the driver's clock (``time.time`` for triggers, ``time.monotonic`` on a worker).
    :param rng: the random source of the first-wait jitter.
    """

    __slots__ = ("clock", "failures", "jitter_pending", "last", "policy", "polls", "rng")

    def __init__(self, policy: PollPolicy, clock: Callable[[], float], rng: Callable[[float, float], float]) -> None:
        self.policy = policy
        self.clock = clock
        self.rng = rng
        self.failures = 0
        self.polls = 0
        self.last: Any = None
        self.jitter_pending = policy.poll_first

    def first_delay(self) -> float:
        """Seconds to sleep before the first poll (0 when the policy polls first)."""
        if self.policy.poll_first:
            return 0.0
        return self._capped(self.policy.interval)

    def succeeded(self, value: Any) -> None:
        """Record a successful poll."""
        self.failures = 0
        self.polls += 1
        self.last = value

    def failed(self, err: BaseException) -> None:
        """Record a failed poll; re-raise ``err`` when it is not retryable, raise :class:`PollFailed` past the limit."""
        if not self.policy.retryable(err):
            raise err
        self.failures += 1
        limit = self.policy.max_consecutive_failures
        if limit is not None and self.failures > limit:
            raise PollFailed(self.failures, err, self.last) from err

    def next_delay(self) -> float:
        """Seconds to sleep before the next poll; raise :class:`PollTimeout` when a deadline has passed."""
        now = self.clock()
        deadline = self.policy.passed(now)
        if deadline is not None:
            raise PollTimeout(deadline, self.last, now - deadline.at)
        interval = self.policy.interval
        if self.jitter_pending:
            self.jitter_pending = False
            interval *= self.rng(*self.policy.first_wait_jitter)
        return self._capped(interval)

    def _capped(self, interval: float) -> float:
        return max(0.0, min(interval, self.policy.earliest.at - self.clock()))


def uniform(low: float, high: float) -> float:
    """The default jitter source (``random.uniform``; the jitter spreads load, it is not a secret)."""
    return random.uniform(low, high)  # noqa: S311 - load spreading, not cryptography


#: The instruction :func:`plan` yields when the driver must poll (any other yielded value is seconds to sleep).
POLL = object()


def plan(
    state: PollState, finished: Callable[[Any], bool], *, what: str, log: logging.Logger | Any
) -> Generator[object, tuple[bool, Any], Any]:
    """The wait itself, free of I/O: yields :data:`POLL` or a number of seconds to sleep, returns the final value.

    The driver answers each :data:`POLL` with ``(True, value)`` or ``(False, exception)`` and each sleep with
    anything; the sync and the async driver differ only in how they poll and sleep.

    :param state: a fresh :class:`PollState`.
    :param finished: whether a polled value ends the wait.
    :param what: what is polled, for the log ("model 7").
    :param log: where tolerated failures are logged.
    :raises PollTimeout: when a deadline passes first.
    :raises PollFailed: after more retryable errors in a row than tolerated.
    """
    policy = state.policy
    if not policy.poll_first:
        yield state.first_delay()
    while True:
        ok, value = yield POLL
        if ok:
            state.succeeded(value)
            if finished(value):
                return value
        else:
            state.failed(value)
            log.warning("Polling %s failed (%d/%s consecutive failures tolerated): %s", what, state.failures,
                        policy.max_consecutive_failures, value)
        yield state.next_delay()
