"""Quality gate run on every candidate image before anything is uploaded.

Each file is read once, as a stream: Pillow sniffs the real format from the header (the extension is not
trusted) and reads the resolution without decoding pixels, ``Image.verify()`` checks the structure (PNG chunk
CRCs, truncation), and the same bytes feed a SHA-256 that finds duplicate content. Memory use is one read
buffer per worker, whatever the size of the source set.

Accepted images get a stable upload name ``<stem>-<sha12>.<ext>``: the natural key that lets a retried task
recognise what is already in the dataset (see :func:`key_from_image_name`).

Pillow is imported lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_provider_bria.contract import PIL_IMAGE_FORMATS
from airflow_provider_bria.contract import check_resolution as _check_resolution
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._image_sources import ImageSource, protocol_names

CHUNK_SIZE = 1024 * 1024
#: Largest image file uploaded (bytes): Bria answers 413 above 12 MB (image-onboarding docs and its error list;
#: not restated for the tailored endpoints, see docs/api-choices.md). Larger files are skipped as ``too_large``.
MAX_IMAGE_BYTES = 12 * 1024 * 1024
KEY_LENGTH = 12
_STEM_MAX = 60
#: Pillow format name -> file extension used in the upload name. MPO is the JPEG variant some cameras write.
_FORMAT_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}
_KEY_RE = re.compile(r"-([0-9a-f]{12})(?:\.[A-Za-z0-9]{1,5})?$")  # 12 = KEY_LENGTH
#: Filesystems read in this process, with no latency for threads to hide (fsspec protocol names).
_IN_PROCESS_PROTOCOLS = frozenset({"file", "local", "memory"})
#: Below this mean file size, files of an in-process store are checked in the calling thread: the checks then are
#: mostly Python code, and threads contending for the GIL made the gate 1.5-2.5x slower (2-core machine, CPython
#: 3.11: 300 files of 75 KiB took 39 ms in one thread, 61 ms in two, 69 ms in four; 519 KiB files 157 / 93 / 103
#: ms, where reading and hashing, which release the GIL, dominate).
PARALLEL_GATE_MIN_MEAN_BYTES = 256 * 1024


class SkipCode:
    """Machine-readable reasons for skipping a file (the ``code`` of a skipped entry)."""

    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT = "corrupt"
    RESOLUTION = "resolution"
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"
    DUPLICATE = "duplicate"
    MISSING_CAPTION = "missing_caption"


class ImageRejected(Exception):
    """Raised by :func:`inspect_image` for a file that must not be uploaded.

    :param code: one of :class:`SkipCode`.
    :param reason: a human-readable reason.
    """

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed the gate.

    :param source: where it comes from.
    :param sha256: hex digest of its bytes.
    :param format: Pillow format name (``PNG``, ``JPEG``, ``WEBP``).
    :param width: pixels.
    :param height: pixels.
    :param size: bytes.
    """

    source: ImageSource
    sha256: str
    format: str
    width: int
    height: int
    size: int

    @property
    def key(self) -> str:
        """The short content key embedded in the upload name."""
        return self.sha256[:KEY_LENGTH]

    @property
    def ext(self) -> str:
        """Extension matching the real format."""
        return _FORMAT_EXT[self.format]

    @property
    def upload_name(self) -> str:
        """The stable name sent as ``image_name`` (and used as zip entry name)."""
        return stable_image_name(self.source.stem, self.sha256, self.ext)


@dataclass
class GateResult:
    """Outcome of the gate.

    :param accepted: images to upload, in source order, without content duplicates.
    :param skipped: ``{"source", "code", "reason"}`` for every file left out.
    """

    accepted: list[CheckedImage] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def problems_text(self, limit: int = 50) -> str:
        """All skipped files as one message (the first ``limit`` listed).

        :param limit: how many entries to spell out.
        """
        lines = [f"{s['source']}: {s['reason']}" for s in self.skipped[:limit]]
        if len(self.skipped) > limit:
            lines.append(f"... and {len(self.skipped) - limit} more")
        return "; ".join(lines)


