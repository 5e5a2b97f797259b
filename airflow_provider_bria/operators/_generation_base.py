"""Shared machinery of the generation operators: common knobs, output folder, downloads, deferral, results."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bria._compat import conf
from airflow_provider_bria._state import JOB_RESUME_STATE, stamp
from airflow_provider_bria.exceptions import (
    BriaGenerationError,
    BriaGenerationRejectedError,
    BriaInputError,
)
from airflow_provider_bria.operators._generation_engine import PERMANENT_KINDS, ItemFailed, JobRunner, Submitted
from airflow_provider_bria.operators._generation_plan import WorkItem, as_int
from airflow_provider_bria.operators._outputs import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_PIXELS,
    OutputLimitError,
    OutputValidationError,
    bounded_chunks,
)
from airflow_provider_bria.operators._rate_limit import limiter_for, validate_requests_per_minute
from airflow_provider_bria.operators.base import BriaBaseOperator, Number

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_bria.operators._outputs import OutputFolder
    from airflow_provider_bria.responses import V2Response

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


def optional_bool(value: Any, name: str) -> bool | None:
    """Check an optional flag (``None`` leaves Bria's default).

    :param value: ``None`` or a bool.
    :param name: the argument name, for the message.
    """
    if value is None or isinstance(value, bool):
        return value
    raise BriaInputError(f"{name} must be True, False or None, got {value!r}")


def _summary(failures: Sequence[dict[str, Any]], total: int, kept: int, what: str, where: str | None) -> str:
    kinds = ", ".join(f"{n} {k}" for k, n in Counter(f["kind"] for f in failures).most_common())
    lines = [f"{len(failures)} of {total} {what} failed ({kinds}); {kept} kept" + (f" in {where}" if where else "")]
    for f in failures[:20]:
        label = repr(f.get("prompt")) if f.get("prompt") else "<structured prompt>"
        rid = f" [request_id={f['request_id']}]" if f.get("request_id") else ""
        lines.append(f"  - {label} #{f.get('index')} seed={f.get('seed')}: {f['kind']}: {f['reason']}{rid}")
    if len(failures) > 20:
        lines.append(f"  ... and {len(failures) - 20} more (XCom key 'failures')")
    return "\n".join(lines)


class GenerationBase(BriaBaseOperator):
    """Shared machinery: validation of the common knobs, output folder, downloads, deferral, conclusions.

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

    def __init__(
        self,
        *,
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
        self.max_download_bytes = self.number_arg(
            "max_download_bytes", self._default_max_bytes if max_download_bytes is None else max_download_bytes)
        self.download_timeout = self.number_arg("download_timeout", download_timeout)
        self.max_output_pixels = self.number_arg("max_output_pixels", max_output_pixels)
        self.max_requests = self.number_arg("max_requests", max_requests)
        self.max_concurrency = self.number_arg("max_concurrency", max_concurrency)
        self.requests_per_minute = validate_requests_per_minute(requests_per_minute)
        self.poll_interval = self.number_arg("poll_interval", poll_interval)
        self.timeout = self.number_arg("timeout", timeout)
        self.fail_on_error = bool(fail_on_error)
        self.check_model = bool(check_model)
        self._runner: JobRunner | None = None

    # ------------------------------------------------------------------ helpers

    def _check_spend(self, planned: int, detail: str) -> None:
        """Refuse a plan of more paid requests than ``max_requests`` (before any request is sent).

        :param planned: paid generation requests the inputs would cost.
        :param detail: how they add up, for the message.
        :raises BriaInputError: when ``planned`` exceeds ``max_requests``.
        """
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
                  check: Any = None, *, trusted: bool = True) -> tuple[int, bytes | None]:
        """Stream ``url`` into ``folder/name`` (atomic-ish), retrying interrupted streams.

        Bounded by ``max_download_bytes`` and ``download_timeout`` (all attempts together); a file over a
        limit (:class:`~airflow_provider_bria.operators._outputs.OutputLimitError`: too large, too many pixels,
        too slow) is not downloaded again.

        :param trusted: ``False`` for a URL read back from a file: it never gets the api_token.
        """
        if not url:
            raise ItemFailed("job_failed", "the job completed without an output URL", request_id=request_id)
        last: BaseException | None = None
        deadline = time.monotonic() + self.download_timeout
        for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
            try:
                response = self.hook.open_download(url, trusted=trusted)
                try:
                    chunks = bounded_chunks(response, name=name, max_bytes=self.max_download_bytes,
                                            deadline=deadline)
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
                from airflow_provider_bria.exceptions import BriaAPIError

                last = err
                code = getattr(err, "status_code", None)
                if isinstance(err, BriaAPIError) and code is not None and 400 <= code < 500 and code != 429:
                    # the URL itself is unusable (expired pre-signed URL, 403, 404): retrying it cannot help
                    raise ItemFailed("download", f"download of {name} failed: {err}", request_id=request_id,
                                     status_code=code) from None
                self.log.warning("Download of %s failed (attempt %d/%d): %s", name, attempt, _DOWNLOAD_ATTEMPTS,
                                 err)
                if attempt < _DOWNLOAD_ATTEMPTS and not isinstance(err, OutputValidationError):
                    time.sleep(min(DOWNLOAD_RETRY_DELAY * attempt, 5.0))
        raise ItemFailed("download", f"download of {name} failed: {last}", request_id=request_id)

    def _conclude(self, context: Context, order: Sequence[str], records: dict[str, Any],
                  failures: list[dict[str, Any]], where: str | None) -> list[dict[str, Any]]:
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
            message = _summary(failures, len(order), len(results), self._what, where)
            if self.fail_on_error:
                permanent = all(f.get("kind") in PERMANENT_KINDS for f in failures)
                cls = BriaGenerationRejectedError if permanent else BriaGenerationError
                raise cls(message, failures=failures, succeeded=len(results))
            self.log.warning("%s", message)
        self.log.info("Done: %d %s (%d failed)", len(results), self._what, len(failures))
        return results

    def _defer_jobs(self, jobs: Sequence[Submitted], **state: Any) -> None:
        """Defer until the jobs end; the resume state travels in the trigger and comes back in its event."""
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

    @staticmethod
    def _event_state(event: Any) -> dict[str, Any]:
        """Validate a trigger event and return the resume state it carries."""
        from airflow_provider_bria.waiting.events import JOB_EVENTS, validate_event

        state: dict[str, Any] = validate_event(event, JOB_EVENTS)["context"]
        return state

    @staticmethod
    def _resumed_jobs(event: Any, pending: Sequence[dict[str, Any]]) -> tuple[list[Submitted], list[Any]]:
        """Split a (validated) event's jobs: finished ones, and (item, ItemFailed) for unfinished ones."""
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

    def on_kill(self) -> None:
        """Stop submitting and polling (Bria has no endpoint to cancel a v2 job already submitted)."""
        if self._runner is not None:
            self._runner.cancelled.set()


class OutputsMixin:
    """Records and sidecars of file outputs (``<stem><ext>`` + ``<stem>.json``)."""

    _ext = ".png"

    def _existing_record(self, folder: OutputFolder, item: WorkItem) -> dict[str, Any]:
        side = folder.read_json(f"{item.stem}.json") or {}
        if side.get("status") != "completed":
            side = {}
        return {
            "uri": folder.uri_of(item.stem + self._ext),
            "seed": side.get("seed", item.seed),
            "structured_prompt": side.get("structured_prompt"),
            "request_id": side.get("request_id"),
            "prompt": item.prompt,
            "index": item.index,
            "existing": True,
        }

    def _existing_records(self, folder: OutputFolder, items: Sequence[WorkItem]) -> dict[str, dict[str, Any]]:
        """Records of the items whose output exists, by stem (sidecars read in parallel: object stores are slow).

        :param folder: the output folder.
        :param items: the items whose output exists.
        """
        if len(items) <= 1:
            return {i.stem: self._existing_record(folder, i) for i in items}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(items)), thread_name_prefix="bria-sidecar") as pool:
            return dict(zip([i.stem for i in items], pool.map(lambda i: self._existing_record(folder, i), items),
                            strict=True))

    @staticmethod
    def _saved_handle(folder: OutputFolder, names: set[str], item: WorkItem) -> str | None:
        """The request id an earlier try saved for ``item`` (``None``: none, or not a valid request id).

        Only the request id is used: a sidecar is data anyone with write access to the folder can change, so
        its ``status_url`` is never contacted (the job is polled on the configured API origin).
        """
        from airflow_provider_bria.hooks._api_generation import request_id_of

        if f"{item.stem}.json" not in names:
            return None
        side = folder.read_json(f"{item.stem}.json") or {}
        # "submitted": an earlier try submitted the job; "completed": it finished but the file was not committed
        rid = side.get("request_id")
        if not isinstance(rid, str) or not rid:
            return None
        try:
            return request_id_of(rid)
        except BriaInputError:
            return None

    def _download_or_forget(self, folder: OutputFolder, item: WorkItem, name: str, url: str | None,
                            request_id: str | None, check: Any = None) -> tuple[int, bytes | None]:
        """Download an output; if its URL is unusable (4xx), forget the request so a retry submits again."""
        try:
            return self._download(folder, name, url, request_id, check=check)  # type: ignore[attr-defined]
        except ItemFailed as err:
            if err.status_code is not None and 400 <= err.status_code < 500:
                folder.write_json(f"{item.stem}.json", {"status": "url_unusable", "failed_request_id": request_id,
                                                         "prompt": item.prompt, "seed": item.seed})
            raise

    @staticmethod
    def _save_submitted(folder: OutputFolder, item: WorkItem, response: V2Response, model_id: int) -> None:
        folder.write_json(f"{item.stem}.json", {
            "status": "submitted", "request_id": response.request_id, "status_url": response.status_url,
            "model_id": model_id, "prompt": item.prompt, "input_structured_prompt": item.structured_prompt,
            "seed": item.seed, "index": item.index, "submitted_at": time.time(),
        })
