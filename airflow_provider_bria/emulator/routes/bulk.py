"""Bulk (advanced) upload (contract §4.15-4.16): one ZIP per empty advanced dataset, processed in a thread.

The ZIP is fetched over http(s) only, with a size cap (``--max-zip-mb``) and a download time limit (5 min);
big ZIPs spill to a temporary file instead of staying in memory. Entries with
absolute paths or ``..`` are refused, as are non-image files (legacy ``.txt`` captions excepted); each
refused or invalid image is reported in ``failed_images`` and the others are kept. Every image is added
in its own transaction, so progress is visible while the job runs and an interrupted job leaves only
whole images behind.
"""

from __future__ import annotations

import posixpath
import tempfile
import threading
import time
import zipfile
import zlib
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from airflow_provider_bria.contract import (
    ADVANCED_MAX_IMAGES,
    BULK_ZIP_MAX_BYTES,
    DatasetStatus,
    UploadType,
    check_resolution,
    image_format_from_name,
)
from airflow_provider_bria.emulator import media
from airflow_provider_bria.emulator.fetch import FetchError, check_url, content_length, fetch_to
from airflow_provider_bria.emulator.routes._common import (
    get_bool,
    get_str,
    json_body,
    parse_id,
    require_path_variant,
    respond,
    runtime,
    v1_error,
)
from airflow_provider_bria.emulator.routes.datasets import is_fibo, load_dataset
from airflow_provider_bria.emulator.routes.images import MODERATION_HOOK, add_image
from airflow_provider_bria.emulator.runtime import Runtime
from airflow_provider_bria.emulator.settings import MAX_IMAGE_BYTES
from airflow_provider_bria.emulator.views import iso
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter()

#: ZIPs up to this size stay in memory while processed; bigger ones spill to a temporary file.
SPOOL_BYTES = 32 * 1024 * 1024
#: Largest legacy caption file read from a ZIP.
CAPTION_MAX_BYTES = 64 * 1024


def _unsafe(name: str) -> bool:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return True
    return ".." in normalised.split("/")


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    processed = job["done"] + job["failed"]
    total = job["total"]
    progress = int(100 * processed / total) if total else 0
    if job["status"] in ("completed", "failed"):
        progress = 100
    out = {
        "status": job["status"],
        "progress_percentage": progress,
        "total_processed": processed,
        "done": job["done"],
        "failed": job["failed"],
        "failed_images": job["failed_images"],
    }
    if job.get("error"):
        out["message"] = job["error"]
    return out


async def _start(request: Request, dataset_id: str) -> Response:
    did = parse_id(dataset_id, "Dataset")
    body = await json_body(request)
    zip_url = get_str(body, "zip_url", required=True)
    automatic = get_bool(body, "automatic_captioning", True)
    moderate = get_bool(body, "content_moderation", False)
    try:
        check_url(zip_url)
    except FetchError as exc:
        raise v1_error(400, exc.text) from None
    rt = runtime(request)

    def check(tx: Any) -> dict[str, Any]:
        dataset = load_dataset(tx, did)
        if dataset["upload_type"] != UploadType.ADVANCED.value:
            raise v1_error(400, "Bulk upload is only supported for advanced datasets")
        if dataset["status"] == DatasetStatus.COMPLETED.value:
            raise v1_error(400, "Cannot bulk upload into a completed dataset")
        job = tx.get("bulk_jobs", did)
        if job is not None and job["status"] in ("pending", "processing"):
            raise v1_error(400, "Another bulk upload is in progress for this dataset")
        if job is not None or dataset.get("_bulk_attempted"):
            raise v1_error(400, "A bulk upload was already attempted for this dataset; create a new dataset")
        if tx.count("images", dataset_id=did):
            raise v1_error(400, "Bulk upload requires an empty dataset")
        return dataset

    with rt.store.read() as tx:
        check(tx)
    try:
        size = await run_in_threadpool(content_length, zip_url, rt.fetch_policy())
    except FetchError as exc:
        raise v1_error(400, exc.text) from None
    limit = min(BULK_ZIP_MAX_BYTES, rt.settings.max_zip_bytes)
    if size is not None and size > limit:
        raise v1_error(413, f"The ZIP file is {size} bytes; the limit is {limit} bytes")
    with rt.store.tx() as tx:
        dataset = check(tx)
        stamp = iso()
        dataset.update(_bulk_attempted=True, updated_at=stamp)
        if not is_fibo(dataset):
            dataset["captions_source"] = "automatic" if automatic else "manual"
        tx.put("datasets", dataset)
        job = {
            "id": did,
            "status": "pending",
            "zip_url": zip_url,
            "total": 0,
            "done": 0,
            "failed": 0,
            "failed_images": [],
            "error": None,
            "created_at": stamp,
            "updated_at": stamp,
        }
        tx.put("bulk_jobs", job)
        epoch = rt.store.epoch
    threading.Thread(
        target=run_bulk, args=(rt, did, zip_url, automatic, moderate, epoch), name=f"bulk-{did}", daemon=True
    ).start()
    return respond({}, 202)  # the spec documents no 202 body fields; progress is read from .../status