def safe_stem(stem: str) -> str:
    """Reduce a file stem to ``[A-Za-z0-9._-]``, no leading dots, at most 60 characters.

    :param stem: the original stem.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip("._-")
    return cleaned[:_STEM_MAX].rstrip("._-") or "image"


def stable_image_name(stem: str, sha256: str, ext: str) -> str:
    """Return ``<safe stem>-<first 12 hex of sha256>.<ext>``.

    :param stem: original file stem.
    :param sha256: hex digest of the content.
    :param ext: extension without dot.
    """
    return f"{safe_stem(stem)}-{sha256[:KEY_LENGTH]}.{ext}"


def key_from_image_name(name: str | None) -> str | None:
    """Return the content key of a name made by :func:`stable_image_name`, or ``None``.

    :param name: an ``image_name`` from the API.
    """
    if not name:
        return None
    match = _KEY_RE.search(str(name))
    return match.group(1) if match else None


class _HashingReader:
    """A read-only file wrapper hashing each byte once, in order, whatever seeks the reader does."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self._pos = 0
        self._hashed = 0

    def read(self, size: int = -1) -> bytes:
        return self._account(self._raw.read(size))

    def _account(self, data: bytes) -> bytes:
        start, end = self._pos, self._pos + len(data)
        if start <= self._hashed < end:
            self._hash.update(memoryview(data)[self._hashed - start:])
            self._hashed = end
        self._pos = end
        return data

    def readline(self, size: int = -1) -> bytes:
        # Pillow's text-header plugins (XPM, PPM...) sniff with readline(): hash those bytes like read() does.
        return self._account(self._raw.readline(size))

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._raw.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def finish(self) -> tuple[str, int]:
        """Hash what was not read yet; return ``(hex digest, total bytes)``."""
        self._raw.seek(self._hashed)
        while chunk := self._raw.read(CHUNK_SIZE):
            self._hash.update(chunk)
            self._hashed += len(chunk)
        return self._hash.hexdigest(), self._hashed


def sha256_of(src: ImageSource) -> str:
    """Stream a file through SHA-256.

    :param src: the file.
    """
    digest = hashlib.sha256()
    with src.open() as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _too_large(size: int) -> str:
    return (f"{size} bytes is above Bria's 12 MB image limit ({MAX_IMAGE_BYTES} bytes): re-encode it (e.g. as "
            "JPEG) or downscale it")


def inspect_image(src: ImageSource, *, increase_resolution: bool, check_resolution: bool = True) -> CheckedImage:
    """Check one file and hash it in a single streamed pass.

    :param src: the file.
    :param increase_resolution: allow 256x256 and up (the server upscales) instead of 1024x1024.
    :param check_resolution: apply Bria's dataset-image resolution rule (``False`` for sample images).
    :raises ImageRejected: when the file must be skipped.
    """
    from PIL import Image, UnidentifiedImageError

    if src.size is not None and src.size > MAX_IMAGE_BYTES:
        raise ImageRejected(SkipCode.TOO_LARGE, _too_large(src.size))
    try:
        raw = src.open()
    except OSError as err:
        raise ImageRejected(SkipCode.UNREADABLE, f"cannot be read: {err}") from None
    with raw:
        reader = _HashingReader(raw)
        try:
            img = Image.open(reader)  # type: ignore[arg-type]  # reads the header only
        except UnidentifiedImageError:
            raise ImageRejected(SkipCode.NOT_AN_IMAGE, "not an image (format not recognised)") from None
        except Image.DecompressionBombError as err:
            raise ImageRejected(SkipCode.TOO_LARGE, f"too many pixels: {err}") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageRejected(SkipCode.CORRUPT, f"corrupt image header: {err}") from None
        except Exception as err:  # a Pillow plugin choking on arbitrary bytes must not fail the whole gate
            raise ImageRejected(SkipCode.NOT_AN_IMAGE, f"not an image ({type(err).__name__})") from None
        fmt = (img.format or "").upper()
        if fmt not in PIL_IMAGE_FORMATS and fmt not in _FORMAT_EXT:
            allowed = ", ".join(sorted(f.lower() for f in PIL_IMAGE_FORMATS))
            raise ImageRejected(
                SkipCode.UNSUPPORTED_FORMAT, f"unsupported format {fmt or 'unknown'} (accepted: {allowed})"
            )
        width, height = img.size
        try:
            if check_resolution:
                _check_resolution(width, height, increase_resolution=increase_resolution)
        except BriaInputError as err:
            raise ImageRejected(SkipCode.RESOLUTION, str(err)) from None
        try:
            img.verify()  # structure and checksums (PNG CRCs, truncation); no pixel decoding
        except Exception as err:  # Pillow raises many types for broken files
            raise ImageRejected(SkipCode.CORRUPT, f"corrupt {fmt} data: {err}") from None
        finally:
            img.close()
        try:
            digest, size = reader.finish()
        except OSError as err:
            raise ImageRejected(SkipCode.UNREADABLE, f"read failed: {err}") from None
    if size > MAX_IMAGE_BYTES:  # the listing did not report the size
        raise ImageRejected(SkipCode.TOO_LARGE, _too_large(size))
    return CheckedImage(source=src, sha256=digest, format=fmt, width=width, height=height, size=size)


