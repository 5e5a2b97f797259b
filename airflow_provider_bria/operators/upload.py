"""Upload images to a Bria dataset: quality gate, bounded concurrency, retry-safe, basic or bulk (advanced).

See ``docs/upload.md`` for the user guide. The heavy lifting lives in private modules, imported lazily so
that importing this module (DAG parsing) stays cheap:

* :mod:`._image_sources` resolves folders, globs, lists and object-storage URIs into files;
* :mod:`._quality_gate` checks format, resolution and integrity and hashes every file (streamed);
* :mod:`._upload_basic` uploads to basic datasets, concurrently, reconciling ambiguous failures;
* :mod:`._bulk_zip` and :mod:`._upload_bulk` stage a zip and run the one-shot bulk upload of advanced datasets.
"""

from __future__ import annotations

import ast
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bria._compat import conf
from airflow_provider_bria._state import UPLOAD_RESUME_STATE, load, stamp
from airflow_provider_bria.contract import (
    ADVANCED_MAX_IMAGES,
    BASIC_MAX_IMAGES,
    BulkUploadStatus,
    DatasetStatus,
    TrainingFamily,
    UploadType,
)
from airflow_provider_bria.exceptions import (
    BriaConflictError,
    BriaError,
    BriaInputError,
    BriaUploadError,
    BriaUploadTimeoutError,
)
from airflow_provider_bria.hooks.bria import BriaHook
from airflow_provider_bria.links.bria import BriaDatasetLink, push_console_xcoms
from airflow_provider_bria.operators._reconcile import coerce_bool, coerce_id, is_templated, reconcile_delay
from airflow_provider_bria.operators.base import BriaBaseOperator, Number
from airflow_provider_bria.operators.dataset import dataset_family

if TYPE_CHECKING:
    from airflow_provider_bria.operators._image_sources import ResolvedSources
    from airflow_provider_bria.operators._quality_gate import CheckedImage, GateResult

ON_INVALID_CHOICES = ("skip", "fail")
ENCODINGS = ("json", "multipart")
#: Entries of ``skipped``/``failed`` kept in the returned summary (the counts are always complete).
SUMMARY_LIST_CAP = 50
#: ``image_ids`` kept in the returned summary.
IMAGE_IDS_CAP = 200
XCOM_SUMMARY_KEY = "upload_summary"


def _coerce_source(source: Any) -> Any:
    """Turn a rendered ``"['a', 'b']"`` (a templated list rendered as text) back into a list."""
    if isinstance(source, str):
        text = source.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return source
            if isinstance(value, list):
                return value
    return source


