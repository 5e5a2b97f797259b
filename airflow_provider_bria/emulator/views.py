"""Stored documents -> API JSON, and the time-driven part of the state.

Training progress, ``Stopping -> Stopped``, caption regeneration and v2 jobs advance with the clock. Nothing
runs in the background for them: a model document carries its pending transitions (``_next``: a list of
``[epoch_seconds, status]``), and every read resolves them against the current time. Writes store the
resolved document. So a restart with ``--state-file`` picks up exactly where the clock says.

Keys starting with ``_`` are internal and never leave the emulator. File names are stored, URLs are built
per request from the request's own base URL, so they stay valid when a restarted emulator gets a new port.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

from airflow_provider_bria.contract import ModelStatus, TrainingMode

FILES_PREFIX = "/_emulator/files/"


def now() -> float:
    """Wall-clock epoch seconds (wall clock, so timestamps survive restarts)."""
    return time.time()


def iso(epoch: float | None = None) -> str:
    """A naive UTC ISO-8601 timestamp with microseconds, the form Bria's model examples use.

    :param epoch: epoch seconds (now when ``None``).
    """
    moment = dt.datetime.fromtimestamp(now() if epoch is None else epoch, tz=dt.timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")


def unguessable(stem: str, suffix: str = "") -> str:
    """A stored file name nobody can guess: ``{stem}-{128 random bits}{suffix}``.

    File URLs play the role of Bria's pre-signed URLs; the token guards them too, the random part keeps one
    client from enumerating another's files by id.

    :param stem: a readable prefix (``ds3-img7``, ``gen-<request id>``).
    :param suffix: the rest of the name (``.png``, ``-o-photo.jpg``).
    """
    return f"{stem}-{secrets.token_hex(16)}{suffix}"


def file_url(base: str, name: str | None) -> str | None:
    """The absolute URL of a file served by the emulator.

    :param base: the request's base URL, without trailing slash.
    :param name: the stored file name.
    """
    return f"{base}{FILES_PREFIX}{name}" if name else None


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A document without its internal (``_``-prefixed) keys.

    :param doc: a stored document.
    """
    return {k: v for k, v in doc.items() if not k.startswith("_")}


# --------------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------------


def project_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A project as the API returns it.

    :param doc: the stored project.
    """
    return public(doc)


# --------------------------------------------------------------------------------------------
# Datasets and images
# --------------------------------------------------------------------------------------------


def captions_status(doc: dict[str, Any], at: float | None = None) -> str:
    """The effective ``captions_update_status`` of a dataset (``in_progress`` while a regeneration runs).

    :param doc: the stored dataset.
    :param at: the time (now when ``None``).
    """
    ready_at = doc.get("_captions_ready_at")
    if ready_at is not None and (now() if at is None else at) < ready_at:
        return "in_progress"
    return doc["captions_update_status"]


def dataset_view(
    doc: dict[str, Any],
    *,
    images_count: int | None = None,
    images: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A dataset as the API returns it.

    :param doc: the stored dataset.
    :param images_count: adds ``images_count`` when given.
    :param images: adds ``images`` (already rendered) when given.
    """
    out = public(doc)
    out["captions_update_status"] = captions_status(doc)
    if images_count is not None:
        out["images_count"] = images_count
    if images is not None:
        out["images"] = images
    return out


