"""Waiting for v2 jobs on the worker: an adaptive first status check, then the provider's poll policy.

Bria documents no polling rule beyond "poll ``/v2/status/{request_id}`` until the job ends" (its SDK polls every
second); its rate limits count requests per minute. A fixed cadence waits one full ``poll_interval`` before the
first check, which costs most of the throughput when jobs end faster than that (0.29x of a bare client against
the emulator). :class:`PollCadence` learns how long this batch's jobs take: the first check of a job comes after
the shortest duration seen in the batch so far (immediately while none has ended), and every later check one
``poll_interval`` after the previous one. A job is therefore checked at most once more than with the fixed
cadence (the early check), and never more often than every ``poll_interval`` after that; see
``docs/api-choices.md`` ("Polling cadence of the generation operators").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from airflow_provider_bria.operators._generation_failures import Aborted, ItemFailed
from airflow_provider_bria.responses import warn_unexpected_status

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.responses import V2Response

log = logging.getLogger(__name__)

#: Consecutive failed status polls of one job tolerated before giving up on it (the hook already retries).
MAX_CONSECUTIVE_POLL_ERRORS = 5
#: Job durations remembered to choose the first check (the most recent ones).
DURATION_MEMORY = 16


class PollCadence:
    """When to check a batch's jobs: the first check adapts to the jobs seen so far, then every ``interval``.

    Thread-safe: one instance is shared by the worker threads of a batch.

    :param interval: seconds between two checks of one job (``poll_interval``), also the latest first check.
    """

    def __init__(self, interval: float) -> None:
        self.interval = float(interval)
        self._durations: deque[float] = deque(maxlen=DURATION_MEMORY)
        self._lock = threading.Lock()

    def first_delay(self) -> float:
        """Seconds from a submission to the job's first check: the shortest recent job (0 before any), capped."""
        with self._lock:
            shortest = min(self._durations, default=0.0)
        return min(max(shortest, 0.0), self.interval)

    def record(self, seconds: float) -> None:
        """Remember when, after its submission, the check that saw a job ended was sent (an upper bound of its run).

        :param seconds: the duration.
        """
        with self._lock:
            self._durations.append(max(float(seconds), 0.0))


def wait_for_job(hook: BriaHook, response: V2Response, *, cadence: PollCadence, timeout: float,
                 cancelled: threading.Event) -> V2Response:
    """Poll a submitted job until it ends; return the terminal response.

    The adaptive first wait comes from ``cadence``; the rest is the provider's one poll policy
    (:class:`~airflow_provider_bria.waiting.policy.PollPolicy`: every ``poll_interval``, an absolute deadline,
    retryable poll errors tolerated up to :data:`MAX_CONSECUTIVE_POLL_ERRORS` in a row).

    :param hook: the hook (its status calls go to the configured origin only).
    :param response: the submission response.
    :param cadence: when to check.
    :param timeout: seconds to wait after the submission.
    :param cancelled: set to stop waiting (another item failed fatally, or the task is killed).
    :raises ItemFailed: on timeout or :data:`MAX_CONSECUTIVE_POLL_ERRORS` failed polls in a row.
    :raises Aborted: when ``cancelled`` is set.
    """
    from airflow_provider_bria.waiting.policy import PollFailed, PollPolicy, PollTimeout
    from airflow_provider_bria.waiting.sync import wait_sync

    if response.is_terminal:
        return response
    handle = response.status_url or response.request_id
    if not handle:
        raise ItemFailed("submission_unknown", "the submission returned neither request_id nor status_url")
    rid = response.request_id
    started = time.monotonic()
    sent = [started]
    seen: set[str] = set()

    polls = [0]

    def sleep(seconds: float) -> None:
        if cancelled.wait(seconds) if seconds > 0 else cancelled.is_set():  # no timed wait for an immediate check
            raise Aborted(f"stopped while waiting for request {rid}")

    def poll() -> V2Response:
        polls[0] += 1
        sent[0] = time.monotonic()
        status = hook.get_status(handle)
        warn_unexpected_status(status, seen, log)
        return status

    first = cadence.first_delay()
    sleep(first)
    policy = PollPolicy.within(cadence.interval, timeout, started,
                               max_consecutive_failures=MAX_CONSECUTIVE_POLL_ERRORS - 1)
    try:
        status = wait_sync(policy, poll, lambda s: s.is_terminal, what=f"request {rid}", log=log, sleep=sleep)
    except PollTimeout:
        raise ItemFailed("timeout", f"job not finished after {timeout:g} s (request {rid}; a retry resumes it)",
                         request_id=rid) from None
    except PollFailed as err:
        raise ItemFailed("polling", f"status polling failed {err.failures} times in a row: {err.error}",
                         request_id=rid) from None
    # the job had ended when this check was sent; ended at its first check, it needed no more than the delay
    # planned for that check (the rest is this worker's own latency, which must not delay the next first checks)
    cadence.record(first if polls[0] == 1 else sent[0] - started)
    status.request_id = status.request_id or rid
    return status