def gate_workers(sources: Sequence[ImageSource], max_workers: int) -> int:
    """How many threads check ``sources``: ``max_workers`` (at most one per file), except one for files of an
    in-process store (local disk, memory) whose listed sizes average below :data:`PARALLEL_GATE_MIN_MEAN_BYTES`.

    :param sources: candidate files.
    :param max_workers: the most threads wanted.
    """
    workers = max(1, min(max_workers, len(sources) or 1))
    if workers == 1 or not all(protocol_names(getattr(src.fs, "protocol", None)) & _IN_PROCESS_PROTOCOLS
                               for src in sources):
        return workers
    sizes = [src.size for src in sources if src.size is not None]
    if len(sizes) == len(sources) and sum(sizes) < PARALLEL_GATE_MIN_MEAN_BYTES * len(sizes):
        return 1
    return workers


def run_quality_gate(
    sources: Sequence[ImageSource],
    *,
    increase_resolution: bool,
    max_workers: int = 4,
    on_checked: Callable[[int], Any] | None = None,
    check_resolution: bool = True,
) -> GateResult:
    """Check every file (``max_workers`` at a time) and drop content duplicates.

    The result keeps source order: of several files with the same content, the first is accepted and the
    others are skipped as duplicates of it.

    :param sources: candidate files.
    :param increase_resolution: allow images from 256x256 (see :func:`inspect_image`).
    :param max_workers: files checked in parallel (helps with remote object stores; see :func:`gate_workers`).
    :param on_checked: called with the running count every 100 files (progress logging).
    :param check_resolution: apply the dataset-image resolution rule (``False`` for sample images).
    """
    result = GateResult()
    for _ in iter_quality_gate(sources, result, increase_resolution=increase_resolution, max_workers=max_workers,
                               on_checked=on_checked, check_resolution=check_resolution):
        pass
    return result


def iter_quality_gate(
    sources: Sequence[ImageSource],
    result: GateResult,
    *,
    increase_resolution: bool,
    max_workers: int = 4,
    on_checked: Callable[[int], Any] | None = None,
    check_resolution: bool = True,
) -> Iterator[CheckedImage]:
    """:func:`run_quality_gate` as a stream: yield each accepted image, in source order, as soon as it is known.

    Every file is submitted to the checking threads at once (:func:`gate_workers` decides how many; with one, the
    files are checked in the calling thread as the stream is read); an image is yielded once it and every file
    before it were checked (so duplicates resolve as in :func:`run_quality_gate`). ``result`` is filled as the stream
    goes and is complete when it ends.

    :param sources: candidate files.
    :param result: receives the accepted and skipped entries.
    :param increase_resolution: allow images from 256x256 (see :func:`inspect_image`).
    :param max_workers: files checked in parallel (see :func:`gate_workers`).
    :param on_checked: called with the running count every 100 files.
    :param check_resolution: apply the dataset-image resolution rule.
    """

    def _one(src: ImageSource) -> CheckedImage | ImageRejected:
        try:
            return inspect_image(src, increase_resolution=increase_resolution, check_resolution=check_resolution)
        except ImageRejected as rej:
            return rej

    first_by_hash: dict[str, str] = {}
    workers = gate_workers(sources, max_workers)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bria-gate"))
            outcomes: Iterator[CheckedImage | ImageRejected] = pool.map(_one, sources)
        else:  # checked in this thread, one file each time the stream moves on
            outcomes = map(_one, sources)
        for n, (src, outcome) in enumerate(zip(sources, outcomes, strict=True), start=1):
            if on_checked is not None and n % 100 == 0:
                on_checked(n)
            if isinstance(outcome, ImageRejected):
                result.skipped.append({"source": src.uri, "code": outcome.code, "reason": outcome.reason})
                continue
            first = first_by_hash.get(outcome.sha256)
            if first is not None:
                result.skipped.append(
                    {"source": src.uri, "code": SkipCode.DUPLICATE, "reason": f"same content as {first}"}
                )
                continue
            first_by_hash[outcome.sha256] = src.uri
            result.accepted.append(outcome)
            yield outcome


def skipped_warning(skipped: list[dict[str, Any]], total: int, count: int | None = None) -> str:
    """The one-line warning summarising the files the quality gate skipped, by reason.

    :param skipped: the skipped entries (``source``, ``code``, ``reason``); may be capped.
    :param total: files in the source.
    :param count: the full number skipped, when ``skipped`` is capped.
    """
    from collections import Counter

    n = len(skipped) if count is None else count
    reasons = ", ".join(f"{k} {c}" for k, c in Counter(str(i.get("code")) for i in skipped).most_common())
    first = f"; first: {skipped[0].get('source')}: {skipped[0].get('reason')}" if skipped else ""
    return f"{n} of {total} source files were skipped by the quality gate and not used ({reasons}){first}"
