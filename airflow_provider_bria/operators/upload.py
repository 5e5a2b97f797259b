"""Upload images to a Bria dataset: quality gate, bounded concurrency, retry-safe, basic or bulk (advanced).

See ``docs/upload.md`` for the user guide. The operator reads the dataset and hands the upload to one of two
strategies, imported lazily so that importing this module (DAG parsing) stays cheap:

* :mod:`._upload_common`: what both share (knobs, quality gate step, guards, summary);
* :mod:`._upload_basic`: basic datasets, uploaded image by image, concurrently, reconciling ambiguous failures;
* :mod:`._upload_bulk`: advanced datasets, a zip staged (:mod:`._bulk_zip`), submitted once and waited for,
  with a typed, versioned resume state carried through the deferral.

Below them, :mod:`._image_sources` resolves folders, globs, lists and object-storage URIs into files and
:mod:`._quality_gate` checks format, resolution and integrity and hashes every file (streamed).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bria._compat import conf
from airflow_provider_bria.contract import UploadType
from airflow_provider_bria.exceptions import (
    BriaInputError,
    BriaUploadError,
    BriaUploadTimeoutError,
)
from airflow_provider_bria.links.bria import BriaDatasetLink, push_console_xcoms
from airflow_provider_bria.operators._reconcile import coerce_bool, coerce_id, is_templated, reconcile_delay
from airflow_provider_bria.operators.base import BriaBaseOperator, Number, lazy_reexports

if TYPE_CHECKING:
    from airflow_provider_bria.operators._upload_bulk import BulkResumeState, BulkStrategy
    from airflow_provider_bria.operators._upload_common import IMAGE_IDS_CAP as IMAGE_IDS_CAP
    from airflow_provider_bria.operators._upload_common import SUMMARY_LIST_CAP as SUMMARY_LIST_CAP
    from airflow_provider_bria.operators._upload_common import XCOM_SUMMARY_KEY as XCOM_SUMMARY_KEY
    from airflow_provider_bria.operators._upload_common import UploadKnobs, UploadStrategy
    from airflow_provider_bria.operators._upload_common import added_after_creation as added_after_creation

__all__ = [
    "ENCODINGS", "IMAGE_IDS_CAP", "ON_INVALID_CHOICES", "SUMMARY_LIST_CAP", "XCOM_SUMMARY_KEY",
    "BriaUploadImagesOperator", "added_after_creation",
]


#: Names this module has always exported, defined with the upload steps (imported on first access, not at parse).
__getattr__ = lazy_reexports("airflow_provider_bria.operators._upload_common",
                             ["IMAGE_IDS_CAP", "SUMMARY_LIST_CAP", "XCOM_SUMMARY_KEY", "added_after_creation"])

#: Values of ``on_invalid`` and ``encoding`` (checked when the task is defined).
ON_INVALID_CHOICES = ("skip", "fail")
ENCODINGS = ("json", "multipart")


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
    :param max_concurrency: uploads (and gate checks) in flight at once; local or ``memory://`` files averaging
        under 256 KiB are gate-checked in the task's thread (threads only slow small checks down).
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
    _strategy: UploadStrategy | None = None  # the running strategy, for on_kill

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
        from airflow_provider_bria.operators._upload_common import UploadTarget
        from airflow_provider_bria.results import loose

        dataset_id = coerce_id(self.dataset_id, "dataset_id")
        self.increase_resolution = coerce_bool(self.increase_resolution, "increase_resolution")
        hook = self.hook
        target = UploadTarget(dataset_id, loose(hook.get_dataset(dataset_id, max_images=1)))
        self.log.info(
            "Dataset %s: %s upload type, status %s, %s images (try %s)", dataset_id, target.upload_type,
            target.status, target.dataset.get("images_count", "?"), getattr(context["ti"], "try_number", "?"),
        )
        project_id = target.dataset.get("project_id")
        push_console_xcoms(
            context, getattr(hook, "console_url", None),
            project_id=coerce_id(project_id, "project_id") if project_id is not None else None,
            dataset_id=dataset_id,
        )
        if target.upload_type == UploadType.ADVANCED.value:
            strategy: UploadStrategy = self._bulk_strategy()
        else:
            if self.zip_url or self.staging_path or self.staging_url:
                raise BriaInputError(
                    f"Dataset {dataset_id} is a basic dataset: zip_url, staging_path and staging_url only apply "
                    "to advanced (bulk upload) datasets"
                )
            strategy = self._basic_strategy()
        self._strategy = strategy
        try:
            return strategy.run(context, hook, target)
        finally:
            self._strategy = None

    def on_kill(self) -> None:
        """Start no more uploads when the task is killed (in-flight uploads finish; a retry resumes cleanly)."""
        strategy = getattr(self, "_strategy", None)
        if strategy is not None:
            strategy.stop("the task was killed")

    def _knobs(self) -> UploadKnobs:
        from airflow_provider_bria.operators._upload_common import UploadKnobs

        return UploadKnobs(
            source=self.source, increase_resolution=bool(self.increase_resolution),
            content_moderation=self.content_moderation, max_concurrency=int(self.max_concurrency),
            on_invalid=self.on_invalid, max_images=self.max_images, allow_empty=self.allow_empty,
            min_new_images=self.number_arg("min_new_images", self.min_new_images),
            fail_on_image_errors=self.fail_on_image_errors,
        )

    def _basic_strategy(self) -> UploadStrategy:
        from airflow_provider_bria.hooks.bria import BriaHook
        from airflow_provider_bria.operators._upload_basic import BasicKnobs, BasicStrategy

        basic = BasicKnobs(encoding=self.encoding, image_retries=int(self.image_retries),
                           retry_delay=reconcile_delay(self))
        return BasicStrategy(self._knobs(), basic, self.log,
                             lambda: BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params))

    def _bulk_strategy(self) -> BulkStrategy:
        from airflow_provider_bria.operators._upload_bulk import BulkKnobs, BulkStrategy

        bulk = BulkKnobs(
            staging_path=self.staging_path, zip_url=self.zip_url, staging_url=self.staging_url,
            automatic_captioning=self.automatic_captioning, cleanup_staging=self.cleanup_staging,
            poll_interval=float(self.poll_interval), timeout=float(self.timeout), deferrable=self.deferrable,
            settle_delay=reconcile_delay(self),
        )
        return BulkStrategy(self._knobs(), bulk, self.log, self._defer_bulk)

    def _defer_bulk(self, dataset_id: int, state: BulkResumeState) -> None:
        """Hand the wait for the bulk job to the triggerer (raises ``TaskDeferred``)."""
        from airflow_provider_bria.triggers.upload import BriaBulkUploadTrigger

        self.defer(
            trigger=BriaBulkUploadTrigger(
                dataset_id=dataset_id,
                bria_conn_id=self.bria_conn_id,
                poll_interval=float(self.poll_interval),
                end_time=time.time() + float(self.timeout),
                hook_params=self.hook_params,
                state=state.to_record(),
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
        from airflow_provider_bria.operators._upload_bulk import BulkResumeState, redact_signed_urls
        from airflow_provider_bria.results import loose
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
        final = loose(hook.get_bulk_upload_status(dataset_id))
        state = BulkResumeState.from_record(event.get("state"))
        return self._bulk_strategy().complete(context, hook, dataset_id, final, state)