def _optional_url(value: Any, field: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not text.lower().startswith(("http://", "https://")):
        raise BriaInputError(f"{field} must be an http(s) URL")
    return text


def added_after_creation(entries: list[dict[str, Any]], dataset: Mapping[str, Any]) -> int:
    """How many of ``entries`` (dataset images) were added after the dataset was created or cloned.

    An entry or a dataset without a readable ``created_at`` counts as added (never skip a run for want of a
    timestamp).

    :param entries: image objects of the dataset.
    :param dataset: the dataset object.
    """
    from datetime import datetime

    def when(value: Any) -> datetime | None:
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
        except ValueError:
            return None

    created = when(dataset.get("created_at"))
    if created is None:
        return len(entries)
    count = 0
    for entry in entries:
        added = when(entry.get("created_at"))
        if added is None or (added.tzinfo is None) != (created.tzinfo is None) or added > created:
            count += 1
    return count


class BriaUploadImagesOperator(BriaBaseOperator):
    """Upload a folder, glob, list of files or object-storage location of images to a Bria dataset.

    Before anything is sent, a quality gate reads every file once (streamed): the format is sniffed from the
    content (JPEG, PNG, WebP), the resolution read from the header (at least 1024x1024, or 256x256 with
    ``increase_resolution``), the structure verified, and content duplicates found by SHA-256. Skipped files
    are reported with a reason. The dataset's type decides the path:

    * **basic** datasets (up to 200 images): images are uploaded one by one, ``max_concurrency`` at a time,
      each streamed from its source;
    * **advanced** datasets: the images are written as a zip to ``staging_path`` (or ``zip_url`` is used as
      given), the one-shot bulk upload is submitted and its status polled.

    Retries are safe. Every image is sent under a stable name ``<stem>-<sha12>.<ext>``; a retried task lists
    the dataset and skips what is there, an ambiguous failure (5xx, timeout) is reconciled by listing before
    sending again, and duplicates a lost response could still create are removed at the end. A bulk upload is
    never submitted twice: a retry finds the job and only polls it.

    .. seealso:: ``docs/upload.md`` (user guide).

    :param dataset_id: target dataset id (templated; str or int).
    :param source: a local file, folder or glob, an object-storage URI (``s3://``, ``gs://``, ``file://``,
        ``memory://``, ``scheme://conn_id@bucket/key``...), an ``ObjectStoragePath``, or a list of them
        (templated). Folders are listed non-recursively; ``.txt`` files are caption side-cars. Optional when
        ``zip_url`` is given.
    :param increase_resolution: let Bria upscale images from 256x256 (basic datasets only); the gate then
        accepts images from 256x256 instead of 1024x1024. Always sent to the API. Templated: a rendered
        ``"True"``/``"false"`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``) is turned into a bool; any
        other value raises :class:`BriaInputError`.
    :param content_moderation: ask Bria to moderate each image (blocked images are reported as failed).
    :param max_concurrency: uploads (and gate checks) in flight at once.
    :param on_invalid: ``"skip"`` (report and go on) or ``"fail"`` (raise :class:`BriaInputError` listing every
        problem, before anything is uploaded).
    :param max_images: refuse to upload more than this many new images (a guard against a wrong source).
    :param encoding: ``"json"`` (base64 body, default) or ``"multipart"`` for basic uploads.
    :param image_retries: extra attempts per image after an ambiguous failure, each after checking the dataset.
    :param fail_on_image_errors: raise :class:`BriaUploadError` at the end when images failed (the others stay
        uploaded). With ``False`` the task succeeds and the failures are in the summary.
    :param allow_empty: succeed when the source holds no valid image instead of raising (implied by
        ``min_new_images``, which then skips).
    :param staging_path: advanced datasets: folder URI (templated) where the zip is written.
    :param zip_url: advanced datasets: public URL of a ready zip (templated); no zip is made. Because it is
        templated, the URL as given (a pre-signed URL's signature included) is stored with the task's rendered
        fields and shown under *Rendered Templates* to anyone who can see the task: prefer a short-lived URL,
        or build the zip with ``staging_path``, whose pre-signed URL is made at run time and never stored,
        logged or returned.
    :param staging_url: advanced datasets: public http(s) base URL serving ``staging_path`` (templated), for
        stores that cannot pre-sign URLs (local folders, ``memory://``...). Otherwise ``sign()`` is used.
    :param automatic_captioning: advanced legacy datasets: ``False`` sends each image's ``<stem>.txt`` side-car
        as its caption (images without one are skipped). Not allowed for FIBO datasets.
    :param cleanup_staging: delete the staged zip once the bulk job has finished.
    :param min_new_images: guard (templated): when fewer new images than this arrived, the task is skipped
        (``AirflowSkipException``) after the upload, and so is everything downstream with the default trigger
        rule: a week with no new photos trains (and pays for) nothing. New images are the ones uploaded now
        plus those of the source an earlier run already added after the dataset was created (so a re-run is
        not skipped); images the dataset got when it was created or cloned do not count. The summary is
        pushed under XCom ``upload_summary``.
    :param poll_interval: seconds between bulk status polls.
    :param timeout: seconds to wait for the bulk job before failing (the job goes on; a retry resumes waiting).
    :param deferrable: wait for the bulk job in the triggerer instead of a worker slot (default
        ``[operators] default_deferrable``). Basic uploads always run on the worker.
    :returns: a JSON-safe summary: ``dataset_id``, ``upload_type``, ``sources``, ``uploaded``,
        ``already_present``, ``new_images``, ``reconciled``, ``skipped_count``, ``skipped``,
        ``skipped_by_reason`` (count per reason code), ``failed_count``, ``failed``, ``image_ids``,
        ``images_in_dataset``, ``warnings`` (e.g. the skipped-images summary) and, for bulk uploads, ``bulk``.
    """

    template_fields: Sequence[str] = (
        "bria_conn_id", "dataset_id", "source", "increase_resolution", "staging_path", "zip_url", "staging_url",
    )
    template_fields_renderers = {"source": "json"}
    template_numbers: ClassVar[Mapping[str, Number]] = {
        "max_concurrency": Number(int, 1, 64),
        "image_retries": Number(int, 0),
        "max_images": Number(int, 1, optional=True),
        "min_new_images": Number(int, 0, optional=True),
        "poll_interval": Number(float, 0, exclusive_minimum=True),
        "timeout": Number(float, 0, exclusive_minimum=True),
    }
    operator_extra_links = (BriaDatasetLink(),)
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        dataset_id: int | str,
        source: Any = None,
        increase_resolution: bool | str = False,
        content_moderation: bool | None = None,
        max_concurrency: int = 4,
        on_invalid: str = "skip",
        max_images: int | None = None,
        encoding: str = "json",
        image_retries: int = 2,
        fail_on_image_errors: bool = True,
        allow_empty: bool = False,
        staging_path: Any = None,
        zip_url: str | None = None,
        staging_url: str | None = None,
        automatic_captioning: bool | None = None,
        cleanup_staging: bool = True,
        min_new_images: int | str | None = None,
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.source = source
        self.staging_path = staging_path
        self.zip_url = zip_url
        self.staging_url = staging_url
        self.increase_resolution: bool | str = increase_resolution
        self.content_moderation = content_moderation
        self.max_concurrency = max_concurrency
        self.on_invalid = on_invalid
        self.max_images = max_images
        self.encoding = encoding
        self.image_retries = image_retries
        self.fail_on_image_errors = bool(fail_on_image_errors)
        self.allow_empty = bool(allow_empty)
        self.automatic_captioning = automatic_captioning
        self.cleanup_staging = bool(cleanup_staging)
        self.min_new_images = min_new_images
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.deferrable = bool(deferrable)
        self._validate_static()

    def _validate_static(self) -> None:
        """Check the arguments that cannot be templated (a parse-time error beats a run-time one)."""
        if not is_templated(self.increase_resolution):
            self.increase_resolution = coerce_bool(self.increase_resolution, "increase_resolution")
        if self.on_invalid not in ON_INVALID_CHOICES:
            raise BriaInputError(f"on_invalid must be one of {ON_INVALID_CHOICES}, got {self.on_invalid!r}")
        if self.encoding not in ENCODINGS:
            raise BriaInputError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        for name in self.template_numbers:
            setattr(self, name, self.number_arg(name, getattr(self, name)))
        for name, value in (("content_moderation", self.content_moderation),
                            ("automatic_captioning", self.automatic_captioning)):
            if value is not None and not isinstance(value, bool):
                raise BriaInputError(f"{name} must be True, False or None, got {value!r}")

    # ------------------------------------------------------------------ execute

    def execute(self, context: Any) -> dict[str, Any]:
        """Check, then upload; return the summary (see the class docstring)."""
        dataset_id = coerce_id(self.dataset_id, "dataset_id")
        self.increase_resolution = coerce_bool(self.increase_resolution, "increase_resolution")
        ti = context["ti"]
        hook = self.hook
        dataset = hook.get_dataset(dataset_id, max_images=1)
        upload_type = str(dataset.get("upload_type") or UploadType.BASIC.value).lower()
        status = str(dataset.get("status") or DatasetStatus.DRAFT.value).lower()
        self.log.info(
            "Dataset %s: %s upload type, status %s, %s images (try %s)",
            dataset_id, upload_type, status, dataset.get("images_count", "?"), getattr(ti, "try_number", "?"),
        )
        project_id = dataset.get("project_id")
        push_console_xcoms(
            context, getattr(hook, "console_url", None),
            project_id=coerce_id(project_id, "project_id") if project_id is not None else None,
            dataset_id=dataset_id,
        )
        if upload_type == UploadType.ADVANCED.value:
            summary = self._execute_bulk(context, hook, dataset_id, dataset, status)
        else:
            if self.zip_url or self.staging_path or self.staging_url:
                raise BriaInputError(
                    f"Dataset {dataset_id} is a basic dataset: zip_url, staging_path and staging_url only apply "
                    "to advanced (bulk upload) datasets"
                )
            summary = self._execute_basic(context, hook, dataset_id, dataset, status)
        return summary

    def on_kill(self) -> None:
        """Start no more uploads when the task is killed (in-flight uploads finish; a retry resumes cleanly)."""
        uploader = getattr(self, "_uploader", None)
        if uploader is not None:
            uploader.stop("the task was killed")

    # ------------------------------------------------------------------ shared steps

    def _gate(self, *, increase_resolution: bool) -> tuple[ResolvedSources, GateResult]:
        from airflow_provider_bria.operators._image_sources import resolve_sources
        from airflow_provider_bria.operators._quality_gate import run_quality_gate

        source = _coerce_source(self.source)
        if source is None or source == [] or source == "":
            raise BriaInputError("source is required (a path, glob, URI or a list of them)")
        resolved = resolve_sources(source)
        self.log.info("Source resolved to %d candidate files", len(resolved.images))
        gate = run_quality_gate(
            resolved.images,
            increase_resolution=increase_resolution,
            max_workers=self.max_concurrency,
            on_checked=lambda n: self.log.info("Quality gate: %d/%d files checked", n, len(resolved.images)),
        )
        return resolved, gate

    def _report_gate(self, gate: GateResult, total: int) -> None:
        self.log.info("Quality gate: %d files, %d accepted, %d skipped", total, len(gate.accepted), len(gate.skipped))
        if gate.skipped:
            from airflow_provider_bria.operators._quality_gate import skipped_warning

            self.log.warning("%s", skipped_warning(gate.skipped, total))
        for item in gate.skipped[:SUMMARY_LIST_CAP]:
            self.log.info("Skipped %s: %s", item["source"], item["reason"])
        if len(gate.skipped) > SUMMARY_LIST_CAP:
            self.log.info("... and %d more skipped files", len(gate.skipped) - SUMMARY_LIST_CAP)
        if gate.skipped and self.on_invalid == "fail":
            raise BriaInputError(
                f"{len(gate.skipped)} of {total} files failed the quality gate (on_invalid='fail'; nothing was "
                f"uploaded): {gate.problems_text()}"
            )
        if not gate.accepted and not self.allow_empty and self.min_new_images is None:
            raise BriaInputError(
                f"None of the {total} source files is a valid image to upload; set allow_empty=True to accept this"
            )

    def _check_guard(self, n_new: int) -> None:
        if self.max_images is not None and n_new > self.max_images:
            raise BriaInputError(
                f"{n_new} new images to upload exceed max_images={self.max_images}; nothing was uploaded"
            )

    @staticmethod
    def _present_keys(listing: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        from airflow_provider_bria.operators._quality_gate import key_from_image_name

        present: dict[str, list[dict[str, Any]]] = {}
        for item in listing:
            key = key_from_image_name(item.get("image_name"))
            if key is not None:
                present.setdefault(key, []).append(item)
        return present

    def _summary(
        self,
        *,
        dataset_id: int,
        upload_type: str,
        sources: int,
        uploaded: int,
        already_present: int,
        skipped: list[dict[str, Any]],
        failed: list[dict[str, Any]],
        image_ids: list[int],
        images_in_dataset: int | None,
        reconciled: int = 0,
        bulk: dict[str, Any] | None = None,
        skipped_count: int | None = None,
        added_earlier: int | None = None,
    ) -> dict[str, Any]:
        from airflow_provider_bria.operators._quality_gate import skipped_warning

        n_skipped = len(skipped) if skipped_count is None else skipped_count
        summary: dict[str, Any] = {
            "dataset_id": dataset_id,
            "upload_type": upload_type,
            "sources": sources,
            "uploaded": uploaded,
            "already_present": already_present,
            "new_images": uploaded + (already_present if added_earlier is None else added_earlier),
            "reconciled": reconciled,
            "skipped_count": n_skipped,
            "skipped": skipped[:SUMMARY_LIST_CAP],
            "skipped_by_reason": dict(Counter(str(item.get("code")) for item in skipped)),
            "failed_count": len(failed),
            "failed": failed[:SUMMARY_LIST_CAP],
            "image_ids": sorted(image_ids)[:IMAGE_IDS_CAP],
            "images_in_dataset": images_in_dataset,
            "warnings": [skipped_warning(skipped, sources, n_skipped)] if n_skipped else [],
        }
        if bulk is not None:
            summary["bulk"] = bulk
        return summary

    def _finish(self, context: Any, summary: dict[str, Any], fatal: BaseException | None = None) -> dict[str, Any]:
        self.log.info(
            "Upload summary for dataset %s: %d uploaded, %d already present, %d skipped, %d failed",
            summary["dataset_id"], summary["uploaded"], summary["already_present"], summary["skipped_count"],
            summary["failed_count"],
        )
        if fatal is not None or (summary["failed_count"] and self.fail_on_image_errors):
            context["ti"].xcom_push(key=XCOM_SUMMARY_KEY, value=summary)
        if fatal is not None:
            raise fatal
        if self.min_new_images is not None and summary["new_images"] < self.min_new_images:
            from airflow_provider_bria.exceptions import AirflowSkipException

            context["ti"].xcom_push(key=XCOM_SUMMARY_KEY, value=summary)
            raise AirflowSkipException(
                f"min_new_images={self.min_new_images}: only {summary['new_images']} new image(s) arrived in dataset "
                f"{summary['dataset_id']}; skipping this task and everything downstream of it (nothing is trained)"
            )
        if summary["failed_count"] and self.fail_on_image_errors:
            failed = summary["failed"]
            details = "; ".join(f"{f.get('source')}: {f.get('reason')}" for f in failed[:10])
            raise BriaUploadError(
                f"{summary['failed_count']} images failed to upload to dataset {summary['dataset_id']} "
                f"({summary['uploaded']} uploaded, {summary['already_present']} already present, kept): {details}",
                failures=failed,
            )
        return summary

    # ------------------------------------------------------------------ basic datasets

    def _execute_basic(
        self, context: Any, hook: BriaHook, dataset_id: int, dataset: dict[str, Any], status: str
    ) -> dict[str, Any]:
        from airflow_provider_bria.operators._upload_basic import BasicUploader

        resolved, gate = self._gate(increase_resolution=self.increase_resolution)
        total = len(resolved.images)
        self._report_gate(gate, total)
        listing = hook.list_images(dataset_id)
        present = self._present_keys(listing)
        new = [c for c in gate.accepted if c.key not in present]
        already = len(gate.accepted) - len(new)
        existing = max(len(listing), int(dataset.get("images_count") or 0))
        if status == DatasetStatus.COMPLETED.value:
            if new:
                raise BriaConflictError(
                    f"Dataset {dataset_id} is completed (frozen): {len(new)} of the source images are not in it and "
                    "cannot be added; clone it as a draft to add images"
                )
            self.log.info("Dataset %s is completed and already holds every source image: nothing to do", dataset_id)
        self._check_guard(len(new))
        if existing + len(new) > BASIC_MAX_IMAGES:
            raise BriaInputError(
                f"Dataset {dataset_id} holds {existing} images; adding {len(new)} would exceed the basic dataset "
                f"limit of {BASIC_MAX_IMAGES} (nothing was uploaded). Use an advanced dataset for more images"
            )
        self.log.info(
            "Uploading %d new images (%d already in the dataset) with up to %d in flight",
            len(new), already, min(self.max_concurrency, max(1, len(new))),
        )
        uploader = BasicUploader(
            hook_factory=lambda: BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params),
            dataset_id=dataset_id,
            increase_resolution=self.increase_resolution,
            content_moderation=self.content_moderation,
            encoding=self.encoding,
            max_concurrency=self.max_concurrency,
            image_retries=self.image_retries,
            retry_delay=reconcile_delay(self),
        )
        self._uploader = uploader
        try:
            outcome = uploader.run(new)
        finally:
            self._uploader = None
        self.log.info(
            "Uploaded %d images (%d confirmed by listing after an ambiguous failure), %d failed",
            len(outcome.uploaded), outcome.reconciled, len(outcome.failed),
        )
        image_ids, in_dataset = self._verify_basic(hook, dataset_id, gate.accepted, outcome.fatal)
        added_earlier = added_after_creation(
            [entry for c in gate.accepted if c.key in present for entry in present[c.key][:1]], dataset)
        summary = self._summary(
            dataset_id=dataset_id,
            upload_type=UploadType.BASIC.value,
            sources=total,
            uploaded=len(outcome.uploaded),
            already_present=already,
            skipped=gate.skipped,
            failed=outcome.failed,
            image_ids=image_ids,
            images_in_dataset=in_dataset,
            reconciled=outcome.reconciled,
            added_earlier=added_earlier,
        )
        return self._finish(context, summary, outcome.fatal)

    def _verify_basic(
        self, hook: BriaHook, dataset_id: int, accepted: list[CheckedImage], fatal: BaseException | None
    ) -> tuple[list[int], int | None]:
        """List the dataset once more: remove duplicates of our images a lost response created; collect ids."""
        if not accepted:
            return [], None
        try:
            listing = hook.list_images(dataset_id)
        except BriaError as err:
            if fatal is None:
                raise
            self.log.warning("Could not list dataset %s after the upload: %s", dataset_id, err)
            return [], None
        present = self._present_keys(listing)
        ids: list[int] = []
        removed = 0
        for img in accepted:
            items = sorted(present.get(img.key, []), key=lambda i: int(i.get("id") or 0))
            if not items:
                continue
            ids.append(int(items[0]["id"]))
            for extra in items[1:]:
                try:
                    hook.delete_image(dataset_id, extra["id"])
                    removed += 1
                except BriaError as err:
                    self.log.warning(
                        "Could not delete duplicate image %s (%s): %s", extra.get("id"), img.upload_name, err
                    )
        if removed:
            self.log.warning("Removed %d duplicate images left by ambiguous failures", removed)
        return ids, len(listing) - removed

    # ------------------------------------------------------------------ advanced datasets

    def _execute_bulk(
        self, context: Any, hook: BriaHook, dataset_id: int, dataset: dict[str, Any], status: str
    ) -> dict[str, Any]:
        from airflow_provider_bria.operators import _upload_bulk as bulk

        zip_url = _optional_url(self.zip_url, "zip_url")
        staging_url = _optional_url(self.staging_url, "staging_url")
        if self.increase_resolution:
            raise BriaInputError(
                f"Dataset {dataset_id} is an advanced dataset: bulk uploads do not upscale, every image must be at "
                "least 1024x1024; remove increase_resolution=True"
            )
        if self.automatic_captioning is not None and dataset_family(dataset) is TrainingFamily.FIBO:
            raise BriaInputError("automatic_captioning only applies to legacy datasets; this dataset is FIBO")
        if zip_url is not None and self.staging_path:
            raise BriaInputError("Pass either zip_url (a ready zip) or staging_path (to build one), not both")
        if zip_url is None and not self.staging_path:
            raise BriaInputError(
                f"Dataset {dataset_id} is an advanced dataset: pass staging_path (where the zip is written) "
                "or zip_url (a ready zip)"
            )
        state: dict[str, Any] = {"total": 0, "skipped": [], "skipped_count": 0, "already": 0, "staged_name": None}
        images_count = int(dataset.get("images_count") or 0)
        job = bulk.get_job(hook, dataset_id)
        if job is not None:
            self.log.info(
                "Dataset %s already has a bulk upload job (%s): not submitting again, waiting for it",
                dataset_id, job.get("status"),
            )
        elif zip_url is not None:
            self._check_bulk_target(dataset_id, status, images_count)
            self.log.info("Submitting the bulk upload of the given zip_url")
            bulk.submit(hook, dataset_id, zip_url, automatic_captioning=self.automatic_captioning,
                        content_moderation=self.content_moderation, settle_delay=reconcile_delay(self))
        else:
            done = self._stage_and_submit(context, hook, dataset_id, status, images_count, staging_url, state)
            if done is not None:
                return done
        return self._wait_bulk(context, hook, dataset_id, state)

    def _stage_and_submit(
        self, context: Any, hook: BriaHook, dataset_id: int, status: str, images_count: int,
        staging_url: str | None, state: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Gate the source, write the zip, submit it. Returns a summary when there is nothing to do."""
        from airflow_provider_bria.operators import _upload_bulk as bulk

        resolved, gate = self._gate(increase_resolution=False)
        total = len(resolved.images)
        entries = self._zip_entries(resolved, gate)
        self._report_gate(gate, total)
        listing = hook.list_images(dataset_id) if images_count else []
        present = self._present_keys(listing)
        already = sum(1 for c in gate.accepted if c.key in present)
        if images_count and already == len(gate.accepted):
            self.log.info("Dataset %s already holds every source image: nothing to do", dataset_id)
            return self._finish(context, self._summary(
                dataset_id=dataset_id, upload_type=UploadType.ADVANCED.value, sources=total, uploaded=0,
                already_present=already, skipped=gate.skipped, failed=[],
                image_ids=[int(present[c.key][0]["id"]) for c in gate.accepted], images_in_dataset=len(listing),
            ))
        self._check_bulk_target(dataset_id, status, images_count)
        self._check_guard(len(gate.accepted))
        if len(gate.accepted) > ADVANCED_MAX_IMAGES:
            raise BriaInputError(f"{len(gate.accepted)} images exceed the bulk upload limit of {ADVANCED_MAX_IMAGES}")
        staged = bulk.stage_zip(entries, dataset_id=dataset_id, staging_path=self.staging_path,
                                staging_url=staging_url)
        state.update(total=total, skipped=gate.skipped[:SUMMARY_LIST_CAP], skipped_count=len(gate.skipped),
                     already=already, staged_name=staged.uri.rsplit("/", 1)[-1])
        self.log.info("Submitting the bulk upload of %s", staged.uri)
        bulk.submit(hook, dataset_id, staged.public_url, automatic_captioning=self.automatic_captioning,
                    content_moderation=self.content_moderation, settle_delay=reconcile_delay(self))
        return None

    def _wait_bulk(  # noqa: RET503 - the last branch ends in self.defer(), which never returns
        self, context: Any, hook: BriaHook, dataset_id: int, state: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait for the job here, or defer to the triggerer; then summarise."""
        from airflow_provider_bria.operators import _upload_bulk as bulk

        if not self.deferrable:
            final = bulk.wait(hook, dataset_id, poll_interval=float(self.poll_interval), timeout=float(self.timeout))
            return self._complete_bulk(context, hook, dataset_id, final, state)
        current = bulk.get_job(hook, dataset_id)
        job_status = BulkUploadStatus.from_body(current) if current is not None else None
        if current is not None and job_status is not None and job_status.is_terminal:
            return self._complete_bulk(context, hook, dataset_id, current, state)
        from airflow_provider_bria.triggers.upload import BriaBulkUploadTrigger

        self.log.info("Deferring: the triggerer waits for the bulk upload of dataset %s", dataset_id)
        self.defer(
            trigger=BriaBulkUploadTrigger(
                dataset_id=dataset_id,
                bria_conn_id=self.bria_conn_id,
                poll_interval=float(self.poll_interval),
                end_time=time.time() + float(self.timeout),
                hook_params=self.hook_params,
                state=stamp(UPLOAD_RESUME_STATE, state),
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        """Resume after the bulk upload trigger fired: read the final status once and summarise.

        :param context: the task context.
        :param event: the trigger's event: ``status`` (``done``, ``timeout`` or ``error``), ``dataset_id``,
            ``message`` and ``state`` (counts and the staged zip name gathered before deferring).
        """
        from airflow_provider_bria.operators._upload_bulk import redact_signed_urls
        from airflow_provider_bria.triggers.upload import EVENT_DONE, EVENT_TIMEOUT
        from airflow_provider_bria.waiting.events import BULK_UPLOAD_EVENTS, validate_event

        event = validate_event(event, BULK_UPLOAD_EVENTS)
        dataset_id = event["dataset_id"]
        if event["status"] != EVENT_DONE:
            message = (
                f"{redact_signed_urls(event.get('message') or event['status'])}; the job goes on remotely and a retry "
                "of this task resumes waiting (it never submits again)"
            )
            if event["status"] == EVENT_TIMEOUT:
                raise BriaUploadTimeoutError(message)
            raise BriaUploadError(message, failures=[])
        hook = self.hook
        final = hook.get_bulk_upload_status(dataset_id)
        state = event.get("state")
        return self._complete_bulk(context, hook, dataset_id, final,
                                   load(UPLOAD_RESUME_STATE, state) if isinstance(state, dict) else {})

    def _complete_bulk(
        self, context: Any, hook: BriaHook, dataset_id: int, final: dict[str, Any], state: dict[str, Any]
    ) -> dict[str, Any]:
        from airflow_provider_bria.operators import _upload_bulk as bulk

        staged_name = state.get("staged_name")
        if staged_name and self.cleanup_staging:
            bulk.delete_staged(self.staging_path, staged_name)
        return self._bulk_result(
            context, hook, dataset_id, final, total=int(state.get("total") or 0),
            skipped=list(state.get("skipped") or []), already=int(state.get("already") or 0),
            skipped_count=state.get("skipped_count"),
        )

    def _check_bulk_target(self, dataset_id: int, status: str, images_count: int) -> None:
        if status == DatasetStatus.COMPLETED.value:
            raise BriaConflictError(f"Dataset {dataset_id} is completed (frozen): no bulk upload is possible")
        if images_count:
            raise BriaConflictError(
                f"Dataset {dataset_id} already holds {images_count} images and has no bulk upload job: a bulk upload "
                "needs an empty advanced dataset"
            )

    def _zip_entries(self, resolved: ResolvedSources, gate: GateResult) -> list[Any]:
        from airflow_provider_bria.operators._bulk_zip import ZipEntry
        from airflow_provider_bria.operators._quality_gate import SkipCode

        entries: list[ZipEntry] = []
        with_captions = self.automatic_captioning is False
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

    def _bulk_result(
        self, context: Any, hook: BriaHook, dataset_id: int, final: dict[str, Any], *, total: int,
        skipped: list[dict[str, Any]], already: int, skipped_count: int | None = None,
    ) -> dict[str, Any]:
        from airflow_provider_bria.operators import _upload_bulk as bulk

        failures = bulk.failed_images(final)
        status = BulkUploadStatus.from_body(final)
        listing = hook.list_images(dataset_id)
        ids = [int(i["id"]) for i in listing if i.get("id") is not None]
        job = {k: final.get(k) for k in ("status", "progress_percentage", "total_processed", "done", "failed")}
        uploaded = final.get("done")
        summary = self._summary(
            dataset_id=dataset_id, upload_type=UploadType.ADVANCED.value, sources=total,
            uploaded=int(uploaded) if isinstance(uploaded, int) else max(0, len(listing) - already),
            already_present=already, skipped=skipped, failed=failures, image_ids=ids,
            images_in_dataset=len(listing), bulk=job, skipped_count=skipped_count,
        )
        if status is BulkUploadStatus.FAILED and not failures:
            context["ti"].xcom_push(key=XCOM_SUMMARY_KEY, value=summary)
            reason = bulk.redact_signed_urls(str(final.get("message") or job))
            raise BriaUploadError(f"The bulk upload of dataset {dataset_id} failed: {reason}", failures=[])
        return self._finish(context, summary)

