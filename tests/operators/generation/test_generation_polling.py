"""The generation operators' job wait: adaptive first check, then one every ``poll_interval``, bounded."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.exceptions import BriaServerError
from airflow_provider_bria.operators._generation_failures import Aborted, ItemFailed
from airflow_provider_bria.operators._generation_polling import (
    DURATION_MEMORY,
    MAX_CONSECUTIVE_POLL_ERRORS,
    PollCadence,
    wait_for_job,
)
from airflow_provider_bria.responses import V2Response


class _Hook:
    """Answers ``get_status`` from a script: ``IN_PROGRESS`` ``busy`` times, then ``COMPLETED``."""

    def __init__(self, busy: int, *, errors: int = 0) -> None:
        self.busy, self.errors, self.polls = busy, errors, 0

    def get_status(self, handle: str) -> V2Response:
        self.polls += 1
        if self.errors:
            self.errors -= 1
            raise BriaServerError("down", status_code=503)
        if self.polls <= self.busy:
            return V2Response.from_body({"status": "IN_PROGRESS", "request_id": handle})
        return V2Response.from_body({"status": "COMPLETED", "request_id": handle,
                                     "result": {"image_url": "https://x/i.png"}})


class _Clock(threading.Event):
    """An Event whose ``wait`` records the delays asked and returns at once (no real sleeping)."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(float(timeout or 0))
        return self.is_set()


def _submitted(rid: str = "r-1") -> V2Response:
    return V2Response.from_body({"request_id": rid, "status_url": f"https://bria.test/v2/status/{rid}"},
                                http_status=202)


def test_the_first_check_of_a_fresh_batch_is_immediate_then_every_interval() -> None:
    hook, clock, cadence = _Hook(busy=3), _Clock(), PollCadence(2.0)
    final = wait_for_job(hook, _submitted(), cadence=cadence, timeout=600, cancelled=clock)  # type: ignore[arg-type]
    assert final.status is JobStatus.COMPLETED
    assert clock.delays == [2.0, 2.0, 2.0]  # the immediate first check waits for nothing
    assert hook.polls == 4


def test_later_jobs_first_wait_as_long_as_the_shortest_job_seen() -> None:
    cadence = PollCadence(5.0)
    assert cadence.first_delay() == 0.0
    cadence.record(3.0)
    cadence.record(1.5)
    assert cadence.first_delay() == 1.5
    cadence.record(0.0)
    assert cadence.first_delay() == 0.0


def test_the_first_wait_never_exceeds_the_interval_and_forgets_old_jobs() -> None:
    cadence = PollCadence(1.0)
    cadence.record(30.0)
    assert cadence.first_delay() == 1.0  # a slow batch still polls every interval
    cadence = PollCadence(1.0)
    cadence.record(0.2)
    for _ in range(DURATION_MEMORY):
        cadence.record(0.8)
    assert cadence.first_delay() == 0.8  # only the most recent durations count


def test_polls_per_job_are_at_most_one_more_than_a_fixed_cadence() -> None:
    # a job that needs k intervals: the fixed cadence polls k times; adaptive polls k + 1 at most
    for busy in range(6):
        hook, clock = _Hook(busy=busy), _Clock()
        wait_for_job(hook, _submitted(), cadence=PollCadence(1.0), timeout=600, cancelled=clock)  # type: ignore[arg-type]
        fixed = max(busy, 1)
        assert hook.polls <= fixed + 1
        assert all(d == 1.0 for d in clock.delays[1:])  # never faster than poll_interval after the first check


def test_the_wait_records_the_duration_for_the_next_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _Hook(busy=1)
    # 100 s until the first check is answered, then 107 s: the second check is sent at 107 and answers at 114
    monkeypatch.setattr("airflow_provider_bria.operators._generation_polling.time.monotonic",
                        lambda: 100.0 + 7.0 * hook.polls)
    cadence = PollCadence(10.0)
    wait_for_job(hook, _submitted(), cadence=cadence, timeout=600, cancelled=_Clock())  # type: ignore[arg-type]
    assert cadence.first_delay() == 7.0  # when the check that saw it end was sent, not when it answered


def test_a_job_ended_at_its_first_check_keeps_the_next_first_checks_immediate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the worker's own latency (4 ms from the submission to sending the check) is not a job duration: recorded,
    # it would turn every later first check into a timed wait
    hook = _Hook(busy=0)
    monkeypatch.setattr("airflow_provider_bria.operators._generation_polling.time.monotonic",
                        lambda: 100.0 + 0.004 * hook.polls)
    cadence, clock = PollCadence(1.0), _Clock()
    for _ in range(3):
        wait_for_job(hook, _submitted(), cadence=cadence, timeout=600, cancelled=clock)  # type: ignore[arg-type]
    assert cadence.first_delay() == 0.0
    assert clock.delays == []  # no timed wait at all


def test_transient_errors_are_tolerated_up_to_the_bound() -> None:
    hook = _Hook(busy=0, errors=MAX_CONSECUTIVE_POLL_ERRORS - 1)
    wait_for_job(hook, _submitted(), cadence=PollCadence(1.0), timeout=600, cancelled=_Clock())  # type: ignore[arg-type]
    hook = _Hook(busy=0, errors=MAX_CONSECUTIVE_POLL_ERRORS)
    with pytest.raises(ItemFailed) as err:
        wait_for_job(hook, _submitted(), cadence=PollCadence(1.0), timeout=600, cancelled=_Clock())  # type: ignore[arg-type]
    assert err.value.kind == "polling"
    assert hook.polls == MAX_CONSECUTIVE_POLL_ERRORS


def test_the_deadline_and_cancellation_end_the_wait() -> None:
    with pytest.raises(ItemFailed) as err:
        wait_for_job(_Hook(busy=10**6), _submitted("r-9"), cadence=PollCadence(1.0), timeout=1e-9,
                     cancelled=_Clock())  # type: ignore[arg-type]
    assert err.value.kind == "timeout"
    assert err.value.request_id == "r-9"
    clock = _Clock()
    clock.set()
    hook = _Hook(busy=0)
    with pytest.raises(Aborted):
        wait_for_job(hook, _submitted(), cadence=PollCadence(1.0), timeout=600, cancelled=clock)  # type: ignore[arg-type]
    assert hook.polls == 0


def test_a_job_already_ended_is_not_polled() -> None:
    hook = _Hook(busy=0)
    done = V2Response.from_body({"status": "COMPLETED", "result": {"image_url": "https://x/i.png"}})
    assert wait_for_job(hook, done, cadence=PollCadence(1.0), timeout=600, cancelled=_Clock()) is done  # type: ignore[arg-type]
    assert hook.polls == 0


def test_the_runner_shares_one_cadence_across_its_jobs() -> None:
    from airflow_provider_bria.operators._generation_engine import JobRunner

    runner: Any = JobRunner(hook=_Hook(busy=0), limiter=None, submit=lambda i: _submitted(),  # type: ignore[arg-type]
                            finish=lambda i, r: {}, poll_interval=3.0)
    assert isinstance(runner.cadence, PollCadence)
    assert runner.cadence.interval == 3.0
