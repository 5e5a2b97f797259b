"""The synchronous driver of :class:`~airflow_provider_bria.waiting.policy.PollPolicy` (a worker's wait)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from airflow_provider_bria.waiting.policy import POLL, PollPolicy, PollState, plan, uniform

T = TypeVar("T")


def wait_sync(
    policy: PollPolicy,
    poll: Callable[[], T],
    finished: Callable[[T], bool],
    *,
    what: str,
    log: logging.Logger | Any,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> T:
    """Poll until ``finished(value)``; return that value.

    :param policy: the policy (its deadlines in ``clock``'s time base).
    :param poll: one poll (a read).
    :param finished: whether a polled value ends the wait.
    :param what: what is polled, for the log ("model 7").
    :param log: where tolerated failures are logged.
    :param clock: the clock of the deadlines (default ``time.monotonic``).
    :param sleep: how to sleep (default ``time.sleep``, looked up at each call).
    :raises PollTimeout: when a deadline passes first.
    :raises PollFailed: after more retryable errors in a row than tolerated.
    """
    steps = plan(PollState(policy, clock or time.monotonic, uniform), finished, what=what, log=log)
    answer: Any = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if step is POLL:
            try:
                answer = (True, poll())
            except Exception as err:  # noqa: BLE001 - the plan decides: retryable, or re-raised
                answer = (False, err)
        else:
            (sleep or time.sleep)(cast("float", step))  # looked up at call time: tests patch time.sleep
            answer = None
