"""Trigger waiting for one or several Bria v2 asynchronous jobs (``GET /v2/status/{request_id}``)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_bria.exceptions import (
    BriaInputError,
    BriaRateLimitError,
    BriaServerError,
    BriaTransportError,
)
from airflow_provider_bria.responses import warn_unexpected_status

#: Event statuses: every job ended (``success``; per-job outcomes may still be failures), the absolute
#: deadline passed (``timeout``), or polling failed for good (``error``).
EVENT_STATUSES = frozenset({"success", "timeout", "error"})
_JSON_SCALARS = (str, int, float, bool, type(None))
#: The first wait (after the immediate first poll) is ``poll_interval`` times a random factor in this range, so
#: triggers started together (a triggerer restart, a backfill) spread their later polls over half an interval
#: instead of polling in lock-step forever; later waits are the plain ``poll_interval``.
FIRST_WAIT_JITTER = (0.5, 1.0)


class BriaJobTrigger(BaseTrigger):
    """Poll v2 jobs with the async hook until all of them end, then fire one event with every outcome.

    The event payload is ``{"status": "success" | "timeout" | "error", "message": str, "outcomes":
    {handle: V2Response.to_json()}, "pending": [handle, ...], "context": <context>}``; ``outcomes`` holds every
    job that ended (``COMPLETED``, ``ERROR``, ``FAILED`` or ``NOT_FOUND`` for expired ids) and ``pending`` the
    ones still running when the event fired. ``UNKNOWN`` or an unrecognised status is not an end: it is logged
    once per job and value, and the job stays pending until it ends or the deadline passes. ``success`` means no job
    is pending — individual jobs may still have failed; the operator decides what that means.

    Transient polling failures (5xx, 429, dropped connections, timeouts: already retried by the hook) are
    tolerated up to ``max_consecutive_failures`` polling rounds in a row; any other error (bad token...) ends
    the wait with an ``error`` event at once. The deadline is an absolute epoch time, so it survives triggerer
    restarts. Bria has no endpoint to cancel a v2 job, so killing the task cannot stop the jobs.

    :param requests: the request ids or status URLs to wait for (one string or a list).
    :param end_time: absolute deadline (``time.time()`` epoch seconds).
    :param bria_conn_id: the Bria connection id.
    :param poll_interval: seconds between polling rounds. The first round is immediate; the wait after it is a
        random 50-100 % of ``poll_interval`` (so triggers started together do not poll in lock-step), every later
        wait the full interval; no wait goes past ``end_time``.
    :param hook_params: JSON-safe keyword arguments for the hook (``timeout``, ``retry_limit``...).
    :param max_consecutive_failures: failed polling rounds in a row tolerated before an ``error`` event.
    :param max_parallel_polls: status requests in flight at once.
    :param context: opaque JSON-safe data echoed back in the event as ``context`` (the operator's resume state;
        carried by the trigger because ``dag.test()`` drops ``defer(kwargs=...)`` when an event arrives).
    """

    def __init__(
        self,
        requests: Sequence[str] | str,
        *,
        end_time: float,
        bria_conn_id: str = "bria_default",
        poll_interval: float = 5.0,
        hook_params: dict[str, Any] | None = None,
        max_consecutive_failures: int = 10,
        max_parallel_polls: int = 8,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        handles = [requests] if isinstance(requests, str) else list(requests)
        if not handles or not all(isinstance(h, str) and h.strip() for h in handles):
            raise BriaInputError(f"requests must be one or more non-empty request ids or status URLs, got {requests!r}")
        params = dict(hook_params or {})
        bad = {k: type(v).__name__ for k, v in params.items() if not isinstance(v, _JSON_SCALARS)}
        if bad:
            raise BriaInputError(f"hook_params of a deferred task must be JSON scalars; not serialisable: {bad}")
        if float(poll_interval) <= 0:
            raise BriaInputError(f"poll_interval must be > 0, got {poll_interval!r}")
        try:
            json.dumps(context)
        except (TypeError, ValueError) as err:
            raise BriaInputError(f"context must be JSON-serialisable: {err}") from None
        self.context = context
        self.requests = list(dict.fromkeys(handles))
        self.end_time = float(end_time)
        self.bria_conn_id = bria_conn_id
        self.poll_interval = float(poll_interval)
        self.hook_params = params
        self.max_consecutive_failures = max(1, int(max_consecutive_failures))
        self.max_parallel_polls = max(1, int(max_parallel_polls))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "requests": list(self.requests),
                "end_time": self.end_time,
                "bria_conn_id": self.bria_conn_id,
                "poll_interval": self.poll_interval,
                "hook_params": dict(self.hook_params),
                "max_consecutive_failures": self.max_consecutive_failures,
                "max_parallel_polls": self.max_parallel_polls,
                "context": self.context,
            },
        )

    def _event(self, status: str, message: str, outcomes: dict[str, Any], pending: list[str]) -> TriggerEvent:
        self.log.info("Bria jobs: %s (%d ended, %d pending): %s", status, len(outcomes), len(pending), message)
        return TriggerEvent({"status": status, "message": message, "outcomes": outcomes, "pending": pending,
                             "context": self.context})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until every job ends, the deadline passes, or polling fails for good; yield one event."""
        from airflow_provider_bria.hooks.bria import BriaHook

        outcomes: dict[str, Any] = {}
        pending = list(self.requests)
        failed_rounds = 0
        first_wait = True
        semaphore = asyncio.Semaphore(self.max_parallel_polls)
        unexpected: dict[str, set[str]] = {}

        async def poll(hook: BriaHook, handle: str) -> Any:
            async with semaphore:
                return await hook.aget_status(handle)

        try:
            async with BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params) as hook:
                while True:
                    results = await asyncio.gather(*(poll(hook, h) for h in pending), return_exceptions=True)
                    transient: BaseException | None = None
                    for handle, result in zip(list(pending), results, strict=True):
                        if isinstance(result, BaseException):
                            if not isinstance(result, BriaServerError | BriaTransportError | BriaRateLimitError):
                                raise result
                            transient = result
                            continue
                        warn_unexpected_status(result, unexpected.setdefault(handle, set()), self.log)
                        if result.is_terminal:
                            outcomes[handle] = result.to_json()
                            pending.remove(handle)
                    if not pending:
                        yield self._event("success", f"all {len(outcomes)} job(s) ended", outcomes, pending)
                        return
                    if transient is not None:
                        failed_rounds += 1
                        self.log.warning("Polling round %d failed: %s", failed_rounds, transient)
                        if failed_rounds >= self.max_consecutive_failures:
                            yield self._event("error", f"status polling failed {failed_rounds} rounds in a row: "
                                              f"{transient}", outcomes, pending)
                            return
                    else:
                        failed_rounds = 0
                    remaining = self.end_time - time.time()
                    if remaining <= 0:
                        yield self._event("timeout", f"{len(pending)} job(s) still running at the deadline",
                                          outcomes, pending)
                        return
                    interval = self.poll_interval
                    if first_wait:  # de-synchronise triggers started together
                        interval *= random.uniform(*FIRST_WAIT_JITTER)
                        first_wait = False
                    await asyncio.sleep(min(interval, remaining))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - every other failure becomes an error event, never a dead trigger
            yield self._event("error", f"{type(err).__name__}: {err}", outcomes, pending)
