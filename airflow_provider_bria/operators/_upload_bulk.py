"""The bulk strategy (advanced datasets): stage a zip, submit it once, poll the job.

:class:`BulkStrategy` (with its own knobs, :class:`BulkKnobs`) drives the steps below; what it gathers before the
wait travels through a deferral as :class:`BulkResumeState`, typed and versioned.

Bria allows one bulk attempt per dataset, and the submit call has no idempotency key. So:

* before submitting, the job status is read: if a job exists (any state) nothing is submitted again, the task
  only polls it. This is what makes an Airflow retry safe;
* an ambiguous submit failure (5xx, timeout) is reconciled by reading the status again before one more try;
* the zip gets a deterministic name (from the dataset id and the entry names) in ``staging_path``, so a retry
  that has to stage again overwrites the same object.

The public URL handed to Bria is ``staging_url`` + the zip name when given (object stores that cannot sign, a
local folder served over http), otherwise a pre-signed URL from the filesystem's ``sign()`` (S3, GCS...).
Signed URLs are credentials: they are never logged or returned.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_bria._state import STATE_VERSIONS, UPLOAD_RESUME_STATE, load, stamp
from airflow_provider_bria.contract import (
    ADVANCED_MAX_IMAGES,
    BulkUploadStatus,
    DatasetStatus,
    TrainingFamily,
    UploadType,
)
from airflow_provider_bria.exceptions import (
    BriaAPIError,
    BriaConflictError,
    BriaInputError,
    BriaNotFoundError,
    BriaUploadError,
    BriaUploadTimeoutError,
)
from airflow_provider_bria.operators._bulk_zip import (
    ZipEntry,
    ZipStats,
    check_zip_size,
    write_zip,
    zip_object_name,
)
from airflow_provider_bria.operators._image_sources import display_uri, filesystem_for
from airflow_provider_bria.operators._reconcile import apply_then_check
from airflow_provider_bria.operators._upload_common import (
    SUMMARY_LIST_CAP,
    XCOM_SUMMARY_KEY,
    UploadKnobs,
    UploadStrategy,
    UploadTarget,
    build_summary,
    optional_url,
    present_keys,
)
from airflow_provider_bria.results import loose

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.operators._image_sources import ResolvedSources
    from airflow_provider_bria.operators._quality_gate import GateResult

log = logging.getLogger(__name__)

#: Lifetime of a pre-signed zip URL: Bria fetches the zip when the job starts, but queues can be long.
SIGNED_URL_EXPIRATION = 12 * 3600
#: How long a missing status right after a submit is taken as "not visible yet" rather than "no job".
_STATUS_GRACE_SECONDS = 30.0
_SIGNED_QUERY = re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*")


def redact_signed_urls(text: str) -> str:
    """Drop the query string (where pre-signed URLs carry their signature) of every URL in ``text``.

    :param text: a message that may quote a URL.
    """
    return _SIGNED_QUERY.sub(r"\1?<redacted>", str(text))


def _redacted(err: BriaAPIError) -> BriaAPIError:
    """Remove signed URL queries an error body may echo back, in place."""
    err.message = redact_signed_urls(err.message)
    if err.details:
        err.details = redact_signed_urls(err.details)
    err.args = (str(err),)
    return err


@dataclass(frozen=True)
class StagedZip:
    """A zip written to the staging location.

    :param uri: the object's URI (no credentials), for logs and the summary.
    :param public_url: the URL Bria downloads from (may be pre-signed: never log it).
    :param stats: what was written.
    """

    uri: str
    public_url: str
    stats: ZipStats


def get_job(hook: BriaHook, dataset_id: int) -> dict[str, Any] | None:
    """Read the dataset's bulk job; ``None`` when there is none.

    :param hook: a hook.
    :param dataset_id: the dataset.
    """
    try:
        body = loose(hook.get_bulk_upload_status(dataset_id))
    except BriaNotFoundError:
        return None
    return body if BulkUploadStatus.from_body(body) is not None else None


def _public_url_for(fs: AbstractFileSystem, path: str, protocol: str, staging_url: str | None, name: str) -> str:
    if staging_url:
        return f"{staging_url.rstrip('/')}/{quote(name)}"
    try:
        url = fs.sign(path, expiration=SIGNED_URL_EXPIRATION)
    except NotImplementedError:
        raise BriaInputError(
            f"staging_path on {protocol!r} storage cannot produce a pre-signed URL; pass staging_url, the public "
            "http(s) URL at which staging_path is served, or pass a ready zip_url"
        ) from None
    if not str(url).lower().startswith(("http://", "https://")):
        raise BriaInputError(
            f"staging_path on {protocol!r} storage signed to a non-http URL; pass staging_url instead"
        )
    return str(url)


def stage_zip(
    entries: Sequence[ZipEntry],
    *,
    dataset_id: int,
    staging_path: Any,
    staging_url: str | None,
) -> StagedZip:
    """Write the zip to ``staging_path`` and work out its public URL (checked before writing).

    :param entries: the zip entries.
    :param dataset_id: target dataset (part of the object name).
    :param staging_path: folder URI (or ``ObjectStoragePath``) to write the zip into.
    :param staging_url: public http(s) base URL serving ``staging_path``, if the store cannot sign.
    :raises BriaInputError: when no public URL can be made, or the zip would exceed 5 GB.
    """
    check_zip_size(entries)
    fs, folder, protocol = filesystem_for(staging_path)
    name = zip_object_name(dataset_id, [e.name for e in entries])
    path = f"{folder.rstrip('/')}/{name}"
    public_url = _public_url_for(fs, path, protocol, staging_url, name)
    uri = display_uri(protocol, path)
    log.info("Writing %d images into %s", len(entries), uri)
    stats = write_zip(entries, fs, path)
    log.info("Zip written: %d entries, %d bytes", stats.entries, stats.zip_bytes or stats.payload_bytes)
    return StagedZip(uri=uri, public_url=public_url, stats=stats)


def delete_staged(staging_path: Any, uri_name: str) -> None:
    """Remove a staged zip, best effort.

    :param staging_path: the staging folder.
    :param uri_name: the zip's object name.
    """
    try:
        fs, folder, _ = filesystem_for(staging_path)
        fs.rm_file(f"{folder.rstrip('/')}/{uri_name}")
    except Exception as err:  # cleanup must never fail the task
        log.warning("Could not delete the staged zip %s: %s", uri_name, err)


def submit(
    hook: BriaHook,
    dataset_id: int,
    zip_url: str,
    *,
    automatic_captioning: bool | None,
    content_moderation: bool | None,
    settle_delay: float = 1.0,
) -> None:
    """Submit the bulk upload once; after an ambiguous failure, submit again only if no job appeared.

    :param hook: a hook.
    :param dataset_id: the dataset.
    :param zip_url: public URL of the zip (never logged).
    :param automatic_captioning: legacy datasets only.
    :param content_moderation: moderate images.
    :param settle_delay: seconds to wait after an ambiguous failure before reading the status.
    """
    def send() -> dict[str, Any]:
        try:
            hook.bulk_upload(
                dataset_id, zip_url, automatic_captioning=automatic_captioning, content_moderation=content_moderation
            )
        except BriaAPIError as err:
            raise _redacted(err) from None  # the same error, its message without the URL's signature
        return {}

    apply_then_check(send, lambda: get_job(hook, dataset_id), what=f"The bulk upload submit of dataset {dataset_id}",
                     retries=1, delay=settle_delay, log=log)


def wait(hook: BriaHook, dataset_id: int, *, poll_interval: float, timeout: float) -> dict[str, Any]:
    """Poll the job until it is ``completed`` or ``failed``; return the last status body.

    The wait follows the provider's one poll policy (:mod:`airflow_provider_bria.waiting`): an absolute deadline
    ``timeout`` seconds from now, retryable poll errors (5xx, 429, timeouts) tolerated up to
    :data:`~airflow_provider_bria.waiting.policy.DEFAULT_MAX_CONSECUTIVE_FAILURES` in a row.

    :param hook: a hook.
    :param dataset_id: the dataset.
    :param poll_interval: seconds between polls.
    :param timeout: seconds before giving up (the job keeps running remotely; a retry resumes polling).
    :raises BriaUploadTimeoutError: on timeout.
    """
    from airflow_provider_bria.waiting.policy import PollFailed, PollPolicy, PollTimeout
    from airflow_provider_bria.waiting.sync import wait_sync

    start = time.monotonic()
    progress: list[Any] = [None]

    def poll() -> dict[str, Any]:
        try:
            body = loose(hook.get_bulk_upload_status(dataset_id))
        except BriaNotFoundError:
            if time.monotonic() - start > _STATUS_GRACE_SECONDS:
                raise
            return {}  # a job submitted a moment ago may not be visible yet
        status = BulkUploadStatus.from_body(body)
        if status is not None and (body.get("progress_percentage"), status) != progress[0]:
            log.info("Bulk upload %s: %s%% (processed %s, done %s, failed %s)", status.value,
                     body.get("progress_percentage"), body.get("total_processed"), body.get("done"), body.get("failed"))
            progress[0] = (body.get("progress_percentage"), status)
        return body

    def finished(body: dict[str, Any]) -> bool:
        status = BulkUploadStatus.from_body(body)
        return status is not None and status.is_terminal

    policy = PollPolicy.within(poll_interval, timeout, start)
    try:
        return wait_sync(policy, poll, finished, what=f"the bulk upload of dataset {dataset_id}", log=log)
    except PollFailed as err:
        raise err.error from err
    except PollTimeout as err:
        status = BulkUploadStatus.from_body(err.last) if isinstance(err.last, dict) else None
        raise BriaUploadTimeoutError(
            f"Bulk upload of dataset {dataset_id} still {status.value if status else 'not visible'} after "
            f"{timeout:.0f} s; it goes on remotely and a retry of this task resumes waiting (it never "
            "submits again)"
        ) from None


def failed_images(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Normalise the job's ``failed_images`` to ``{"source", "reason", "error_code"}`` dicts.

    :param body: the final status body.
    """
    out: list[dict[str, Any]] = []
    for item in body.get("failed_images") or []:
        if isinstance(item, dict):
            out.append({
                "source": str(item.get("filename") or item.get("file_name") or item.get("name") or "?"),
                "reason": str(item.get("error_message") or item.get("message") or "failed"),
                "error_code": item.get("error_code"),
            })
        else:
            out.append({"source": str(item), "reason": "failed", "error_code": None})
    return out


