"""The basic strategy: concurrent, retry-safe per-image upload to a basic dataset.

:class:`BasicStrategy` (with its own knobs, :class:`BasicKnobs`) gates the source, lists what the dataset holds,
uploads the rest with :class:`BasicUploader` and removes duplicates a lost response left. The uploader:

* At most ``max_concurrency`` uploads are in flight. Every in-flight upload has a hook (and therefore a
  ``requests.Session``) of its own: hooks come from a pool created, and connected, in the calling thread, so
  worker threads never look a connection up themselves.
* Each worker reads one image into memory, hashing it while it reads (no second pass), checks it still has
  the hash the quality gate saw, and sends those very bytes under its stable name ``<stem>-<sha12>.<ext>``.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.contract import BASIC_MAX_IMAGES, DatasetStatus, UploadType
from airflow_provider_bria.exceptions import TARGET_ERRORS, BriaAPIError, BriaConflictError, BriaError, BriaInputError
from airflow_provider_bria.operators._quality_gate import CHUNK_SIZE, CheckedImage, GateResult, key_from_image_name
from airflow_provider_bria.operators._reconcile import apply_then_check
from airflow_provider_bria.operators._upload_common import (
    UploadKnobs,
    UploadStrategy,
    UploadTarget,
    added_after_creation,
    build_summary,
    present_keys,
)

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

    def run(self, images: Iterable[CheckedImage], *, count: int | None = None) -> BasicOutcome:
        """Upload ``images``; never raises for a per-image failure.

        :param images: the images to send (none of them already in the dataset); an iterator (the quality gate's
            stream) is consumed as its images come, each upload starting as soon as its image is known.
        :param count: the most images an iterator can yield (sizes the worker pool); ``None``: ``images`` is
            read into a list first.
        """
        outcome = BasicOutcome()
        if count is None:
            images = list(images)
            count = len(images)
        if not count:
            return outcome
        workers = min(self.max_concurrency, count)
        pool: queue.Queue[BriaHook] = queue.Queue()
        for _ in range(workers):
            hook = self.hook_factory()
            hook.get_conn()  # resolve the connection here, not in a worker thread
            pool.put(hook)
        done = 0
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bria-upload") as executor:
                futures = {executor.submit(self._upload_one, img, pool): img for img in images}
                total = len(futures)
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
                    if done % 25 == 0 or done == total:
                        log.info("Upload progress: %d/%d images processed", done, total)
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
        hook = pool.get()
        try:
            outcome = apply_then_check(
                lambda: self._send(hook, img, data), lambda: self._find(hook, img),
                what=f"Upload of {img.upload_name}", retries=self.image_retries, delay=self._delay,
                may_retry=lambda: not self._stop.is_set(), log=log,
            )
        except TARGET_ERRORS as err:
            self._set_fatal(err)
            raise
        finally:
            pool.put(hook)
        return _image_id(outcome.value), outcome.reconciled

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

    def _find(self, hook: BriaHook, img: CheckedImage) -> dict[str, Any] | None:
        """Look for ``img`` in the dataset: its image object, or ``None``; a failed listing counts as not found."""
        try:
            listing = hook.list_images(self.dataset_id)
        except BriaAPIError as err:
            log.warning("Could not list the dataset's images to reconcile %s: %s", img.upload_name, err)
            return None
        for item in listing:
            if key_from_image_name(item.get("image_name")) == img.key:
                log.info("%s is in the dataset after all (image id %s)", img.upload_name, item.get("id"))
                return dict(item)
        return None

    def _set_fatal(self, err: BaseException) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = err
        self._stop.set()

    def _delay(self, attempt: int) -> float:
        """Seconds to wait before looking the image up after the ``attempt``-th ambiguous failure."""
        return min(10.0, self.retry_delay * 2 ** (attempt - 1)) if self.retry_delay else 0.0


class _Stopped(Exception):
    """The run was stopped from outside (the task is being killed)."""


class _NotAttempted(Exception):
    """An image left out because a fatal error stopped the run."""


class _ChangedSource(Exception):
    """The file changed between the quality gate and the upload."""


def _read_checked(img: CheckedImage) -> bytes:
    """Read the bytes to upload, hashing them as they are read: one pass, and they are the bytes the gate checked.

    At most the gate's size plus one chunk is read (a file that grew is refused, not read to its end).

    :param img: the checked image.
    :raises _ChangedSource: when the content is not the one the gate hashed.
    """
    digest = hashlib.sha256()
    parts: list[bytes] = []
    read = 0
    with img.source.open() as fh:
        while read <= img.size and (chunk := fh.read(CHUNK_SIZE)):
            digest.update(chunk)
            parts.append(chunk)
            read += len(chunk)
    if read != img.size or digest.hexdigest() != img.sha256:
        raise _ChangedSource(f"{img.source.uri} changed since the quality gate checked it; not uploaded")
    return parts[0] if len(parts) == 1 else b"".join(parts)


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


# ---------------------------------------------------------------------------------------------- the strategy


@dataclass(frozen=True)
class BasicKnobs:
    """The operator arguments only basic uploads read.

    :param encoding: ``json`` or ``multipart``.
    :param image_retries: extra attempts per image after an ambiguous failure.
    :param retry_delay: base delay before looking an image up after an ambiguous failure.
    """

    encoding: str
    image_retries: int
    retry_delay: float


class BasicStrategy(UploadStrategy):
    """Upload to a basic dataset: gate, list what is there, upload the rest concurrently, verify.

    ``knobs`` and ``log`` as for :class:`UploadStrategy`; ``basic`` holds the basic-only arguments and
    ``hook_factory`` builds a hook per concurrent upload.
    """

    def __init__(self, knobs: UploadKnobs, basic: BasicKnobs, log: Any,
                 hook_factory: Callable[[], BriaHook]) -> None:
        super().__init__(knobs, log)
        self.basic = basic
        self.hook_factory = hook_factory
        self._uploader: BasicUploader | None = None

    def stop(self, reason: str) -> None:
        """Start no more uploads (the in-flight ones finish).

        :param reason: why, reported for the images left out.
        """
        uploader = self._uploader
        if uploader is not None:
            uploader.stop(reason)

    def run(self, context: Any, hook: BriaHook, target: UploadTarget) -> dict[str, Any]:
        """Check, upload what the dataset lacks, verify; return the summary (see :meth:`UploadStrategy.run`).

        When no outcome of the quality gate could make the task refuse the upload (see :meth:`_may_overlap`), each
        image is uploaded as soon as the gate accepted it, while the gate checks the next files; otherwise the
        whole source is checked first and nothing is sent if it must be refused.
        """
        resolved = self.resolve()
        total = len(resolved.images)
        listing: list[Any] | None = None
        gate = GateResult()
        outcome: BasicOutcome | None = None
        if self._may_overlap(target, total):
            listing = list(hook.list_images(target.dataset_id))
            present = present_keys(listing)
            if _basic_room(target, len(listing), total) is None:
                outcome = self._upload_while_gating(target.dataset_id, resolved.images, present, gate)
                self.report_gate(gate, total)
        if outcome is None:
            gate = self.gate(increase_resolution=self.knobs.increase_resolution, resolved=resolved)[1]
            self.report_gate(gate, total)
        if listing is None:
            listing = list(hook.list_images(target.dataset_id))
            present = present_keys(listing)
        new = [c for c in gate.accepted if c.key not in present]
        already = len(gate.accepted) - len(new)
        if outcome is None:
            self._check_room(target, len(new), len(listing))
            outcome = self._upload(target.dataset_id, new, already)
        image_ids, in_dataset = self._verify(hook, target.dataset_id, gate.accepted, outcome.fatal)
        added_earlier = added_after_creation(
            [entry for c in gate.accepted if c.key in present for entry in present[c.key][:1]], target.dataset)
        summary = build_summary(
            dataset_id=target.dataset_id, upload_type=UploadType.BASIC.value, sources=total,
            uploaded=len(outcome.uploaded), already_present=already, skipped=gate.skipped, failed=outcome.failed,
            image_ids=image_ids, images_in_dataset=in_dataset, reconciled=outcome.reconciled,
            added_earlier=added_earlier,
        )
        return self.finish(context, summary, outcome.fatal)

    def _may_overlap(self, target: UploadTarget, total: int) -> bool:
        """Whether uploads may start before the gate has checked every file: no gate outcome can refuse the task.

        Refusals that depend on the gate: ``on_invalid="fail"``, a completed dataset, ``max_images`` and the
        basic limit (the new images are at most the ``total`` candidate files; the limit is checked against the
        listing by the caller). A source without any valid image raises after the gate, when nothing was sent.

        :param target: the dataset.
        :param total: the candidate files.
        """
        return (self.knobs.on_invalid != "fail" and target.status != DatasetStatus.COMPLETED.value
                and (self.knobs.max_images is None or total <= self.knobs.max_images))

    def _upload_while_gating(self, dataset_id: int, sources: Sequence[Any], present: Mapping[str, Any],
                             gate: GateResult) -> BasicOutcome:
        """Upload each image the gate accepts (and the dataset lacks) while the gate checks the next files."""
        from airflow_provider_bria.operators._quality_gate import iter_quality_gate

        stream = iter_quality_gate(sources, gate, increase_resolution=self.knobs.increase_resolution,
                                   max_workers=self.knobs.max_concurrency,
                                   on_checked=self.gate_progress(len(sources)))
        self.log.info("Uploading each new image as soon as the quality gate accepts it, up to %d in flight",
                      min(self.knobs.max_concurrency, max(1, len(sources))))
        return self._run_uploader(dataset_id, (c for c in stream if c.key not in present), count=len(sources))

    def _check_room(self, target: UploadTarget, n_new: int, listed: int) -> None:
        """Refuse, before any upload, new images a completed dataset, ``max_images`` or the 200 limit forbid."""
        dataset_id = target.dataset_id
        if target.status == DatasetStatus.COMPLETED.value:
            if n_new:
                raise BriaConflictError(
                    f"Dataset {dataset_id} is completed (frozen): {n_new} of the source images are not in it and "
                    "cannot be added; clone it as a draft to add images"
                )
            self.log.info("Dataset %s is completed and already holds every source image: nothing to do", dataset_id)
        self.check_guard(n_new)
        problem = _basic_room(target, listed, n_new)
        if problem is not None:
            raise BriaInputError(problem)

    def _upload(self, dataset_id: int, new: list[CheckedImage], already: int) -> BasicOutcome:
        """Upload the new images of a gate that checked the whole source first."""
        concurrency = self.knobs.max_concurrency
        self.log.info(
            "Uploading %d new images (%d already in the dataset) with up to %d in flight",
            len(new), already, min(concurrency, max(1, len(new))),
        )
        return self._run_uploader(dataset_id, new)

    def _run_uploader(self, dataset_id: int, images: Iterable[CheckedImage], count: int | None = None) -> BasicOutcome:
        """Upload ``images`` (see :meth:`BasicUploader.run`), stoppable through :meth:`stop`; log the outcome."""
        uploader = BasicUploader(
            hook_factory=self.hook_factory, dataset_id=dataset_id, increase_resolution=self.knobs.increase_resolution,
            content_moderation=self.knobs.content_moderation, encoding=self.basic.encoding,
            max_concurrency=self.knobs.max_concurrency, image_retries=self.basic.image_retries,
            retry_delay=self.basic.retry_delay,
        )
        self._uploader = uploader
        try:
            outcome = uploader.run(images, count=count)
        finally:
            self._uploader = None
        self.log.info(
            "Uploaded %d images (%d confirmed by listing after an ambiguous failure), %d failed",
            len(outcome.uploaded), outcome.reconciled, len(outcome.failed),
        )
        return outcome

    def _verify(
        self, hook: BriaHook, dataset_id: int, accepted: list[CheckedImage], fatal: BaseException | None
    ) -> tuple[list[int], int | None]:
        """List the dataset once more: remove duplicates of our images a lost response created; collect ids.

        A delete whose answer is lost may still have been applied, so after any failed delete the dataset is
        listed again (``image_retries`` times at most) and the count comes from that listing, never a guess.
        """
        if not accepted:
            return [], None
        try:
            listing = hook.list_images(dataset_id)
        except BriaError as err:
            if fatal is None:
                raise
            self.log.warning("Could not list dataset %s after the upload: %s", dataset_id, err)
            return [], None
        for attempt in range(self.basic.image_retries + 2):
            ids, extras = _ours_and_extras(listing, accepted)
            if not extras:
                return ids, len(listing)
            if attempt > self.basic.image_retries:
                break
            failed = self._delete_each(hook, dataset_id, extras)
            if not failed:
                self.log.warning("Removed %d duplicate images left by ambiguous failures", len(extras))
                return ids, len(listing) - len(extras)
            listing = hook.list_images(dataset_id)
        self.log.warning("%d duplicate images could not be deleted from dataset %s", len(extras), dataset_id)
        return ids, len(listing)

    def _delete_each(self, hook: BriaHook, dataset_id: int, images: list[dict[str, Any]]) -> int:
        """Delete ``images``; return how many deletes failed (each is logged)."""
        failed = 0
        for image in images:
            try:
                hook.delete_image(dataset_id, image["id"])
            except BriaError as err:
                failed += 1
                self.log.warning(
                    "Could not delete duplicate image %s (%s): %s", image.get("id"), image.get("image_name"), err
                )
        return failed


def _basic_room(target: UploadTarget, listed: int, n_new: int) -> str | None:
    """Why ``n_new`` more images do not fit the basic dataset limit (``None``: they fit).

    :param target: the dataset.
    :param listed: the images its listing holds.
    :param n_new: the images to add.
    """
    existing = max(listed, target.images_count)
    if existing + n_new <= BASIC_MAX_IMAGES:
        return None
    return (f"Dataset {target.dataset_id} holds {existing} images; adding {n_new} would exceed the basic dataset "
            f"limit of {BASIC_MAX_IMAGES} (nothing was uploaded). Use an advanced dataset for more images")


def _ours_and_extras(
    listing: Sequence[Mapping[str, Any]], accepted: list[CheckedImage]
) -> tuple[list[int], list[dict[str, Any]]]:
    """The id kept for each accepted image (the oldest copy) and the later copies to delete."""
    present = present_keys(listing)
    ids: list[int] = []
    extras: list[dict[str, Any]] = []
    for img in accepted:
        items = sorted(present.get(img.key, []), key=lambda i: int(i.get("id") or 0))
        if items:
            ids.append(int(items[0]["id"]))
            extras.extend(items[1:])
    return ids, extras
