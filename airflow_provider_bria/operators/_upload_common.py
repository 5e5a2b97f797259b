"""What both upload strategies (basic and bulk) share: knobs, the quality gate step, guards, the summary.

:class:`UploadStrategy` is the base of :class:`~._upload_basic.BasicStrategy` and
:class:`~._upload_bulk.BulkStrategy`; :class:`~airflow_provider_bria.operators.upload.BriaUploadImagesOperator`
reads the dataset, picks the strategy by the dataset's ``upload_type`` and hands it over. This module is
imported with the operator (DAG parsing), so the quality gate and the source resolution are imported inside
the functions that use them.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.contract import DatasetStatus, UploadType
from airflow_provider_bria.exceptions import BriaInputError, BriaUploadError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.operators._image_sources import ResolvedSources
    from airflow_provider_bria.operators._quality_gate import GateResult

#: Entries of ``skipped``/``failed`` kept in the returned summary (the counts are always complete).
SUMMARY_LIST_CAP = 50
#: ``image_ids`` kept in the returned summary.
IMAGE_IDS_CAP = 200
XCOM_SUMMARY_KEY = "upload_summary"


def coerce_source(source: Any) -> Any:
    """Turn a rendered ``"['a', 'b']"`` (a templated list rendered as text) back into a list.

    :param source: the rendered ``source`` argument.
    """
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


def optional_url(value: Any, field: str) -> str | None:
    """An optional http(s) URL argument: ``None`` when blank.

    :param value: the rendered argument.
    :param field: its name, for the message.
    :raises BriaInputError: when it is given but not an http(s) URL.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not text.lower().startswith(("http://", "https://")):
        raise BriaInputError(f"{field} must be an http(s) URL")
    return text


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def added_after_creation(entries: list[dict[str, Any]], dataset: Mapping[str, Any]) -> int:
    """How many of ``entries`` (dataset images) were added after the dataset was created or cloned.

    An entry or a dataset without a readable ``created_at`` counts as added (never skip a run for want of a
    timestamp).

    :param entries: image objects of the dataset.
    :param dataset: the dataset object.
    """
    created = _when(dataset.get("created_at"))
    if created is None:
        return len(entries)
    count = 0
    for entry in entries:
        added = _when(entry.get("created_at"))
        if added is None or (added.tzinfo is None) != (created.tzinfo is None) or added > created:
            count += 1
    return count


