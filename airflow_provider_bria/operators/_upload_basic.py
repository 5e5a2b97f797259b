"""Concurrent, retry-safe per-image upload to a basic dataset.

* At most ``max_concurrency`` uploads are in flight. Every in-flight upload has a hook (and therefore a
  ``requests.Session``) of its own: hooks come from a pool created, and connected, in the calling thread, so
  worker threads never look a connection up themselves.
* Each worker reads one image into memory, checks it still has the hash the quality gate saw, and sends it
  under its stable name ``<stem>-<sha12>.<ext>``.
* The API has no idempotency key, so the hook never retries an upload that may have been applied (5xx, read
  timeout, dropped connection). Here such an *ambiguous* failure is reconciled: the dataset's images are
  listed, and only if the image is not there is it sent again (``image_retries`` times at most).
* A fatal answer (401/403, 404 dataset, 409 dataset completed or full) stops the remaining uploads; the error
  is re-raised by the caller once the in-flight uploads have finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.exceptions import AMBIGUOUS_ERRORS, TARGET_ERRORS, BriaAPIError
from airflow_provider_bria.operators._quality_gate import CheckedImage, key_from_image_name

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook

log = logging.getLogger(__name__)



@dataclass
class BasicOutcome:
    """Result of :meth:`BasicUploader.run`.

    :param uploaded: ``(image, image_id)`` for every image now in the dataset thanks to this run.
    :param reconciled: how many of those were found by listing after an ambiguous failure.
    :param failed: ``{"source", "image_name", "reason"}`` for every image that is not in the dataset.
    :param fatal: the error that stopped the run early, if any.
    :param max_in_flight: the highest number of simultaneous uploads seen.
    """

    uploaded: list[tuple[CheckedImage, int | None]] = field(default_factory=list)
    reconciled: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    fatal: BaseException | None = None
    max_in_flight: int = 0


class BasicUploader:
    """Upload checked images to a basic dataset with bounded concurrency.

    :param hook_factory: builds a new hook (called ``max_concurrency`` times, in the calling thread).
    :param dataset_id: the target dataset.
    :param increase_resolution: sent with every upload.
    :param content_moderation: sent with every upload when not ``None``.
    :param encoding: ``json`` or ``multipart`` (see :meth:`BriaHook.upload_image`).
    :param max_concurrency: uploads in flight at once.
    :param image_retries: extra attempts per image after an ambiguous failure (each after a re-list).
    :param retry_delay: base delay in seconds before re-listing after an ambiguous failure (doubles per attempt).
    """

    def __init__(
        self,
        *,
        hook_factory: Callable[[], BriaHook],
        dataset_id: int,
        increase_resolution: bool,
        content_moderation: bool | None,
        encoding: str,
        max_concurrency: int,
        image_retries: int,
        retry_delay: float = 0.5,
    ) -> None:
        self.hook_factory = hook_factory
        self.dataset_id = dataset_id
        self.increase_resolution = increase_resolution
        self.content_moderation = content_moderation
        self.encoding = encoding
        self.max_concurrency = max(1, max_concurrency)
        self.image_retries = max(0, image_retries)
        self.retry_delay = max(0.0, retry_delay)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._max_in_flight = 0
        self._fatal: BaseException | None = None

    # ------------------------------------------------------------------ public

    def run(self, images: Sequence[CheckedImage]) -> BasicOutcome:
        """Upload ``images``; never raises for a per-image failure.

        :param images: the images to send (none of them already in the dataset).
        """
        outcome = BasicOutcome()
        if not images:
            return outcome
        workers = min(self.max_concurrency, len(images))
        pool: queue.Queue[BriaHook] = queue.Queue()
        for _ in range(workers):
            hook = self.hook_factory()
            hook.get_conn()  # resolve the connection here, not in a worker thread
            pool.put(hook)
        done = 0
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bria-upload") as executor:
                futures = {executor.submit(self._upload_one, img, pool): img for img in images}
                for future in as_completed(futures):
                    img = futures[future]
                    try:
                        image_id, reconciled = future.result()
                    except Exception as err:
                        outcome.failed.append(_failure(img, err))
                    else:
                        outcome.uploaded.append((img, image_id))
                        outcome.reconciled += int(reconciled)
                    done += 1
                    if done % 25 == 0 or done == len(images):
                        log.info("Upload progress: %d/%d images processed", done, len(images))
        finally:
            while not pool.empty():
                _close_quietly(pool.get_nowait())
        outcome.fatal = None if isinstance(self._fatal, _Stopped) else self._fatal
        outcome.max_in_flight = self._max_in_flight
        return outcome

    def stop(self, reason: str = "the task was stopped") -> None:
        """Start no more uploads (the in-flight ones finish); safe to call from a signal handler.

        :param reason: why, reported for the images left out.
        """
        if self._fatal is None:  # no lock: this may run in a signal handler
            self._fatal = _Stopped(reason)
        self._stop.set()

    # ------------------------------------------------------------------ workers

    def _upload_one(self, img: CheckedImage, pool: queue.Queue[BriaHook]) -> tuple[int | None, bool]:
        if self._stop.is_set():
            raise _NotAttempted(f"not attempted: {self._fatal}")
        data = _read_checked(img)
        attempt = 0
        while True:
            hook = pool.get()
            try:
                try:
                    body = self._send(hook, img, data)
                    return _image_id(body), False
                except AMBIGUOUS_ERRORS as err:
                    attempt += 1
                    log.warning(
                        "Upload of %s failed ambiguously (%s); checking the dataset before retrying",
                        img.upload_name, err,
                    )
                    self._sleep(attempt)
                    found, image_id = self._find(hook, img)
                    if found:
                        log.info("%s is in the dataset after all (image id %s)", img.upload_name, image_id)
                        return image_id, True
                    if attempt > self.image_retries or self._stop.is_set():
                        raise
                except TARGET_ERRORS as err:
                    self._set_fatal(err)
                    raise
            finally:
                pool.put(hook)

    def _send(self, hook: BriaHook, img: CheckedImage, data: bytes) -> dict[str, Any]:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            return hook.upload_image(
                self.dataset_id,
                file=data,
                image_name=img.upload_name,
                increase_resolution=self.increase_resolution,
                content_moderation=self.content_moderation,
                encoding=self.encoding,
            )
        finally:
            with self._lock:
                self._in_flight -= 1

    def _find(self, hook: BriaHook, img: CheckedImage) -> tuple[bool, int | None]:
        """Look for ``img`` in the dataset: ``(found, image id)``; a failed listing counts as not found."""
        try:
            listing = hook.list_images(self.dataset_id)
        except BriaAPIError as err:
            log.warning("Could not list the dataset's images to reconcile %s: %s", img.upload_name, err)
            return False, None
        for item in listing:
            if key_from_image_name(item.get("image_name")) == img.key:
                return True, _as_int(item.get("id"))
        return False, None

    def _set_fatal(self, err: BaseException) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = err
        self._stop.set()

    def _sleep(self, attempt: int) -> None:
        if self.retry_delay:
            time.sleep(min(10.0, self.retry_delay * 2 ** (attempt - 1)))


class _Stopped(Exception):
    """The run was stopped from outside (the task is being killed)."""


class _NotAttempted(Exception):
    """An image left out because a fatal error stopped the run."""


class _ChangedSource(Exception):
    """The file changed between the quality gate and the upload."""


def _read_checked(img: CheckedImage) -> bytes:
    with img.source.open() as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != img.sha256:
        raise _ChangedSource(f"{img.source.uri} changed since the quality gate checked it; not uploaded")
    return data


def _image_id(body: Any) -> int | None:
    return _as_int(body.get("id")) if isinstance(body, dict) else None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _failure(img: CheckedImage, err: BaseException) -> dict[str, Any]:
    reason = str(err) if isinstance(err, (_NotAttempted, _ChangedSource)) else f"{type(err).__name__}: {err}"
    return {"source": img.source.uri, "image_name": img.upload_name, "reason": reason[:500]}


def _close_quietly(hook: Any) -> None:
    with contextlib.suppress(Exception):  # closing is best effort
        hook.close()
