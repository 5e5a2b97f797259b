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

import time
from typing import Any

from airflow_provider_bria._state import UPLOAD_TRIGGER, check_version
from airflow_provider_bria.contract import BulkUploadStatus
from airflow_provider_bria.exceptions import BriaError, BriaNotFoundError
from airflow_provider_bria.results import loose
from airflow_provider_bria.waiting.events import BULK_UPLOAD_EVENTS, EventStatus, check_hook_params
from airflow_provider_bria.waiting.policy import TRIGGER_FIRST_WAIT_JITTER, Deadline, PollFailed, PollTimeout
from airflow_provider_bria.waiting.trigger import BriaPollingTrigger

EVENT_DONE = EventStatus.DONE.value
EVENT_TIMEOUT = EventStatus.TIMEOUT.value
EVENT_ERROR = EventStatus.ERROR.value
BULK_EVENT_STATUSES = BULK_UPLOAD_EVENTS.status_values
#: A missing status this soon after the submit means "not visible yet", not "no job".
_NOT_FOUND_GRACE_SECONDS = 30.0
#: The first wait (after the immediate first poll) is ``poll_interval`` times a random factor in this range, so
#: triggers started together (a triggerer restart, a backfill) spread their later polls over half an interval
#: instead of polling in lock-step forever; later waits are the plain ``poll_interval``.
FIRST_WAIT_JITTER = TRIGGER_FIRST_WAIT_JITTER


class BriaBulkUploadTrigger(BriaPollingTrigger):
    """Wait for a dataset's bulk upload job to finish.

    :param dataset_id: the advanced dataset.
    :param bria_conn_id: the Bria connection id.
    :param poll_interval: seconds between polls. The first poll is immediate; the wait after it is a random
        50-100 % of ``poll_interval`` (so triggers started together do not poll in lock-step), every later wait
        the full interval; no wait goes past ``end_time``.
    :param end_time: epoch seconds after which a ``timeout`` event is fired.
    :param hook_params: JSON-safe keyword arguments for the hook (``timeout``, ``retry_limit``...); values that
        cannot travel to the triggerer are dropped with a warning (release 0.1.0's behaviour, kept for its
        stored kwargs; the other triggers refuse them).
    :param max_consecutive_failures: transient poll errors tolerated in a row before an ``error`` event.
    :param state: small JSON-safe data handed back unchanged in the event (counts gathered before deferring).
    :param state_version: layout version of these kwargs (:mod:`airflow_provider_bria._state`); ``None`` for
        kwargs stored by release 0.1.0.
    """

    state_kind = UPLOAD_TRIGGER

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
        self.hook_params = check_hook_params(hook_params, drop_invalid=True, log=self.log)
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.state = dict(state or {})
        self._last: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trigger."""
        return {
            "dataset_id": self.dataset_id,
            "bria_conn_id": self.bria_conn_id,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
            "hook_params": self.hook_params,
            "max_consecutive_failures": self.max_consecutive_failures,
            "state": self.state,
        }

    def _event(self, status: str, message: str) -> dict[str, Any]:
        return {"status": status, "dataset_id": self.dataset_id, "job_status": self._last, "message": message,
                "state": self.state}

    async def wait(self) -> dict[str, Any]:
        """Poll until the job is terminal; return the event payload."""
        started = time.monotonic()
        policy = self.policy(Deadline(self.end_time), max_consecutive_failures=max(0, self.max_consecutive_failures))

        async def poll() -> dict[str, Any] | None:
            try:
                hook = await self.shared_hook()
                return loose(await hook.aget_bulk_upload_status(self.dataset_id))
            except BriaNotFoundError:
                if time.monotonic() - started > _NOT_FOUND_GRACE_SECONDS:
                    raise
                return None  # not visible yet

        def finished(body: dict[str, Any] | None) -> bool:
            if body is None:
                return False
            status = BulkUploadStatus.from_body(body)
            self._last = status.value if status is not None else self._last
            if status is not None and status.is_terminal:
                return True
            self.log.info("Bulk upload of dataset %s: %s (%s%%)", self.dataset_id, self._last,
                          body.get("progress_percentage"))
            return False

        await self.poll_until(policy, poll, finished, f"the bulk upload of dataset {self.dataset_id}")
        return self._event(EVENT_DONE, f"Bulk upload {self._last}")

    def timeout_event(self, err: PollTimeout) -> dict[str, Any]:
        """The deadline passed while the job was running."""
        return self._event(EVENT_TIMEOUT, f"Bulk upload of dataset {self.dataset_id} still "
                           f"{self._last or 'not visible'} at the deadline")

    def failed_event(self, err: PollFailed) -> dict[str, Any]:
        """Polling kept failing with transient errors."""
        return self._event(EVENT_ERROR, f"Polling the bulk upload failed {err.failures} times in a row; last "
                           f"error: {err.error}")

    def error_event(self, err: Exception) -> dict[str, Any]:
        """No job (404 after the grace period), a non-transient answer, or a bug."""
        if isinstance(err, BriaNotFoundError):
            return self._event(EVENT_ERROR, f"No bulk upload job for dataset {self.dataset_id}: {err}")
        if isinstance(err, BriaError):
            return self._event(EVENT_ERROR, f"Polling the bulk upload failed: {err}")
        self.log.exception("Unexpected error while polling the bulk upload of dataset %s", self.dataset_id)
        return self._event(EVENT_ERROR, f"Unexpected {type(err).__name__} while polling the bulk upload of dataset "
                           f"{self.dataset_id}: {err}")