def present_keys(listing: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The dataset's images by content key (from their stable names); images of other names are left out.

    :param listing: the dataset's image objects.
    """
    from airflow_provider_bria.operators._quality_gate import key_from_image_name
    from airflow_provider_bria.results import loose

    present: dict[str, list[dict[str, Any]]] = {}
    for item in listing:
        key = key_from_image_name(item.get("image_name"))
        if key is not None:
            present.setdefault(key, []).append(loose(item))
    return present


@dataclass(frozen=True)
class UploadKnobs:
    """The operator arguments both strategies read (checked by the operator).

    :param source: what to upload (rendered).
    :param increase_resolution: let Bria upscale (basic datasets; refused for bulk uploads).
    :param content_moderation: ask Bria to moderate each image.
    :param max_concurrency: gate checks (and basic uploads) in flight at once.
    :param on_invalid: ``"skip"`` or ``"fail"``.
    :param max_images: refuse more new images than this.
    :param allow_empty: succeed on a source without a valid image.
    :param min_new_images: skip the task when fewer new images arrived.
    :param fail_on_image_errors: raise at the end when images failed.
    """

    source: Any
    increase_resolution: bool
    content_moderation: bool | None
    max_concurrency: int
    on_invalid: str
    max_images: int | None
    allow_empty: bool
    min_new_images: int | None
    fail_on_image_errors: bool


@dataclass(frozen=True)
class UploadTarget:
    """The dataset an upload goes to, as read before anything is sent.

    :param dataset_id: its id.
    :param dataset: the dataset object.
    """

    dataset_id: int
    dataset: dict[str, Any]

    @property
    def upload_type(self) -> str:
        """``basic`` or ``advanced`` (basic when the API does not say)."""
        return str(self.dataset.get("upload_type") or UploadType.BASIC.value).lower()

    @property
    def status(self) -> str:
        """The dataset's status, lower case (``draft`` when the API does not say)."""
        return str(self.dataset.get("status") or DatasetStatus.DRAFT.value).lower()

    @property
    def images_count(self) -> int:
        """The image count the dataset object gives (0 when absent)."""
        return int(self.dataset.get("images_count") or 0)


def build_summary(
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
    """The JSON-safe summary the operator returns (see its docstring for the keys)."""
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


class UploadStrategy:
    """Base of the basic and bulk strategies: the steps before and after the strategy's own upload.

    :param knobs: the shared arguments.
    :param log: the operator's logger.
    """

    def __init__(self, knobs: UploadKnobs, log: Any) -> None:
        self.knobs = knobs
        self.log = log

    def run(self, context: Any, hook: BriaHook, target: UploadTarget) -> dict[str, Any]:
        """Upload to ``target``; return the summary (or raise, see :meth:`finish`).

        :param context: the task context.
        :param hook: the operator's hook.
        :param target: the dataset.
        """
        raise NotImplementedError

    def stop(self, reason: str) -> None:
        """Start no more uploads (the task is being killed); nothing to stop by default.

        :param reason: why, reported for what is left out.
        """

    def resolve(self) -> ResolvedSources:
        """Resolve the source into its candidate files (listing only: no file is read)."""
        from airflow_provider_bria.operators._image_sources import resolve_sources

        source = coerce_source(self.knobs.source)
        if source is None or source == [] or source == "":
            raise BriaInputError("source is required (a path, glob, URI or a list of them)")
        resolved = resolve_sources(source)
        self.log.info("Source resolved to %d candidate files", len(resolved.images))
        return resolved

    def gate_progress(self, total: int) -> Callable[[int], None]:
        """The gate's progress callback (a log line every 100 files).

        :param total: the candidate files.
        """
        return lambda n: self.log.info("Quality gate: %d/%d files checked", n, total)

    def gate(self, *, increase_resolution: bool,
             resolved: ResolvedSources | None = None) -> tuple[ResolvedSources, GateResult]:
        """Resolve the source (unless ``resolved`` is given) and run the quality gate over it.

        :param increase_resolution: accept images from 256x256 instead of 1024x1024.
        :param resolved: the source, already resolved by :meth:`resolve`.
        """
        from airflow_provider_bria.operators._quality_gate import run_quality_gate

        if resolved is None:
            resolved = self.resolve()
        gate = run_quality_gate(
            resolved.images,
            increase_resolution=increase_resolution,
            max_workers=self.knobs.max_concurrency,
            on_checked=self.gate_progress(len(resolved.images)),
        )
        return resolved, gate

    def report_gate(self, gate: GateResult, total: int) -> None:
        """Log what the gate skipped; raise for ``on_invalid="fail"`` or a source without a valid image."""
        self.log.info("Quality gate: %d files, %d accepted, %d skipped", total, len(gate.accepted), len(gate.skipped))
        if gate.skipped:
            from airflow_provider_bria.operators._quality_gate import skipped_warning

            self.log.warning("%s", skipped_warning(gate.skipped, total))
        for item in gate.skipped[:SUMMARY_LIST_CAP]:
            self.log.info("Skipped %s: %s", item["source"], item["reason"])
        if len(gate.skipped) > SUMMARY_LIST_CAP:
            self.log.info("... and %d more skipped files", len(gate.skipped) - SUMMARY_LIST_CAP)
        if gate.skipped and self.knobs.on_invalid == "fail":
            raise BriaInputError(
                f"{len(gate.skipped)} of {total} files failed the quality gate (on_invalid='fail'; nothing was "
                f"uploaded): {gate.problems_text()}"
            )
        if not gate.accepted and not self.knobs.allow_empty and self.knobs.min_new_images is None:
            raise BriaInputError(
                f"None of the {total} source files is a valid image to upload; set allow_empty=True to accept this"
            )

    def check_guard(self, n_new: int) -> None:
        """Refuse more new images than ``max_images``.

        :param n_new: how many images would be sent.
        """
        if self.knobs.max_images is not None and n_new > self.knobs.max_images:
            raise BriaInputError(
                f"{n_new} new images to upload exceed max_images={self.knobs.max_images}; nothing was uploaded"
            )

    def finish(self, context: Any, summary: dict[str, Any], fatal: BaseException | None = None) -> dict[str, Any]:
        """Log the summary, then return it, or raise (fatal error, ``min_new_images``, failed images)."""
        self.log.info(
            "Upload summary for dataset %s: %d uploaded, %d already present, %d skipped, %d failed",
            summary["dataset_id"], summary["uploaded"], summary["already_present"], summary["skipped_count"],
            summary["failed_count"],
        )
        failing = bool(summary["failed_count"] and self.knobs.fail_on_image_errors)
        if fatal is not None or failing:
            context["ti"].xcom_push(key=XCOM_SUMMARY_KEY, value=summary)
        if fatal is not None:
            raise fatal
        minimum = self.knobs.min_new_images
        if minimum is not None and summary["new_images"] < minimum:
            from airflow_provider_bria.exceptions import AirflowSkipException

            context["ti"].xcom_push(key=XCOM_SUMMARY_KEY, value=summary)
            raise AirflowSkipException(
                f"min_new_images={minimum}: only {summary['new_images']} new image(s) arrived in dataset "
                f"{summary['dataset_id']}; skipping this task and everything downstream of it (nothing is trained)"
            )
        if failing:
            failed = summary["failed"]
            details = "; ".join(f"{f.get('source')}: {f.get('reason')}" for f in failed[:10])
            raise BriaUploadError(
                f"{summary['failed_count']} images failed to upload to dataset {summary['dataset_id']} "
                f"({summary['uploaded']} uploaded, {summary['already_present']} already present, kept): {details}",
                failures=failed,
            )
        return summary
