"""The asynchronous driver of :class:`~airflow_provider_bria.waiting.policy.PollPolicy` (a trigger's wait)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from airflow_provider_bria.waiting.policy import POLL, PollPolicy, PollState, plan, uniform

T = TypeVar("T")


async def wait_async(
    policy: PollPolicy,
    poll: Callable[[], Awaitable[T]],
    finished: Callable[[T], bool],
    *,
    what: str,
    log: logging.Logger | Any,
    clock: Callable[[], float] | None = None,
) -> T:
    """Poll until ``finished(value)``; return that value. The async twin of :func:`.sync.wait_sync`.

    :param policy: the policy (its deadlines in ``clock``'s time base).
    :param poll: one poll (a coroutine function; a read).
    :param finished: whether a polled value ends the wait.
    :param what: what is polled, for the log ("model 7").
    :param log: where tolerated failures are logged.
    :param clock: the clock of the deadlines (default ``time.time``: epoch deadlines survive a triggerer restart).
    :raises PollTimeout: when a deadline passes first.
    :raises PollFailed: after more retryable errors in a row than tolerated.
    """
    steps = plan(PollState(policy, clock or time.time, uniform), finished, what=what, log=log)
    answer: Any = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        answer = None  # not kept while sleeping (thousands of triggers sleep at once)
        if step is POLL:
            try:
                answer = (True, await poll())
            except Exception as err:  # noqa: BLE001 - the plan decides: retryable, or re-raised
                answer = (False, err)
        else:
            await asyncio.sleep(cast("float", step))  # looked up at call time: tests patch asyncio.sleep
