"""The generation base: one ``execute``, deferral and ``execute_complete`` for the four generation operators.

:class:`GenerationBase` runs plan -> output folder -> existing outputs -> model check -> jobs (run, or submit
and defer) -> conclusion; each operator supplies only its plan and requests (:meth:`GenerationBase._plan`,
:meth:`~GenerationBase._submit`, :meth:`~GenerationBase._finish`, and the few hooks documented on the class).
File outputs and their sidecars are in :mod:`._generation_files`; the job runner in :mod:`._generation_engine`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bria._compat import conf
from airflow_provider_bria.exceptions import (
    BriaAPIError,
    BriaGenerationError,
    BriaGenerationRejectedError,
    BriaInputError,
)
from airflow_provider_bria.operators._output_limits import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_PIXELS,
)
from airflow_provider_bria.operators.base import BriaBaseOperator, Number, lazy_reexports

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.operators._generation_engine import JobRunner, Submitted
    from airflow_provider_bria.operators._generation_failures import Failure
    from airflow_provider_bria.operators._generation_plan import Batch as Batch
    from airflow_provider_bria.operators._generation_plan import WorkItem
    from airflow_provider_bria.operators._outputs import OutputFolder
    from airflow_provider_bria.responses import V2Response

log = logging.getLogger(__name__)

#: ``Batch`` lives with the work items it holds (``_generation_plan``, imported when a task runs, not at parse).
__getattr__ = lazy_reexports("airflow_provider_bria.operators._generation_plan", ["Batch"])

_DOWNLOAD_ATTEMPTS = 3
#: Default of ``max_requests``: paid generation requests one task may plan.
DEFAULT_MAX_REQUESTS = 1000
#: Base delay (seconds) between download attempts of one output (grows linearly, capped at 5 s).
DOWNLOAD_RETRY_DELAY = 2.0


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` (the Airflow-wide default of ``deferrable``)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def positive(value: Any, name: str) -> float:
    """A positive number of seconds (a ``timedelta`` is accepted).

    :param value: the value.
    :param name: the argument name, for the message.
    """
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise BriaInputError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def download_output(hook: BriaHook, folder: OutputFolder, name: str, url: str | None, request_id: str | None, *,
                    max_bytes: int, timeout: float, check: Callable[[bytes | None], Any] | None = None,
                    trusted: bool = True) -> tuple[int, bytes | None]:
    """Stream ``url`` into ``folder/name`` (atomic-ish), retrying interrupted streams.

    Bounded by ``max_bytes`` and ``timeout`` (all attempts together); a file over a limit
    (:class:`~airflow_provider_bria.operators._outputs.OutputLimitError`: too large, too many pixels, too slow)
    is not downloaded again.

    :param trusted: ``False`` for a URL read back from a file: it never gets the api_token.
    """
    from airflow_provider_bria.operators._generation_failures import ItemFailed
    from airflow_provider_bria.operators._outputs import OutputLimitError, OutputValidationError, bounded_chunks

    if not url:
        raise ItemFailed("job_failed", "the job completed without an output URL", request_id=request_id)
    last: BaseException | None = None
    deadline = time.monotonic() + timeout
    for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
        try:
            response = hook.open_download(url, trusted=trusted)
            try:
                chunks = bounded_chunks(response, name=name, max_bytes=max_bytes, deadline=deadline)
                return folder.write(name, chunks, check=check, keep_bytes=check is not None)
            finally:
                response.close()
        except ItemFailed:
            raise
        except OutputLimitError as err:  # a bomb, an oversized or too slow file: it would be the same again
            raise ItemFailed("output", f"download of {name} rejected: {err}", request_id=request_id) from None
        except BriaInputError as err:  # a malformed URL (or redirect): retrying cannot help
            raise ItemFailed("download", f"download of {name} refused: {err}", request_id=request_id) from None
        except Exception as err:  # noqa: BLE001 - interrupted stream, HTTP error, store error: retried below
            last = err
            code = getattr(err, "status_code", None)
            if isinstance(err, BriaAPIError) and code is not None and 400 <= code < 500 and code != 429:
                # the URL itself is unusable (expired pre-signed URL, 403, 404): retrying it cannot help
                raise ItemFailed("download", f"download of {name} failed: {err}", request_id=request_id,
                                 status_code=code) from None
            log.warning("Download of %s failed (attempt %d/%d): %s", name, attempt, _DOWNLOAD_ATTEMPTS, err)
            if attempt < _DOWNLOAD_ATTEMPTS and not isinstance(err, OutputValidationError):
                time.sleep(min(DOWNLOAD_RETRY_DELAY * attempt, 5.0))
    raise ItemFailed("download", f"download of {name} failed: {last}", request_id=request_id)


def event_state(event: Any) -> dict[str, Any]:
    """Validate a trigger event and return the resume state it carries."""
    from airflow_provider_bria.waiting.events import JOB_EVENTS, validate_event

    return validate_event(event, JOB_EVENTS)["context"]  # type: ignore[no-any-return]


def resumed_jobs(event: Any, pending: Sequence[dict[str, Any]]) -> tuple[list[Submitted], list[Any]]:
    """Split a (validated) event's jobs: finished ones, and (item, ItemFailed) for unfinished ones."""
    from airflow_provider_bria.operators._generation_engine import Submitted
    from airflow_provider_bria.operators._generation_failures import ItemFailed
    from airflow_provider_bria.operators._generation_plan import WorkItem
    from airflow_provider_bria.responses import V2Response

    outcomes = event.get("outcomes") or {}
    done: list[Submitted] = []
    unfinished: list[Any] = []
    for entry in pending:
        item = WorkItem.from_json(entry["item"])
        previous = V2Response.from_json(entry["response"])
        job = Submitted(item, previous)
        outcome = outcomes.get(job.handle)
        if outcome is None:
            kind = "timeout" if event["status"] == "timeout" else "polling"
            unfinished.append((item, ItemFailed(kind, f"job did not end: {event.get('message')} (a retry "
                                                "resumes it)", request_id=previous.request_id)))
            continue
        response = V2Response.from_json(outcome)
        response.request_id = response.request_id or previous.request_id
        done.append(Submitted(item, response))
    return done, unfinished


