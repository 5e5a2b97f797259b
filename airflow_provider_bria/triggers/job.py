"""Trigger waiting for one or several Bria v2 asynchronous jobs (``GET /v2/status/{request_id}``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, cast

from airflow_provider_bria._state import JOB_TRIGGER, check_version
from airflow_provider_bria.exceptions import BriaInputError, is_retryable_read
from airflow_provider_bria.hooks import DEFAULT_CONN_NAME
from airflow_provider_bria.responses import warn_unexpected_status
from airflow_provider_bria.waiting.events import JOB_EVENTS, check_hook_params
from airflow_provider_bria.waiting.policy import TRIGGER_FIRST_WAIT_JITTER, Deadline, PollFailed, PollTimeout
from airflow_provider_bria.waiting.trigger import BriaPollingTrigger

#: Event statuses: every job ended (``success``; per-job outcomes may still be failures), the absolute
#: deadline passed (``timeout``), or polling failed for good (``error``).
EVENT_STATUSES = JOB_EVENTS.status_values
#: The first wait (after the immediate first poll) is ``poll_interval`` times a random factor in this range, so
#: triggers started together (a triggerer restart, a backfill) spread their later polls over half an interval
#: instead of polling in lock-step forever; later waits are the plain ``poll_interval``.
FIRST_WAIT_JITTER = TRIGGER_FIRST_WAIT_JITTER


class BriaJobTrigger(BriaPollingTrigger):
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
    :param hook_params: JSON-safe keyword arguments for the hook (``timeout``, ``retry_limit``...); a value that
        cannot travel to the triggerer fails at construction.
    :param max_consecutive_failures: failed polling rounds in a row that end the wait with an ``error`` event
        (the round that reaches it included: 3 means two failed rounds are tolerated).
    :param max_parallel_polls: status requests in flight at once.
    :param context: opaque JSON-safe data echoed back in the event as ``context`` (the operator's resume state;
        carried by the trigger because ``dag.test()`` drops ``defer(kwargs=...)`` when an event arrives).
    :param state_version: layout version of these kwargs (:mod:`airflow_provider_bria._state`); ``None`` for
        kwargs stored by release 0.1.0.
    """

    state_kind = JOB_TRIGGER

    def __init__(
        self,
        requests: Sequence[str] | str,
        *,
        end_time: float,
        bria_conn_id: str = DEFAULT_CONN_NAME,
        poll_interval: float = 5.0,
        hook_params: dict[str, Any] | None = None,
        max_consecutive_failures: int = 10,
        max_parallel_polls: int = 8,
        context: dict[str, Any] | None = None,
        state_version: int | None = None,
    ) -> None:
        super().__init__()
        check_version(JOB_TRIGGER, state_version)
        handles = [requests] if isinstance(requests, str) else list(requests)
        if not handles or not all(isinstance(h, str) and h.strip() for h in handles):
            raise BriaInputError(f"requests must be one or more non-empty request ids or status URLs, got {requests!r}")
        params = check_hook_params(hook_params)
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
        self._outcomes: dict[str, Any] = {}
        self._pending = list(self.requests)

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trigger."""
        return {
            "requests": list(self.requests),
            "end_time": self.end_time,
            "bria_conn_id": self.bria_conn_id,
            "poll_interval": self.poll_interval,
            "hook_params": dict(self.hook_params),
            "max_consecutive_failures": self.max_consecutive_failures,
            "max_parallel_polls": self.max_parallel_polls,
            "context": self.context,
        }

    def _event(self, status: str, message: str) -> dict[str, Any]:
        outcomes, pending = self._outcomes, self._pending
        self.log.info("Bria jobs: %s (%d ended, %d pending): %s", status, len(outcomes), len(pending), message)
        return {"status": status, "message": message, "outcomes": outcomes, "pending": list(pending),
                "context": self.context}

    async def wait(self) -> dict[str, Any]:
        """Poll every pending job once per round until none is pending; return the event payload."""
        semaphore = asyncio.Semaphore(self.max_parallel_polls)
        unexpected: dict[str, set[str]] = {}
        policy = self.policy(Deadline(self.end_time), max_consecutive_failures=self.max_consecutive_failures - 1)

        async def poll(handle: str) -> Any:
            async with semaphore:
                hook = await self.shared_hook()
                return await hook.aget_status(handle)

        async def one_round() -> list[str]:
            pending = self._pending
            results = await asyncio.gather(*(poll(h) for h in pending), return_exceptions=True)
            transient: BaseException | None = None
            for handle, result in zip(list(pending), results, strict=True):
                if isinstance(result, BaseException):
                    if not is_retryable_read(result):
                        raise result
                    transient = result
                    continue
                warn_unexpected_status(result, unexpected.setdefault(handle, set()),
                                       cast("logging.Logger", self.log))
                if result.is_terminal:
                    self._outcomes[handle] = result.to_json()
                    pending.remove(handle)
            if transient is not None:  # the failed job is still pending: the round counts as failed
                raise transient
            return pending

        await self.poll_until(policy, one_round, lambda pending: not pending, "the Bria jobs")
        return self._event("success", f"all {len(self._outcomes)} job(s) ended")

    def timeout_event(self, err: PollTimeout) -> dict[str, Any]:
        """The deadline passed with jobs still running."""
        return self._event("timeout", f"{len(self._pending)} job(s) still running at the deadline")

    def failed_event(self, err: PollFailed) -> dict[str, Any]:
        """Polling rounds kept failing with transient errors."""
        return self._event("error", f"status polling failed {err.failures} rounds in a row: {err.error}")

    def error_event(self, err: Exception) -> dict[str, Any]:
        """A non-transient answer (bad token...) or a bug."""
        return self._event("error", f"{type(err).__name__}: {err}")
