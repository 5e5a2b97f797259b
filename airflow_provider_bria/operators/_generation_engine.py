"""Running many v2 generation jobs: rate-limited submissions, bounded concurrency, polling, collection.

:class:`JobRunner` is shared by the generation operators. Each work item goes through

1. **resume** — if a previous try already submitted this item (its request id was saved next to the output),
   ask the status service first and only resubmit when that job is gone or failed;
2. **submit** — one rate-limited ``POST`` (never retried blindly: a 5xx or a dropped connection is reported
   as a failure of that item, because the job may exist and a resubmission could pay twice);
3. **wait** — poll ``/v2/status`` until the job ends or ``timeout`` passes: first after the shortest job of
   the batch so far, then every ``poll_interval`` seconds (:mod:`._generation_polling`; transient polling
   errors are tolerated);
4. **finish** — the operator's callback, e.g. download the image into the output folder.

Failures of single items are collected as JSON-safe dicts (:mod:`._generation_failures`), so the operator can
keep every success and raise one :class:`~airflow_provider_bria.exceptions.BriaGenerationError` listing what
failed. Errors that would make every item fail stop the batch at once and are raised as they are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.exceptions import BriaAPIError
from airflow_provider_bria.operators._generation_failures import (
    PERMANENT_KINDS,
    Aborted,
    Failure,
    ItemFailed,
    failure_entry,
    is_fatal,
    job_failure,
)
from airflow_provider_bria.operators._generation_plan import WorkItem
from airflow_provider_bria.operators._generation_polling import (
    MAX_CONSECUTIVE_POLL_ERRORS,
    PollCadence,
    wait_for_job,
)

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.operators._rate_limit import RateLimiter
    from airflow_provider_bria.responses import V2Response

__all__ = [
    "MAX_CONSECUTIVE_POLL_ERRORS",
    "PERMANENT_KINDS",
    "Failure",
    "ItemFailed",
    "JobRunner",
    "Record",
    "Submitted",
    "failure_entry",
    "is_fatal",
    "job_failure",
]

log = logging.getLogger(__name__)

Record = dict[str, Any]


@dataclass
class Submitted:
    """An item whose job was submitted (or resumed) and is not finished yet.

    :param item: the work item.
    :param response: the latest response for the job.
    """

    item: WorkItem
    response: V2Response

    @property
    def handle(self) -> str:
        """What to poll: the status URL when given, else the request id."""
        return str(self.response.status_url or self.response.request_id or "")


class JobRunner:
    """Submit, wait for and finish v2 jobs for many work items.

    :param hook: the Bria hook (its ``requests.Session`` is shared by the worker threads).
    :param limiter: rate limiter applied to submissions.
    :param submit: callable submitting one item, returning the submission response.
    :param finish: callable turning a completed job into a record (e.g. downloading the output).
    :param max_concurrency: jobs in flight at once (worker threads).
    :param poll_interval: seconds between status polls of one job.
    :param timeout: seconds to wait for one job after submitting it.
    :param resume: optional callable returning a saved request id/status URL for an item, or ``None``.
    :param on_submitted: optional callable called right after a successful submission (e.g. save the id).
    :param name_of: optional callable giving an item's output name, for failure entries.
    """

    def __init__(
        self,
        *,
        hook: BriaHook,
        limiter: RateLimiter,
        submit: Callable[[WorkItem], V2Response],
        finish: Callable[[WorkItem, V2Response], Record],
        max_concurrency: int = 4,
        poll_interval: float = 1.0,
        timeout: float = 600.0,
        resume: Callable[[WorkItem], str | None] | None = None,
        on_submitted: Callable[[WorkItem, V2Response], None] | None = None,
        name_of: Callable[[WorkItem], str] | None = None,
    ) -> None:
        self.hook = hook
        self.limiter = limiter
        self._submit = submit
        self._finish = finish
        self.max_concurrency = max(1, int(max_concurrency))
        self.poll_interval = float(poll_interval)
        self.cadence = PollCadence(self.poll_interval)
        self.timeout = float(timeout)
        self._resume = resume
        self._on_submitted = on_submitted
        self._name_of = name_of
        self.cancelled = threading.Event()
        self._fatal: BaseException | None = None
        self._lock = threading.Lock()
        self.submissions = 0
        self.resumed = 0

    # ------------------------------------------------------------------ building blocks

    def _check_cancel(self) -> None:
        if self.cancelled.is_set():
            raise Aborted("not attempted: the batch was stopped by an earlier error")

    def start(self, item: WorkItem) -> V2Response:
        """Resume the item's earlier job when possible, else submit it (rate-limited).

        :param item: the work item.
        """
        self._check_cancel()
        handle = self._resume(item) if self._resume else None
        if handle:
            try:
                previous = self.hook.get_status(handle)
            except BriaAPIError as err:
                log.info("Could not look up earlier request %s for %s (%s); submitting again", handle,
                         item.label(), err)
            else:
                if not previous.is_failure:
                    with self._lock:
                        self.resumed += 1
                    log.info("Resuming earlier request %s for %s (%s) instead of submitting again",
                             previous.request_id or handle, item.label(), previous.status.value)
                    if not previous.status_url and not previous.request_id:
                        previous.status_url = handle
                    return previous
                log.info("Earlier request %s for %s ended in %s; submitting again", handle, item.label(),
                         previous.status.value)
        self.acquire()
        try:
            response = self._submit(item)
        finally:
            self.limiter.release()  # the request is over: an account-wide slot counts from now for one window
        log.info("Submitted %s -> request %s (%s)", item.label(), response.request_id, response.status.value)
        if self._on_submitted is not None and not response.is_completed:
            self._on_submitted(item, response)
        return response

    def wait(self, item: WorkItem, response: V2Response) -> V2Response:
        """Poll a job until it ends (adaptive first check, see :class:`PollCadence`); return the terminal response.

        :param item: the work item (for messages).
        :param response: the submission response.
        :raises ItemFailed: on timeout or repeated polling errors.
        """
        return wait_for_job(self.hook, response, cadence=self.cadence, timeout=self.timeout,
                            cancelled=self.cancelled)

    def finish(self, item: WorkItem, response: V2Response) -> Record:
        """Turn a terminal response into a record, or raise :class:`ItemFailed` for a failed job.

        :param item: the work item.
        :param response: the terminal response.
        """
        if response.is_failure:
            raise job_failure(response)
        if not response.is_completed:
            raise ItemFailed("timeout", f"job still {response.status.value}", request_id=response.request_id)
        return self._finish(item, response)

    # ------------------------------------------------------------------ batch helpers

    def _guard(self, item: WorkItem, func: Callable[[], Any]) -> tuple[Any, Failure | None]:
        try:
            return func(), None
        except BaseException as err:  # noqa: BLE001 - sorted into per-item failures and fatal errors below
            if is_fatal(err) and not isinstance(err, KeyboardInterrupt | SystemExit):
                with self._lock:
                    if self._fatal is None:
                        self._fatal = err
                self.cancelled.set()
            elif isinstance(err, KeyboardInterrupt | SystemExit):
                self.cancelled.set()
                raise
            entry = failure_entry(item, err, name=self._name_of(item) if self._name_of else None)
            if entry["kind"] != "not_attempted":
                log.warning("Failed: %s: %s", item.label(), entry["reason"])
            return None, entry

    def _map(self, func: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
        if not values:
            return []
        if self.max_concurrency == 1 or len(values) == 1:
            try:
                return [func(v) for v in values]
            finally:
                self.limiter.close()
        self.hook.get_conn()  # resolve the connection and build the shared session before the threads start
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(values)),
                                thread_name_prefix="bria-gen") as pool:
            try:
                return list(pool.map(func, values))
            except BaseException:
                # e.g. the task's execution_timeout or a kill in the main thread: stop the workers quickly
                self.cancelled.set()
                raise
            finally:
                self.limiter.close()  # every request of the batch is over

    @property
    def fatal(self) -> BaseException | None:
        """The error that stopped the batch, if any (the caller re-raises it after keeping the successes)."""
        return self._fatal

    def acquire(self) -> None:
        """Wait for a rate-limit slot (for callers that make their own requests), unless the batch stopped."""
        self._check_cancel()
        if not self.limiter.acquire(self.cancelled):
            self._check_cancel()
        self._check_cancel()
        with self._lock:
            self.submissions += 1

    def run_each(
        self, items: Sequence[WorkItem], func: Callable[[WorkItem], Any]
    ) -> tuple[dict[str, Any], list[Failure]]:
        """Run ``func`` for every item with bounded concurrency, sorting errors like :meth:`run`.

        :param items: the work items.
        :param func: produces an item's record(s); it calls :meth:`acquire` before each billable request.
        """

        def produce(item: WorkItem) -> Any:
            self._check_cancel()
            return func(item)

        def one(item: WorkItem) -> tuple[WorkItem, Any, Failure | None]:
            rec, fail = self._guard(item, lambda: produce(item))
            return item, rec, fail

        return self._collect(self._map(one, items))

    # ------------------------------------------------------------------ whole batches

    def run(self, items: Sequence[WorkItem]) -> tuple[dict[str, Record], list[Failure]]:
        """Produce every item (submit, wait, finish) with bounded concurrency.

        :param items: the work items still to produce.
        :returns: records by item stem, and failures; re-raises a fatal error after the batch stopped.
        """

        def one(item: WorkItem) -> tuple[WorkItem, Any, Failure | None]:
            rec, fail = self._guard(item, lambda: self.finish(item, self.wait(item, self.start(item))))
            return item, rec, fail

        return self._collect(self._map(one, items))

    def submit_all(self, items: Sequence[WorkItem]) -> tuple[list[Submitted], list[Failure]]:
        """Submit (or resume) every item without waiting (deferrable mode, step 1).

        :param items: the work items.
        :returns: the submitted jobs and the failed submissions.
        """

        def one(item: WorkItem) -> tuple[WorkItem, Any, Failure | None]:
            resp, fail = self._guard(item, lambda: self.start(item))
            return item, resp, fail

        submitted: list[Submitted] = []
        failures: list[Failure] = []
        for item, resp, fail in self._map(one, items):
            if fail is not None:
                failures.append(fail)
            else:
                submitted.append(Submitted(item, resp))
        return submitted, failures

    def poll_once(self, jobs: Sequence[Submitted]) -> list[Submitted]:
        """Refresh the status of unfinished jobs once (errors keep the previous status).

        :param jobs: submitted jobs.
        """

        def one(job: Submitted) -> Submitted:
            if job.response.is_terminal or self.cancelled.is_set():
                return job
            try:
                status = self.hook.get_status(job.handle)
            except BriaAPIError as err:
                log.info("Status check of request %s failed (%s); will keep waiting", job.response.request_id, err)
                return job
            if not status.request_id:
                status.request_id = job.response.request_id
            if not status.status_url:
                status.status_url = job.response.status_url
            return Submitted(job.item, status)

        return self._map(one, jobs)

    def finish_all(self, jobs: Sequence[Submitted]) -> tuple[dict[str, Record], list[Failure]]:
        """Finish terminal jobs (download outputs...) with bounded concurrency.

        :param jobs: jobs whose response is terminal.
        """

        def one(job: Submitted) -> tuple[WorkItem, Any, Failure | None]:
            rec, fail = self._guard(job.item, lambda: self.finish(job.item, job.response))
            return job.item, rec, fail

        return self._collect(self._map(one, jobs))

    def _collect(self, results: list[tuple[WorkItem, Any, Failure | None]]) -> tuple[dict[str, Record], list[Failure]]:
        records: dict[str, Record] = {}
        failures: list[Failure] = []
        for item, rec, fail in results:
            if fail is not None:
                failures.append(fail)
            else:
                records[item.stem] = rec
        return records, failures