@router.post("/v1/tailored-gen/datasets/{dataset_id}/images/bulk-upload")
async def bulk_upload(request: Request, dataset_id: str) -> Response:
    """``POST .../images/bulk-upload`` -> 202; the job runs in the background.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    require_path_variant(request, "documented")
    return await _start(request, dataset_id)


@router.post("/v1/tailored-gen/datasets/{dataset_id}/images/bulk")
async def bulk_upload_alias(request: Request, dataset_id: str) -> Response:
    """``POST .../images/bulk``: alias (the overview prose spells the path this way).

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    require_path_variant(request, "alternate")
    return await _start(request, dataset_id)


async def _status(request: Request, dataset_id: str) -> Response:
    did = parse_id(dataset_id, "Dataset")
    with runtime(request).store.read() as tx:
        load_dataset(tx, did)
        job = tx.get("bulk_jobs", did)
    if job is None:
        raise v1_error(404, "No bulk upload was started for this dataset")
    return respond(_job_view(job))


@router.get("/v1/tailored-gen/datasets/{dataset_id}/images/bulk-upload/status")
async def bulk_upload_status(request: Request, dataset_id: str) -> Response:
    """``GET .../images/bulk-upload/status``.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    require_path_variant(request, "documented")
    return await _status(request, dataset_id)


@router.get("/v1/tailored-gen/datasets/{dataset_id}/images/bulk/status")
async def bulk_upload_status_alias(request: Request, dataset_id: str) -> Response:
    """``GET .../images/bulk/status``: alias.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    require_path_variant(request, "alternate")
    return await _status(request, dataset_id)


# --------------------------------------------------------------------------------------------
# The background job
# --------------------------------------------------------------------------------------------


class _Aborted(Exception):
    """The emulator was reset or the dataset deleted while the job ran."""


def _update(rt: Runtime, dataset_id: int, epoch: int, **changes: Any) -> None:
    with rt.store.tx() as tx:
        job = tx.get("bulk_jobs", dataset_id)
        if rt.store.epoch != epoch or job is None:
            raise _Aborted
        failures = changes.pop("add_failures", [])
        job["failed_images"] = job["failed_images"] + failures
        job["failed"] += len(failures)
        job.update(changes, updated_at=iso())
        tx.put("bulk_jobs", job)


def _failure(filename: str, code: int, text: str) -> dict[str, Any]:
    return {"filename": filename, "error_code": code, "error_message": text}


def run_bulk(rt: Runtime, dataset_id: int, zip_url: str, automatic: bool, moderate: bool, epoch: int) -> None:
    """Process one bulk upload (thread body).

    :param rt: the runtime.
    :param dataset_id: the advanced dataset.
    :param zip_url: the ZIP's URL.
    :param automatic: ``automatic_captioning`` (legacy only; ``False`` reads same-named ``.txt`` captions).
    :param moderate: ``content_moderation``.
    :param epoch: the store epoch when the job started (a reset aborts it).
    """
    try:
        _run(rt, dataset_id, zip_url, automatic, moderate, epoch)
    except _Aborted:
        return
    except Exception as exc:  # a bug must not leave the job "processing" forever
        try:
            _update(rt, dataset_id, epoch, status="failed", error=f"Internal error: {exc}")
        except _Aborted:
            return


def _run(rt: Runtime, dataset_id: int, zip_url: str, automatic: bool, moderate: bool, epoch: int) -> None:
    deadline = time.monotonic() + rt.settings.bulk_time_limit
    _update(rt, dataset_id, epoch, status="processing")
    limit = min(BULK_ZIP_MAX_BYTES, rt.settings.max_zip_bytes)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        try:
            policy = rt.fetch_policy(timeout=rt.settings.bulk_time_limit)
            fetch_to(spool, zip_url, max_bytes=limit, policy=policy, deadline=deadline)
            spool.seek(0)
            archive = zipfile.ZipFile(spool)
        except FetchError as exc:
            _update(rt, dataset_id, epoch, status="failed", error=exc.text)
            return
        except zipfile.BadZipFile:
            _update(rt, dataset_id, epoch, status="failed", error="zip_url does not point to a valid ZIP file")
            return
        with archive:
            _process(rt, dataset_id, archive, automatic, moderate, epoch)


