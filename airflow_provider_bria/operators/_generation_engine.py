"""Running many v2 generation jobs: rate-limited submissions, bounded concurrency, polling, collection.

:class:`JobRunner` is shared by the generation operators. Each work item goes through

1. **resume** — if a previous try already submitted this item (its request id was saved next to the output),
   ask the status service first and only resubmit when that job is gone or failed;
2. **submit** — one rate-limited ``POST`` (never retried blindly: a 5xx or a dropped connection is reported
   as a failure of that item, because the job may exist and a resubmission could pay twice);
3. **wait** — poll ``/v2/status`` every ``poll_interval`` seconds until the job ends or ``timeout`` passes
   (transient polling errors are tolerated);
4. **finish** — the operator's callback, e.g. download the image into the output folder.

Failures of single items are collected as JSON-safe dicts, so the operator can keep every success and raise
one :class:`~airflow_provider_bria.exceptions.BriaGenerationError` listing what failed. Errors that would make
every item fail (bad token, unknown model, client-side input errors) stop the batch at once and are raised
as they are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.exceptions import (
    BriaAPIError,
    BriaAuthError,
    BriaError,
    BriaInputError,
    BriaModerationError,
    BriaNotFoundError,
    BriaRateLimitError,
    BriaServerError,
    BriaTransportError,
    BriaValidationError,
)
from airflow_provider_bria.operators._generation_plan import WorkItem
from airflow_provider_bria.operators._outputs import OutputValidationError
from airflow_provider_bria.responses import warn_unexpected_status

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.operators._rate_limit import RateLimiter
    from airflow_provider_bria.responses import V2Response

log = logging.getLogger(__name__)

#: Consecutive failed status polls of one job tolerated before giving up on it (the hook already retries).
MAX_CONSECUTIVE_POLL_ERRORS = 5

Record = dict[str, Any]
Failure = dict[str, Any]


class ItemFailed(BriaError):
    """One item could not be produced (internal: becomes an entry of ``BriaGenerationError.failures``).

    :param kind: short machine-readable reason (``moderation``, ``job_failed``, ``timeout``...).
    :param message: human-readable reason.
    :param request_id: the Bria request id, when a job exists.
    :param status_code: HTTP status of the failing call, if any.
    """

    def __init__(self, kind: str, message: str, *, request_id: str | None = None,
                 status_code: int | None = None) -> None:
        self.kind = kind
        self.request_id = request_id
        self.status_code = status_code
        super().__init__(message)


class _Aborted(Exception):
    """The batch was stopped (a fatal error happened in another item)."""


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


def failure_entry(item: WorkItem, err: BaseException, *, name: str | None = None) -> Failure:
    """The JSON-safe description of a failed item.

    :param item: the work item.
    :param err: what went wrong.
    :param name: the output file name, if the operator writes one.
    """
    entry: Failure = {
        "prompt": item.prompt,
        "seed": item.seed,
        "index": item.index,
        "name": name or item.stem,
        "kind": "error",
        "reason": str(err),
        "request_id": None,
        "status_code": None,
    }
    if item.structured_prompt and not item.prompt:
        entry["structured_prompt"] = item.structured_prompt[:200]
    if isinstance(err, ItemFailed):
        entry.update(kind=err.kind, request_id=err.request_id, status_code=err.status_code)
    elif isinstance(err, BriaModerationError):
        entry.update(kind="moderation", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaRateLimitError):
        entry.update(kind="rate_limited", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaAuthError):
        entry.update(kind="auth", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaValidationError):
        entry.update(kind="rejected", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaTransportError | BriaServerError):
        entry.update(kind="submission_unknown", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, OutputValidationError | OSError):
        entry.update(kind="output")
    elif isinstance(err, _Aborted):
        entry.update(kind="not_attempted")
    elif isinstance(err, BriaAPIError):
        entry.update(status_code=err.status_code, request_id=err.request_id)
    return entry


#: Failure kinds a retry cannot fix: the server refused the request or its content for good.
PERMANENT_KINDS = frozenset({"moderation", "rejected", "auth"})


def job_failure(response: V2Response) -> ItemFailed:
    """The :class:`ItemFailed` for a job that ended without a result.

    :param response: the terminal status response.
    """
    if response.status is JobStatus.NOT_FOUND:
        return ItemFailed("expired", f"request {response.request_id} is unknown or expired (404 NOT_FOUND)",
                          request_id=response.request_id)
    text = response.error_message or "no error details"
    code = (response.error or {}).get("code")
    kind = "moderation" if str(code) == "422" or "moderation" in text.lower() else "job_failed"
    return ItemFailed(kind, f"job ended in {response.status.value}: {text}", request_id=response.request_id,
                      status_code=code if isinstance(code, int) else None)


def is_fatal(err: BaseException) -> bool:
    """Whether an error means the whole batch is pointless (every other item would fail the same way).

    :param err: the error.
    """
    if isinstance(err, ItemFailed | _Aborted | OutputValidationError | OSError):
        return False
    if isinstance(err, BriaAuthError | BriaNotFoundError | BriaInputError):
        return True
    return not isinstance(err, BriaAPIError)


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
            raise _Aborted("not attempted: the batch was stopped by an earlier error")

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
        """Poll a job until it ends; return the terminal response.

        :param item: the work item (for messages).
        :param response: the submission response.
        :raises ItemFailed: on timeout or repeated polling errors.
        """
        if response.is_terminal:
            return response
        handle = response.status_url or response.request_id
        if not handle:
            raise ItemFailed("submission_unknown", "the submission returned neither request_id nor status_url")
        deadline = time.monotonic() + self.timeout
        errors = 0
        seen: set[str] = set()
        while True:
            if self.cancelled.wait(self.poll_interval):
                raise _Aborted(f"stopped while waiting for request {response.request_id}")
            try:
                status = self.hook.get_status(handle)
            except (BriaServerError, BriaTransportError, BriaRateLimitError) as err:
                errors += 1
                log.warning("Status poll %d for request %s failed: %s", errors, response.request_id, err)
                if errors >= MAX_CONSECUTIVE_POLL_ERRORS:
                    raise ItemFailed("polling", f"status polling failed {errors} times in a row: {err}",
                                     request_id=response.request_id) from None
            else:
                errors = 0
                warn_unexpected_status(status, seen, log)
                if status.is_terminal:
                    if not status.request_id:
                        status.request_id = response.request_id
                    return status
            if time.monotonic() >= deadline:
                raise ItemFailed("timeout", f"job not finished after {self.timeout:g} s (request "
                                 f"{response.request_id}; a retry resumes it)", request_id=response.request_id)

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

        def one(item: WorkItem) -> tuple[WorkItem, Any, Failure | None]:
            rec, fail = self._guard(item, lambda: (self._check_cancel(), func(item))[1])
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
