"""The one poll policy and its two drivers: deadline, jitter bounds, transient vs permanent errors, sync and async.

The drivers run against a fake clock: ``sleep`` advances it, so nothing here waits for real and the deadline
arithmetic is exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaInputError,
    BriaRateLimitError,
    BriaServerError,
    BriaTransportError,
)
from airflow_provider_bria.waiting import policy as policy_mod
from airflow_provider_bria.waiting.async_ import wait_async
from airflow_provider_bria.waiting.policy import (
    TRIGGER_FIRST_WAIT_JITTER,
    Deadline,
    PollFailed,
    PollPolicy,
    PollTimeout,
)
from airflow_provider_bria.waiting.sync import wait_sync

LOG = logging.getLogger("test.waiting")


class FakeClock:
    """A clock that only moves when the driver sleeps; records every sleep."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def run(mode: str, clock: FakeClock, policy: PollPolicy, answers: Iterator[Any], monkeypatch: pytest.MonkeyPatch,
        finished: Callable[[Any], bool] = lambda v: v == "done") -> tuple[Any, int]:
    """Drive ``policy`` with the sync or async driver; ``answers`` are returned (or raised) by the polls."""
    calls = 0

    def next_answer() -> Any:
        nonlocal calls
        calls += 1
        value = next(answers)
        if isinstance(value, BaseException):
            raise value
        return value

    if mode == "sync":
        monkeypatch.setattr(time, "sleep", clock.sleep)
        return wait_sync(policy, next_answer, finished, what="thing", log=LOG, clock=clock), calls

    async def fake_sleep(seconds: float) -> None:
        clock.sleep(seconds)

    async def poll() -> Any:
        return next_answer()

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return asyncio.run(wait_async(policy, poll, finished, what="thing", log=LOG, clock=clock)), calls


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_returns_the_final_value_and_sleeps_the_interval(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    policy = PollPolicy.within(5.0, 100.0, clock())
    value, calls = run(mode, clock, policy, iter(["running", "running", "done"]), monkeypatch)
    assert (value, calls) == ("done", 3)
    assert clock.sleeps == [5.0, 5.0]


@pytest.mark.parametrize("mode", MODES)
def test_absolute_deadline_ends_the_wait_and_no_sleep_passes_it(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    start = clock()
    policy = PollPolicy(4.0, (Deadline(start + 10.0, "timeout"), Deadline(start + 7.0, "execution_timeout")))
    with pytest.raises(PollTimeout) as err:
        run(mode, clock, policy, iter(["running"] * 50), monkeypatch)
    assert err.value.deadline.reason == "execution_timeout"  # the earliest deadline wins
    assert err.value.last == "running"
    assert clock.sleeps == [4.0, 3.0]  # the second sleep is cut to the deadline
    assert clock() == start + 7.0


@pytest.mark.parametrize("mode", MODES)
def test_wait_first_policy_sleeps_before_the_first_poll(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    policy = PollPolicy.within(3.0, 100.0, clock(), poll_first=False)
    run(mode, clock, policy, iter(["done"]), monkeypatch)
    assert clock.sleeps == [3.0]


@pytest.mark.parametrize("mode", MODES)
def test_only_the_first_wait_is_jittered_and_within_bounds(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[float, float]] = []

    def fake_uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return low  # the extreme of the range

    monkeypatch.setattr(policy_mod.random, "uniform", fake_uniform)
    clock = FakeClock()
    policy = PollPolicy.within(10.0, 1000.0, clock(), first_wait_jitter=TRIGGER_FIRST_WAIT_JITTER)
    run(mode, clock, policy, iter(["a", "b", "c", "done"]), monkeypatch)
    assert seen == [TRIGGER_FIRST_WAIT_JITTER]
    assert clock.sleeps == [5.0, 10.0, 10.0]


def test_real_jitter_stays_in_its_range() -> None:
    clock = FakeClock()
    policy = PollPolicy.within(10.0, 1000.0, clock(), first_wait_jitter=(0.5, 1.0))
    firsts = []
    for _ in range(300):
        state = policy_mod.PollState(policy, clock, policy_mod.uniform)
        firsts.append(state.next_delay())
    assert all(5.0 <= d <= 10.0 for d in firsts)
    assert max(firsts) - min(firsts) > 2.0  # it does vary


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("error", [BriaServerError("down", status_code=503), BriaTransportError("reset"),
                                   BriaRateLimitError("slow down", status_code=429)])
def test_retryable_errors_are_tolerated_up_to_the_limit(mode: str, error: Exception,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    policy = PollPolicy.within(1.0, 1000.0, clock(), max_consecutive_failures=2)
    value, calls = run(mode, clock, policy, iter([error, error, "running", error, error, "done"]), monkeypatch)
    assert (value, calls) == ("done", 6)  # the good poll in between reset the count
    with pytest.raises(PollFailed) as failed:
        run(mode, clock, policy, iter([error, error, error, "done"]), monkeypatch)
    assert failed.value.failures == 3
    assert failed.value.error is error


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("error", [BriaAuthError("no", status_code=401), KeyError("bug"), BriaInputError("bad")])
def test_permanent_errors_end_the_wait_at_once(mode: str, error: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    policy = PollPolicy.within(1.0, 1000.0, clock(), max_consecutive_failures=10)
    calls = 0

    def counted() -> Iterator[Any]:
        nonlocal calls
        while True:
            calls += 1
            yield error

    with pytest.raises(type(error)):
        run(mode, clock, policy, counted(), monkeypatch)
    assert calls == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_unlimited_failures_are_still_bounded_by_the_deadline(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    policy = PollPolicy.within(1.0, 5.0, clock(), max_consecutive_failures=None)
    with pytest.raises(PollTimeout):
        run(mode, clock, policy, iter([BriaServerError("down", status_code=500)] * 100), monkeypatch)
    assert sum(clock.sleeps) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval": 0, "deadlines": (Deadline(1.0),)}, "poll_interval"),
        ({"interval": True, "deadlines": (Deadline(1.0),)}, "poll_interval"),
        ({"interval": 1.0, "deadlines": ()}, "deadline"),
        ({"interval": 1.0, "deadlines": (Deadline(1.0),), "first_wait_jitter": (0.0, 1.0)}, "first_wait_jitter"),
        ({"interval": 1.0, "deadlines": (Deadline(1.0),), "first_wait_jitter": (0.9, 0.5)}, "first_wait_jitter"),
        ({"interval": 1.0, "deadlines": (Deadline(1.0),), "max_consecutive_failures": -1}, "max_consecutive"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BriaInputError, match=match):
        PollPolicy(**kwargs)