class GenerationBase(BriaBaseOperator):
    """What every generation operator does: knobs, ``execute`` (run or defer), ``execute_complete``, conclusion.

    A subclass implements :meth:`_plan` (validate, check the spend, plan the work items), :meth:`_submit` (one
    paid request) and :meth:`_finish` (a completed job into a record), and may override :meth:`_files`,
    :meth:`_existing`, :meth:`_produce`, :meth:`_order`, :meth:`_flat` and :meth:`_shape`.

    :param model_id: the tailored model (templated in the subclasses).
    :param seed: base seed (``None``: derived per item).
    :param output_path: folder path or ``ObjectStoragePath`` URI; ``None``: the default folder.
    :param output_conn_id: Airflow connection of the output store when not in the URI.

    :param max_concurrency: jobs in flight at once (worker threads).
    :param requests_per_minute: client-side limit of generation submissions (``None``: no limit).
    :param poll_interval: seconds between status polls of a job.
    :param timeout: seconds to wait for a job after submitting it (deferrable: after deferring).
    :param fail_on_error: raise :class:`~airflow_provider_bria.exceptions.BriaGenerationError` when items fail.
    :param check_model: check the model before spending any generation request.
    :param max_download_bytes: byte cap of one downloaded output (default 50 MiB per image, 1 GiB per video).
    :param download_timeout: overall deadline of one output's download in seconds, attempts included.
    :param max_output_pixels: pixel budget of one generated image, checked from its header before decoding.
    :param max_requests: the most paid generation requests one task may plan (templated); checked before any
        request, so a huge prompts file fails with the count instead of spending it.
    """

    template_numbers: ClassVar[Mapping[str, Number]] = {
        "max_concurrency": Number(int, 1, 64),
        "poll_interval": Number(float, 0, exclusive_minimum=True),
        "timeout": Number(float, 0, exclusive_minimum=True),
        "max_requests": Number(int, 1),
        "max_download_bytes": Number(int, 1),
        "download_timeout": Number(float, 0, exclusive_minimum=True),
        "max_output_pixels": Number(int, 1),
    }
    _kind = "image"
    _api = "v2"
    _what = "outputs"
    _default_max_bytes = DEFAULT_MAX_IMAGE_BYTES
    #: Submit, then wait in the triggerer (an argument of the operators that support it).
    deferrable: bool = False

    def __init__(
        self,
        *,
        model_id: int | str,
        seed: int | str | None = None,
        output_path: str | None = None,
        output_conn_id: str | None = None,
        max_concurrency: int = 4,
        requests_per_minute: float | None = None,
        poll_interval: float = 1.0,
        timeout: float = 600.0,
        fail_on_error: bool = True,
        check_model: bool = True,
        max_download_bytes: int | None = None,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        max_output_pixels: int = DEFAULT_MAX_PIXELS,
        max_requests: int | str = DEFAULT_MAX_REQUESTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_id = model_id
        self.seed = seed
        self.output_path = output_path
        self.output_conn_id = output_conn_id
        self.max_download_bytes = self.number_arg(
            "max_download_bytes", self._default_max_bytes if max_download_bytes is None else max_download_bytes)
        self.download_timeout = self.number_arg("download_timeout", download_timeout)
        self.max_output_pixels = self.number_arg("max_output_pixels", max_output_pixels)
        self.max_requests = self.number_arg("max_requests", max_requests)
        self.max_concurrency = self.number_arg("max_concurrency", max_concurrency)
        if requests_per_minute is not None:  # the rate-limit module is imported only when a limit is set
            from airflow_provider_bria.operators._rate_limit import validate_requests_per_minute

            requests_per_minute = validate_requests_per_minute(requests_per_minute)
        self.requests_per_minute = requests_per_minute
        self.poll_interval = self.number_arg("poll_interval", poll_interval)
        self.timeout = self.number_arg("timeout", timeout)
        self.fail_on_error = bool(fail_on_error)
        self.check_model = bool(check_model)
        self._runner: JobRunner | None = None

    # ------------------------------------------------------------------ what a subclass supplies

    def _plan(self, model_id: int) -> list[WorkItem]:
        """Validate the inputs, check the spend (:meth:`_check_spend`) and plan the work items; no request."""
        raise NotImplementedError

    def _submit(self, model_id: int, item: WorkItem) -> V2Response:
        """Send the one paid request of ``item``."""
        raise NotImplementedError

    def _finish(self, folder: OutputFolder | None, model_id: int, item: WorkItem, response: V2Response) -> Any:
        """Turn a completed job into the item's record (e.g. download its output)."""
        raise NotImplementedError

    def _stores(self) -> bool:
        """Whether the batch has an output folder (always, but for structured prompts without ``output_path``)."""
        return True

    def _files(self, item: WorkItem) -> list[str]:
        """The output files of ``item`` (besides its sidecar)."""
        return []

    def _failure_name(self, item: WorkItem) -> str | None:
        """The name a failure entry of ``item`` shows (its main output file)."""
        files = self._files(item)
        return files[0] if files else None

    def _existing(self, batch: Batch) -> dict[str, Any]:
        """Records of the items an earlier try already produced, by stem."""
        return {}

    def _order(self, items: Sequence[WorkItem]) -> list[str]:
        """The keys of the results, in output order."""
        return [i.stem for i in items]

    def _flat(self, records: dict[str, Any]) -> dict[str, Any]:
        """The records by the keys of :meth:`_order`."""
        return records

    def _shape(self, results: list[Any]) -> Any:
        """What ``execute`` returns, from the results in order."""
        return results

    # ------------------------------------------------------------------ execute, deferral, execute_complete

    def execute(self, context: Context) -> Any:
        """Plan, skip existing outputs, check the model, then produce the rest (or defer)."""
        from airflow_provider_bria.operators._generation_plan import Batch, as_model_id

        model_id = as_model_id(self.model_id)
        batch = self._open(context, Batch(model_id, self._plan(model_id)))
        todo = [i for i in batch.items if i.stem not in batch.records]
        self.log.info("%d %s planned for model %s: %d already exist, %d to generate", len(batch.items),
                      self._what, model_id, len(batch.records), len(todo))
        failures: list[Failure] = []
        if todo:
            self._check_model(model_id)
            failures = self._produce(batch, todo)
        order, records = self._order(batch.items), self._flat(batch.records)
        return self._shape(self._conclude(context, order, records, failures, batch.where))

    def _open(self, context: Context, batch: Batch) -> Batch:
        """Open the output folder (probed before any paid request) and read what an earlier try left."""
        from airflow_provider_bria.operators._sidecar import name_of

        if not self._stores():
            return batch
        batch.folder = self._folder(context, self.output_path, self.output_conn_id)
        context["ti"].xcom_push(key="output_path", value=batch.folder.uri)
        batch.names = batch.folder.names(clean=[n for i in batch.items for n in (*self._files(i), name_of(i.stem))])
        batch.records = self._existing(batch)
        return batch

    def _batch_runner(self, batch: Batch) -> JobRunner:
        """The job runner of a batch: this operator's requests, resuming and recording jobs in its folder."""
        from airflow_provider_bria.operators._generation_files import save_submitted, saved_request_id

        folder, model_id = batch.folder, batch.model_id
        extra: dict[str, Any] = {}
        if folder is not None:
            extra = {"resume": lambda it: saved_request_id(folder, batch.names, it),
                     "on_submitted": lambda it, resp: save_submitted(folder, it, resp, model_id)}
        return self._runner_for(submit=lambda it: self._submit(model_id, it), name_of=self._failure_name,
                                finish=lambda it, resp: self._finish(folder, model_id, it, resp), **extra)

    def _produce(self, batch: Batch, todo: list[WorkItem]) -> list[Failure]:
        """Produce ``todo`` into ``batch.records``; deferrable: submit, finish what ended at once, defer the rest."""
        runner = self._batch_runner(batch)
        if not self.deferrable:
            done, failures = runner.run(todo)
            batch.records.update(done)
            return failures
        jobs, failures = runner.submit_all(todo)
        jobs = runner.poll_once(jobs) if runner.fatal is None else jobs
        done, more = runner.finish_all([j for j in jobs if j.response.is_terminal])
        batch.records.update(done)
        failures += more
        pending = [j for j in jobs if not j.response.is_terminal]
        if pending and runner.fatal is None and batch.folder is not None:
            self._defer_jobs(pending, records=batch.records, failures=failures, order=self._order(batch.items),
                             folder=batch.folder.uri)
        return failures

    def execute_complete(self, context: Context, event: Any = None, **_: Any) -> Any:
        """Resume after :class:`~airflow_provider_bria.triggers.job.BriaJobTrigger`: finish the ended jobs."""
        from airflow_provider_bria.operators._generation_failures import failure_entry
        from airflow_provider_bria.operators._generation_plan import Batch, WorkItem, as_model_id
        from airflow_provider_bria.operators._outputs import OutputFolder

        state = event_state(event)
        folder = OutputFolder(str(state["folder"]), conn_id=self.output_conn_id)
        batch = Batch(as_model_id(self.model_id), [], folder, records=dict(state.get("records") or {}))
        done_jobs, unfinished = resumed_jobs(event, state["pending"])
        failures = list(state.get("failures") or [])
        failures += [failure_entry(item, err, name=self._failure_name(item)) for item, err in unfinished]
        done, more = self._batch_runner(batch).finish_all(done_jobs)
        batch.records.update(done)
        order = state.get("order") or [WorkItem.from_json(p["item"]).stem for p in state["pending"]]
        return self._shape(self._conclude(context, order, batch.records, failures + more, folder.uri))

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _required(folder: OutputFolder | None) -> OutputFolder:
        """The batch's output folder, for operators whose outputs are files (they always have one)."""
        if folder is None:  # pragma: no cover - _stores() is True for every file-output operator
            raise BriaInputError("this operator needs an output folder")
        return folder

    def _check_spend(self, planned: int, detail: str) -> None:
        """Refuse a plan of more paid requests than ``max_requests`` (before any request is sent).

        :param planned: paid generation requests the inputs would cost.
        :param detail: how they add up, for the message.
        :raises BriaInputError: when ``planned`` exceeds ``max_requests``.
        """
        from airflow_provider_bria.operators._generation_plan import as_int

        limit = as_int(self.max_requests, "max_requests", minimum=1)
        if planned > limit:
            raise BriaInputError(
                f"The inputs would cost {planned} paid generation requests ({detail}), more than "
                f"max_requests={limit}: nothing was submitted. Raise max_requests if this is intended, or split "
                "the prompts over several tasks"
            )

    def _check_model(self, model_id: int) -> None:
        if self.check_model:
            from airflow_provider_bria.operators._generation_inputs import check_model_ready

            check_model_ready(self.hook, model_id, api=self._api)

    def _folder(self, context: Context, output_path: str | None, output_conn_id: str | None) -> OutputFolder:
        from airflow_provider_bria.operators._generation_inputs import default_output_path
        from airflow_provider_bria.operators._outputs import OutputFolder

        location = output_path if output_path and str(output_path).strip() else default_output_path(context)
        folder = OutputFolder(str(location), conn_id=output_conn_id)
        folder.probe()  # before any paid request: a bad output_path must cost nothing
        self.log.info("Output folder: %s", folder.uri)
        return folder

    def _runner_for(self, **kwargs: Any) -> JobRunner:
        from airflow_provider_bria.operators._generation_engine import JobRunner
        from airflow_provider_bria.operators._rate_limit import limiter_for

        self._runner = JobRunner(
            hook=self.hook,
            limiter=limiter_for(self.hook, self.requests_per_minute),
            max_concurrency=self.max_concurrency,
            poll_interval=self.poll_interval,
            timeout=self.timeout,
            **kwargs,
        )
        return self._runner

    def _download(self, folder: OutputFolder, name: str, url: str | None, request_id: str | None,
                  check: Callable[[bytes | None], Any] | None = None, *,
                  trusted: bool = True) -> tuple[int, bytes | None]:
        """:func:`download_output` with this operator's hook and limits."""
        return download_output(self.hook, folder, name, url, request_id, max_bytes=self.max_download_bytes,
                               timeout=self.download_timeout, check=check, trusted=trusted)

    def _conclude(self, context: Context, order: Sequence[str], records: dict[str, Any],
                  failures: list[dict[str, Any]], where: str | None) -> list[Any]:
        from airflow_provider_bria.operators._generation_failures import PERMANENT_KINDS, summary

        results = [records[s] for s in order if s in records]
        fatal = self._runner.fatal if self._runner is not None else None
        if failures or fatal is not None:
            ti = context["ti"]
            ti.xcom_push(key="outputs", value=results)
            ti.xcom_push(key="failures", value=failures)
        if fatal is not None:
            self.log.error("Stopped after a fatal error; %d output(s) kept, %d not produced", len(results),
                           len(order) - len(results))
            raise fatal
        if failures:
            message = summary(failures, len(order), len(results), self._what, where)
            if self.fail_on_error:
                permanent = all(f.get("kind") in PERMANENT_KINDS for f in failures)
                cls = BriaGenerationRejectedError if permanent else BriaGenerationError
                raise cls(message, failures=failures, succeeded=len(results))
            self.log.warning("%s", message)
        self.log.info("Done: %d %s (%d failed)", len(results), self._what, len(failures))
        return results

    def _defer_jobs(self, jobs: Sequence[Submitted], **state: Any) -> None:
        """Defer until the jobs end; the resume state travels in the trigger and comes back in its event."""
        from airflow_provider_bria._state import JOB_RESUME_STATE, stamp
        from airflow_provider_bria.triggers.job import BriaJobTrigger

        handles = [j.handle for j in jobs]
        self.log.info("Deferring until %d job(s) end (deadline in %g s)", len(handles), self.timeout)
        state["pending"] = [{"item": j.item.to_json(), "response": j.response.to_json()} for j in jobs]
        self.defer(
            trigger=BriaJobTrigger(
                handles,
                end_time=time.time() + self.timeout,
                bria_conn_id=self.bria_conn_id,
                poll_interval=self.poll_interval,
                hook_params=self.hook_params,
                context=stamp(JOB_RESUME_STATE, state),
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def on_kill(self) -> None:
        """Stop submitting and polling (Bria has no endpoint to cancel a v2 job already submitted)."""
        if self._runner is not None:
            self._runner.cancelled.set()