# ---------------------------------------------------------------------------------------------- resume state


@dataclass
class BulkResumeState:
    """What a bulk upload carries through its wait (the trigger hands it back in its event), versioned.

    Stored as a JSON object with ``state_version`` (:mod:`airflow_provider_bria._state`, kind
    ``upload_resume_state``); release 0.1.0 wrote the same keys without a version, which loads as version 0.

    :param total: files in the source.
    :param skipped: the first skipped files (``source``, ``code``, ``reason``).
    :param skipped_count: how many files the gate skipped in all.
    :param already: source images already in the dataset.
    :param staged_name: the staged zip's object name, deleted at the end (``None``: a given ``zip_url``).
    :param version: the layout version (always the current one once loaded).
    """

    total: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    skipped_count: int | None = 0
    already: int = 0
    staged_name: str | None = None
    version: int = STATE_VERSIONS[UPLOAD_RESUME_STATE]

    def to_record(self) -> dict[str, Any]:
        """The JSON-safe record handed to the trigger."""
        return stamp(UPLOAD_RESUME_STATE, {
            "total": self.total, "skipped": list(self.skipped), "skipped_count": self.skipped_count,
            "already": self.already, "staged_name": self.staged_name,
        })

    @classmethod
    def from_record(cls, record: Any) -> BulkResumeState:
        """Load a record of any known version (an absent or non-object record gives empty counts).

        :param record: what the trigger event carried under ``state``.
        :raises StateVersionError: for a record a newer provider wrote.
        """
        if not isinstance(record, dict):
            return cls()
        data = load(UPLOAD_RESUME_STATE, record)
        count = data.get("skipped_count")
        name = data.get("staged_name")
        return cls(
            total=int(data.get("total") or 0), skipped=list(data.get("skipped") or []),
            skipped_count=int(count) if count is not None else None, already=int(data.get("already") or 0),
            staged_name=str(name) if name else None,
        )