def image_view(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """An image as the API returns it.

    :param doc: the stored image.
    :param base: the request's base URL.
    """
    out = public(doc)
    out.pop("sha256", None)
    out["image_url"] = file_url(base, doc.get("_file"))
    out["thumbnail_url"] = file_url(base, doc.get("_thumb"))
    return out


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def checkpoint_plan(params: dict[str, Any], started: float, duration: float, job_id: int) -> list[dict[str, Any]]:
    """The checkpoints an expert training will have produced when it completes.

    :param params: the effective training parameters.
    :param started: epoch seconds when training started.
    :param duration: training duration, seconds.
    :param job_id: the training job id to report.
    """
    total = int(params.get("total_training_steps") or 0)
    interval = int(params.get("checkpoint_interval") or 0) or total
    if total <= 0:
        return []
    steps = list(range(interval, total + 1, interval))
    if not steps or steps[-1] != total:
        steps.append(total)
    return [
        {"checkpoint_step": s, "training_job_id": job_id, "created_at": iso(started + duration * s / total)}
        for s in steps
    ]


def enter_status(doc: dict[str, Any], status: str, at: float) -> None:
    """Move a model document to ``status`` (in place), filling what completion fills.

    :param doc: the model document.
    :param status: the new status.
    :param at: when it happened (epoch seconds).
    """
    doc["status"] = status
    doc["updated_at"] = iso(at)
    if status == ModelStatus.COMPLETED.value and doc.get("training_mode") == TrainingMode.EXPERT.value:
        deleted = set(doc.get("_deleted_steps") or [])
        steps = [c["checkpoint_step"] for c in doc.get("_checkpoints") or [] if c["checkpoint_step"] not in deleted]
        if steps:
            doc["checkpoint_steps"] = [str(s) for s in sorted(steps, reverse=True)]
            doc["active_model_version"] = str(max(steps))


def resolve_model(doc: dict[str, Any], at: float | None = None) -> dict[str, Any]:
    """Apply the model's due transitions; returns the same dict when nothing was due, else a new one.

    :param doc: the stored model.
    :param at: the time (now when ``None``).
    """
    pending = doc.get("_next") or []
    if not pending:
        return doc
    moment = now() if at is None else at
    due = [t for t in pending if t[0] <= moment]
    if not due:
        return doc
    out = dict(doc)
    for when, status in due:
        enter_status(out, status, when)
    out["_next"] = [t for t in pending if t[0] > moment]
    return out


def model_view(doc: dict[str, Any], *, include_training_parameters: bool = True) -> dict[str, Any]:
    """A model as the API returns it, its status resolved against the clock.

    :param doc: the stored model.
    :param include_training_parameters: when false (list endpoints' default), ``training_parameters`` and
        ``checkpoint_steps`` are left out.
    """
    out = public(resolve_model(doc))
    if out.get("dataset_id") is None:  # uploaded models have no dataset; the spec types dataset_id integer
        out.pop("dataset_id", None)
    if not include_training_parameters:
        out.pop("training_parameters", None)
        out.pop("checkpoint_steps", None)
    return out


def is_training(doc: dict[str, Any]) -> bool:
    """Whether a (resolved) model is training: ``InProgress``, ``Stopping`` or ``syncing``.

    :param doc: the model document, already resolved.
    """
    return doc["status"] in (ModelStatus.IN_PROGRESS.value, ModelStatus.STOPPING.value, ModelStatus.SYNCING.value)


# --------------------------------------------------------------------------------------------
# v2 jobs
# --------------------------------------------------------------------------------------------


def job_view(doc: dict[str, Any], base: str, at: float | None = None) -> dict[str, Any]:
    """A v2 status response body for a stored job.

    :param doc: the stored job.
    :param base: the request's base URL.
    :param at: the time (now when ``None``).
    """
    moment = now() if at is None else at
    if moment < doc["ready_at"]:
        return {"status": "IN_PROGRESS", "request_id": doc["id"]}
    if doc["outcome"] == "ERROR":
        return {"status": "ERROR", "error": doc["error"], "request_id": doc["id"]}
    return {"status": "COMPLETED", "result": job_result(doc, base), "request_id": doc["id"]}


def job_result(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """The ``result`` object of a completed job, with absolute file URLs.

    :param doc: the stored job.
    :param base: the request's base URL.
    """
    result = dict(doc["result"])
    for key, file_key in (("image_url", "_image_file"), ("video_url", "_video_file")):
        if doc.get(file_key):
            result[key] = file_url(base, doc[file_key])
    return result
