"""Bulk (advanced dataset) upload: stage a zip, submit it once, poll the job.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_bria.contract import BulkUploadStatus
from airflow_provider_bria.exceptions import (
    BriaAPIError,
    BriaInputError,
    BriaNotFoundError,
    BriaServerError,
    BriaTransportError,
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
from airflow_provider_bria.results import loose

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from airflow_provider_bria.hooks.bria import BriaHook

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
    for attempt in (1, 2):
        try:
            hook.bulk_upload(
                dataset_id, zip_url, automatic_captioning=automatic_captioning, content_moderation=content_moderation
            )
            return
        except (BriaServerError, BriaTransportError) as err:
            _redacted(err)
            log.warning("Bulk upload submit failed ambiguously (%s); checking whether the job exists", err)
            time.sleep(settle_delay)
            if get_job(hook, dataset_id) is not None:
                log.info("The bulk upload job exists after all; not submitting again")
                return
            if attempt == 2:
                raise
        except BriaAPIError as err:
            raise _redacted(err) from None


def wait(hook: BriaHook, dataset_id: int, *, poll_interval: float, timeout: float) -> dict[str, Any]:
    """Poll the job until it is ``completed`` or ``failed``; return the last status body.

    :param hook: a hook.
    :param dataset_id: the dataset.
    :param poll_interval: seconds between polls.
    :param timeout: seconds before giving up (the job keeps running remotely; a retry resumes polling).
    :raises BriaUploadTimeoutError: on timeout.
    """
    start = time.monotonic()
    last_progress: Any = None
    while True:
        try:
            body = loose(hook.get_bulk_upload_status(dataset_id))
        except BriaNotFoundError:
            if time.monotonic() - start > _STATUS_GRACE_SECONDS:
                raise
            body = {}
        status = BulkUploadStatus.from_body(body)
        progress = body.get("progress_percentage")
        if status is not None and (progress, status) != last_progress:
            log.info(
                "Bulk upload %s: %s%% (processed %s, done %s, failed %s)",
                status.value, progress, body.get("total_processed"), body.get("done"), body.get("failed"),
            )
            last_progress = (progress, status)
        if status is not None and status.is_terminal:
            return body
        if time.monotonic() - start + poll_interval > timeout:
            raise BriaUploadTimeoutError(
                f"Bulk upload of dataset {dataset_id} still {status.value if status else 'not visible'} after "
                f"{timeout:.0f} s; it goes on remotely and a retry of this task resumes waiting (it never "
                "submits again)"
            )
        time.sleep(poll_interval)


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