def _process(
    rt: Runtime,
    dataset_id: int,
    archive: zipfile.ZipFile,
    automatic: bool,
    moderate: bool,
    epoch: int,
) -> None:
    with rt.store.read() as tx:
        dataset = tx.get("datasets", dataset_id)
    if dataset is None:
        return
    fibo = is_fibo(dataset)
    captions: dict[str, str] = {}
    images: list[zipfile.ZipInfo] = []
    failures: list[dict[str, Any]] = []
    for info in archive.infolist():
        name = info.filename
        base = posixpath.basename(name.replace("\\", "/"))
        if info.is_dir() or name.startswith("__MACOSX/") or base.startswith("."):
            continue
        if _unsafe(name):
            failures.append(_failure(name, 400, "Unsafe path in ZIP (absolute or containing '..')"))
        elif base.lower().endswith(".txt"):
            if not fibo and info.file_size <= CAPTION_MAX_BYTES:
                try:
                    text = _read_entry(archive, info, CAPTION_MAX_BYTES)
                except _BadEntry as exc:
                    failures.append(_failure(name, 422, str(exc)))
                    continue
                captions[posixpath.splitext(name)[0]] = text.decode("utf-8", "replace").strip()
        elif image_format_from_name(base) is None:
            failures.append(_failure(name, 415, "Unsupported file type; supported: jpg, jpeg, png, webp"))
        else:
            images.append(info)
    images.sort(key=lambda i: i.filename)
    _update(rt, dataset_id, epoch, total=len(images) + len(failures), add_failures=failures)
    done = 0
    for info in images:
        failure, prepared = _prepare_entry(archive, info, done, moderate, fibo, automatic, captions)
        if failure is not None:
            _update(rt, dataset_id, epoch, add_failures=[failure])
            continue
        with rt.store.tx() as tx:
            current = tx.get("datasets", dataset_id)
            if rt.store.epoch != epoch or current is None:
                raise _Aborted
            add_image(tx, current, **prepared)
            job = tx.get("bulk_jobs", dataset_id)
            job.update(done=job["done"] + 1, updated_at=iso())
            tx.put("bulk_jobs", job)
        done += 1
    _update(
        rt,
        dataset_id,
        epoch,
        status="completed" if done else "failed",
        error=None if done else "No image of the ZIP could be uploaded",
    )


class _BadEntry(Exception):
    """A ZIP entry that cannot be read (corrupt data, unsupported compression, encryption)."""


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """At most ``limit`` bytes of one entry, whatever its header claims (a zip bomb inflates no further).

    :raises _BadEntry: when the entry is corrupt or unreadable.
    """
    try:
        with archive.open(info) as handle:
            return handle.read(limit)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise _BadEntry(f"Corrupt or unreadable ZIP entry: {exc.__class__.__name__}") from None


def _prepare_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    done: int,
    moderate: bool,
    fibo: bool,
    automatic: bool,
    captions: dict[str, str],
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Check one ZIP image; returns ``(failure, {})`` or ``(None, add_image kwargs)``."""
    name = info.filename
    base = posixpath.basename(name.replace("\\", "/"))
    if done >= ADVANCED_MAX_IMAGES:
        return _failure(name, 413, f"The dataset already has the maximum of {ADVANCED_MAX_IMAGES} images"), {}
    if info.file_size > MAX_IMAGE_BYTES:
        return _failure(name, 413, "Image is larger than 12 MB"), {}
    try:
        data = _read_entry(archive, info, MAX_IMAGE_BYTES + 1)
    except _BadEntry as exc:
        return _failure(name, 422, str(exc)), {}
    if len(data) > MAX_IMAGE_BYTES:
        return _failure(name, 413, "Image is larger than 12 MB"), {}
    try:
        analysis = media.analyse(data)
        check_resolution(analysis["width"], analysis["height"], increase_resolution=False)
    except media.MediaError as exc:
        return _failure(name, exc.status, exc.text), {}
    except BriaInputError as exc:
        return _failure(name, 412, str(exc)), {}
    if moderate and MODERATION_HOOK in base.lower():
        return _failure(name, 422, "Content moderation failed (emulator test hook 'moderation-block')"), {}
    caption = None
    if not fibo and not automatic:
        text = captions.get(posixpath.splitext(name)[0])
        if not text:
            return _failure(name, 400, "Missing caption file (same name, .txt) with automatic_captioning=false"), {}
        caption = (text, "manual")
    prepared = {"data": data, "analysis": analysis, "image_name": base, "source_url": None, "caption": caption}
    return None, prepared
