"""Deferrable wait for a bulk (advanced dataset) upload: :class:`BriaBulkUploadTrigger`.

Polls ``GET .../images/bulk-upload/status`` with the hook's async client until the job is ``completed`` or
``failed`` or an absolute deadline passes, then fires exactly one small event::

    {"status": "done" | "timeout" | "error", "dataset_id": int, "job_status": str | None, "message": str,
     "state": dict}   # the operator's small JSON-safe state, passed through unchanged

The operator's state travels in the trigger (not only in ``defer(kwargs=...)``) so that it survives every way
a task resumes, ``dag.test()`` included. The event never carries ``failed_images`` (up to 5,000 entries):
``execute_complete`` reads the final status once on the worker. The deadline is epoch seconds computed before
deferring, so a triggerer restart does not reset it. Nothing is cancelled on timeout: Bria has no call to
cancel a bulk upload, and a retry of the task resumes waiting for the same job.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_bria._state import STATE_VERSION_KEY, STATE_VERSIONS, UPLOAD_TRIGGER, check_version
from airflow_provider_bria.contract import BulkUploadStatus
from airflow_provider_bria.exceptions import RETRYABLE_ERRORS, BriaError, BriaNotFoundError
from airflow_provider_bria.hooks.bria import BriaHook

EVENT_DONE = "done"
EVENT_TIMEOUT = "timeout"
EVENT_ERROR = "error"
BULK_EVENT_STATUSES = frozenset({EVENT_DONE, EVENT_TIMEOUT, EVENT_ERROR})
#: A missing status this soon after the submit means "not visible yet", not "no job".
_NOT_FOUND_GRACE_SECONDS = 30.0
#: The first wait (after the immediate first poll) is ``poll_interval`` times a random factor in this range, so
#: triggers started together (a triggerer restart, a backfill) spread their later polls over half an interval
#: instead of polling in lock-step forever; later waits are the plain ``poll_interval``.
FIRST_WAIT_JITTER = (0.5, 1.0)


class BriaBulkUploadTrigger(BaseTrigger):
    """Wait for a dataset's bulk upload job to finish.

    :param dataset_id: the advanced dataset.
    :param bria_conn_id: the Bria connection id.
    :param poll_interval: seconds between polls. The first poll is immediate; the wait after it is a random
        50-100 % of ``poll_interval`` (so triggers started together do not poll in lock-step), every later wait
        the full interval; no wait goes past ``end_time``.
    :param end_time: epoch seconds after which a ``timeout`` event is fired.
    :param hook_params: JSON-safe keyword arguments for the hook (``timeout``, ``retry_limit``...).
    :param max_consecutive_failures: transient poll errors tolerated in a row before an ``error`` event.
    :param state: small JSON-safe data handed back unchanged in the event (counts gathered before deferring).
    :param state_version: layout version of these kwargs (:mod:`airflow_provider_bria._state`); ``None`` for
        kwargs stored by release 0.1.0.
    """

    def __init__(
        self,
        *,
        dataset_id: int,
        bria_conn_id: str,
        poll_interval: float,
        end_time: float,
        hook_params: dict[str, Any] | None = None,
        max_consecutive_failures: int = 5,
        state: dict[str, Any] | None = None,
        state_version: int | None = None,
    ) -> None:
        super().__init__()
        check_version(UPLOAD_TRIGGER, state_version)
        self.dataset_id = int(dataset_id)
        self.bria_conn_id = bria_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.hook_params: dict[str, Any] = {
            k: v for k, v in (hook_params or {}).items() if isinstance(v, (int, float, str, bool))
        }
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.state = dict(state or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and the keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dataset_id": self.dataset_id,
                "bria_conn_id": self.bria_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "hook_params": self.hook_params,
                "max_consecutive_failures": self.max_consecutive_failures,
                "state": self.state,
                STATE_VERSION_KEY: STATE_VERSIONS[UPLOAD_TRIGGER],
            },
        )

    def _event(self, status: str, message: str, job_status: str | None = None) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "dataset_id": self.dataset_id, "job_status": job_status, "message": message,
             "state": self.state}
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job is terminal or the deadline passes; yield exactly one event."""
        yield await self._wait()

    async def _wait(self) -> TriggerEvent:
        failures = 0
        first_wait = True
        started = time.monotonic()
        last: str | None = None
        try:
            async with BriaHook(self.bria_conn_id, **self.hook_params) as hook:
                while True:
                    try:
                        body = await hook.aget_bulk_upload_status(self.dataset_id)
                    except RETRYABLE_ERRORS as err:
                        failures += 1
                        if failures > self.max_consecutive_failures:
                            return self._event(EVENT_ERROR, f"Polling the bulk upload failed {failures} times in a "
                                                            f"row; last error: {err}", last)
                        self.log.warning("Polling the bulk upload of dataset %s failed: %s", self.dataset_id, err)
                    except BriaNotFoundError as err:
                        if time.monotonic() - started > _NOT_FOUND_GRACE_SECONDS:
                            return self._event(EVENT_ERROR, f"No bulk upload job for dataset {self.dataset_id}: "
                                                            f"{err}", last)
                    else:
                        failures = 0
                        status = BulkUploadStatus.from_body(body)
                        last = status.value if status is not None else last
                        if status is not None and status.is_terminal:
                            return self._event(EVENT_DONE, f"Bulk upload {status.value}", status.value)
                        self.log.info("Bulk upload of dataset %s: %s (%s%%)", self.dataset_id, last,
                                      body.get("progress_percentage"))
                    if time.time() >= self.end_time:
                        return self._event(EVENT_TIMEOUT, f"Bulk upload of dataset {self.dataset_id} still "
                                                          f"{last or 'not visible'} at the deadline", last)
                    interval = self.poll_interval
                    if first_wait:  # de-synchronise triggers started together
                        interval *= random.uniform(*FIRST_WAIT_JITTER)
                        first_wait = False
                    await asyncio.sleep(max(0.0, min(interval, self.end_time - time.time())))
        except BriaError as err:
            return self._event(EVENT_ERROR, f"Polling the bulk upload failed: {err}", last)
        except Exception as err:  # a bug or an unexpected body must end the wait with an event, not a dead trigger
            self.log.exception("Unexpected error while polling the bulk upload of dataset %s", self.dataset_id)
            return self._event(
                EVENT_ERROR,
                f"Unexpected {type(err).__name__} while polling the bulk upload of dataset {self.dataset_id}: {err}",
                last,
            )