# ---------------------------------------------------------------------------------------------- the strategy


@dataclass(frozen=True)
class BulkKnobs:
    """The operator arguments only bulk (advanced dataset) uploads read.

    :param staging_path: folder the zip is written to.
    :param zip_url: a ready zip (no staging).
    :param staging_url: public base URL of ``staging_path``.
    :param automatic_captioning: legacy datasets: ``False`` sends side-car captions.
    :param cleanup_staging: delete the staged zip at the end.
    :param poll_interval: seconds between status polls.
    :param timeout: seconds to wait for the job.
    :param deferrable: wait in the triggerer.
    :param settle_delay: seconds before looking the job up after an ambiguous submit failure.
    """

    staging_path: Any
    zip_url: str | None
    staging_url: str | None
    automatic_captioning: bool | None
    cleanup_staging: bool
    poll_interval: float
    timeout: float
    deferrable: bool
    settle_delay: float


class BulkStrategy(UploadStrategy):
    """Upload to an advanced dataset: gate, stage a zip (or take ``zip_url``), submit once, wait, summarise.

    ``knobs`` and ``log`` as for :class:`UploadStrategy`; ``bulk`` holds the bulk-only arguments and
    ``defer(dataset_id, state)`` hands the wait to the triggerer (it never returns).
    """

    def __init__(self, knobs: UploadKnobs, bulk: BulkKnobs, log: Any,
                 defer: Callable[[int, BulkResumeState], None]) -> None:
        super().__init__(knobs, log)
        self.bulk = bulk
        self.defer = defer

    def run(self, context: Any, hook: BriaHook, target: UploadTarget) -> dict[str, Any]:
        """Submit the bulk upload unless a job exists, then wait for it (see :meth:`UploadStrategy.run`)."""
        zip_url, staging_url = self._check_arguments(target)
        state = BulkResumeState()
        job = get_job(hook, target.dataset_id)
        if job is not None:
            self.log.info(
                "Dataset %s already has a bulk upload job (%s): not submitting again, waiting for it",
                target.dataset_id, job.get("status"),
            )
        elif zip_url is not None:
            self._check_target(target)
            self.log.info("Submitting the bulk upload of the given zip_url")
            self._submit(hook, target.dataset_id, zip_url)
        else:
            done = self._stage_and_submit(context, hook, target, staging_url, state)
            if done is not None:
                return done
        return self._wait(context, hook, target.dataset_id, state)

    def _check_arguments(self, target: UploadTarget) -> tuple[str | None, str | None]:
        """Refuse, before any call, arguments an advanced dataset cannot take; return the two URLs."""
        dataset_id = target.dataset_id
        zip_url = optional_url(self.bulk.zip_url, "zip_url")
        staging_url = optional_url(self.bulk.staging_url, "staging_url")
        if self.knobs.increase_resolution:
            raise BriaInputError(
                f"Dataset {dataset_id} is an advanced dataset: bulk uploads do not upscale, every image must be at "
                "least 1024x1024; remove increase_resolution=True"
            )
        from airflow_provider_bria.operators.dataset import dataset_family

        if self.bulk.automatic_captioning is not None and dataset_family(target.dataset) is TrainingFamily.FIBO:
            raise BriaInputError("automatic_captioning only applies to legacy datasets; this dataset is FIBO")
        if zip_url is not None and self.bulk.staging_path:
            raise BriaInputError("Pass either zip_url (a ready zip) or staging_path (to build one), not both")
        if zip_url is None and not self.bulk.staging_path:
            raise BriaInputError(
                f"Dataset {dataset_id} is an advanced dataset: pass staging_path (where the zip is written) "
                "or zip_url (a ready zip)"
            )
        return zip_url, staging_url

    def _submit(self, hook: BriaHook, dataset_id: int, url: str) -> None:
        submit(hook, dataset_id, url, automatic_captioning=self.bulk.automatic_captioning,
               content_moderation=self.knobs.content_moderation, settle_delay=self.bulk.settle_delay)

    def _stage_and_submit(
        self, context: Any, hook: BriaHook, target: UploadTarget, staging_url: str | None, state: BulkResumeState,
    ) -> dict[str, Any] | None:
        """Gate the source, write the zip, submit it. Returns a summary when there is nothing to do."""
        dataset_id = target.dataset_id
        resolved, gate = self.gate(increase_resolution=False)
        total = len(resolved.images)
        entries = self._zip_entries(resolved, gate)
        self.report_gate(gate, total)
        listing = hook.list_images(dataset_id) if target.images_count else []
        present = present_keys(listing)
        already = sum(1 for c in gate.accepted if c.key in present)
        if target.images_count and already == len(gate.accepted):
            self.log.info("Dataset %s already holds every source image: nothing to do", dataset_id)
            return self.finish(context, build_summary(
                dataset_id=dataset_id, upload_type=UploadType.ADVANCED.value, sources=total, uploaded=0,
                already_present=already, skipped=gate.skipped, failed=[],
                image_ids=[int(present[c.key][0]["id"]) for c in gate.accepted], images_in_dataset=len(listing),
            ))
        self._check_target(target)
        self.check_guard(len(gate.accepted))
        if len(gate.accepted) > ADVANCED_MAX_IMAGES:
            raise BriaInputError(f"{len(gate.accepted)} images exceed the bulk upload limit of {ADVANCED_MAX_IMAGES}")
        staged = stage_zip(entries, dataset_id=dataset_id, staging_path=self.bulk.staging_path,
                           staging_url=staging_url)
        state.total, state.already = total, already
        state.skipped, state.skipped_count = gate.skipped[:SUMMARY_LIST_CAP], len(gate.skipped)
        state.staged_name = staged.uri.rsplit("/", 1)[-1]
        self.log.info("Submitting the bulk upload of %s", staged.uri)
        self._submit(hook, dataset_id, staged.public_url)
        return None

    def _wait(self, context: Any, hook: BriaHook, dataset_id: int, state: BulkResumeState) -> dict[str, Any]:
        """Wait for the job here, or defer to the triggerer; then summarise."""
        if not self.bulk.deferrable:
            final = wait(hook, dataset_id, poll_interval=self.bulk.poll_interval, timeout=self.bulk.timeout)
            return self.complete(context, hook, dataset_id, final, state)
        current = get_job(hook, dataset_id)
        job_status = BulkUploadStatus.from_body(current) if current is not None else None
        if current is not None and job_status is not None and job_status.is_terminal:
            return self.complete(context, hook, dataset_id, current, state)
        self.log.info("Deferring: the triggerer waits for the bulk upload of dataset %s", dataset_id)
        self.defer(dataset_id, state)
        raise AssertionError("defer() returned")  # pragma: no cover - it raises TaskDeferred

    def complete(
        self, context: Any, hook: BriaHook, dataset_id: int, final: dict[str, Any], state: BulkResumeState
    ) -> dict[str, Any]:
        """The job ended: delete the staged zip, then summarise (or raise for a failed job).

        :param context: the task context.
        :param hook: a hook.
        :param dataset_id: the dataset.
        :param final: the job's final status body.
        :param state: what was gathered before the wait.
        """
        if state.staged_name and self.bulk.cleanup_staging:
            delete_staged(self.bulk.staging_path, state.staged_name)
        failures = failed_images(final)
        listing = hook.list_images(dataset_id)
        job = {k: final.get(k) for k in ("status", "progress_percentage", "total_processed", "done", "failed")}
        uploaded = final.get("done")
        summary = build_summary(
            dataset_id=dataset_id, upload_type=UploadType.ADVANCED.value, sources=state.total,
            uploaded=int(uploaded) if isinstance(uploaded, int) else max(0, len(listing) - state.already),
            already_present=state.already, skipped=list(state.skipped), failed=failures,
            image_ids=[int(i["id"]) for i in listing if i.get("id") is not None], images_in_dataset=len(listing),
            bulk=job, skipped_count=state.skipped_count,
        )
        if BulkUploadStatus.from_body(final) is BulkUploadStatus.FAILED and not failures:
            context["ti"].xcom_push(key=XCOM_SUMMARY_KEY, value=summary)
            reason = redact_signed_urls(str(final.get("message") or job))
            raise BriaUploadError(f"The bulk upload of dataset {dataset_id} failed: {reason}", failures=[])
        return self.finish(context, summary)

    @staticmethod
    def _check_target(target: UploadTarget) -> None:
        if target.status == DatasetStatus.COMPLETED.value:
            raise BriaConflictError(f"Dataset {target.dataset_id} is completed (frozen): no bulk upload is possible")
        if target.images_count:
            raise BriaConflictError(
                f"Dataset {target.dataset_id} already holds {target.images_count} images and has no bulk upload job: "
                "a bulk upload needs an empty advanced dataset"
            )

    def _zip_entries(self, resolved: ResolvedSources, gate: GateResult) -> list[ZipEntry]:
        """The zip's entries (with caption side-cars when ``automatic_captioning=False``; images without one
        are skipped)."""
        from airflow_provider_bria.operators._quality_gate import SkipCode

        entries: list[ZipEntry] = []
        with_captions = self.bulk.automatic_captioning is False
        kept = []
        for img in gate.accepted:
            caption = resolved.caption_for(img.source)
            if with_captions and caption is None:
                gate.skipped.append({"source": img.source.uri, "code": SkipCode.MISSING_CAPTION,
                                     "reason": f"no caption file {img.source.stem}.txt next to it "
                                               "(automatic_captioning=False)"})
                continue
            kept.append(img)
            entries.append(ZipEntry(name=img.upload_name, source=img.source, size=img.size))
            if with_captions and caption is not None:
                stem = img.upload_name.rsplit(".", 1)[0]
                entries.append(ZipEntry(name=f"{stem}.txt", source=caption, size=caption.size))
        gate.accepted[:] = kept
        return entries
