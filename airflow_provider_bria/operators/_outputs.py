"""Writing generated files to any Airflow object store (``ObjectStoragePath``), idempotently.

* One listing of the output folder tells which outputs already exist (one call, not one per file).
* A file is written under a hidden temporary name (``.<name>.<random>.part``) and then moved to its final
  name, so a crash never leaves a half-written file under the final name. On a local disk the move is an
  atomic ``rename``; on stores without rename (S3, GCS...) fsspec copies then deletes, so the final object
  only appears once complete. If a store cannot move at all, the bytes are written to the final name
  directly and the written size is checked.
* On object stores whose single ``PUT`` is atomic (:data:`ATOMIC_PUT_PROTOCOLS`: S3, GCS, Azure...) content held
  in memory (checked images, JSON sidecars) is written to its final name in one ``PUT``: an object is either
  complete or absent, and there is no copy-then-delete during which a killed worker leaves a ``.part`` object
  behind or, for a "submitted" sidecar, loses the record of a job it already paid for.
* Images are checked with Pillow before they are committed (structure and CRCs, complete pixel data: decoded,
  or for a non-interlaced PNG inflated and checked row by row by :mod:`._png_check`; aspect ratio compared to
  the request).
* Downloads are bounded (:func:`bounded_chunks`): a byte cap, an overall deadline, and for images a pixel
  budget read from the header before anything is decoded, so a decompression bomb costs kilobytes, not GiB.

Heavy imports (``ObjectStoragePath``/fsspec, Pillow) happen inside functions: importing an operator module
must stay cheap for DAG parsing.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.contract import ASPECT_RATIOS
from airflow_provider_bria.exceptions import BriaError, BriaInputError
from airflow_provider_bria.operators._output_limits import (  # re-exported: the limits' defaults live there
    DEFAULT_DOWNLOAD_TIMEOUT as DEFAULT_DOWNLOAD_TIMEOUT,
)
from airflow_provider_bria.operators._output_limits import DEFAULT_MAX_IMAGE_BYTES as DEFAULT_MAX_IMAGE_BYTES
from airflow_provider_bria.operators._output_limits import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS
from airflow_provider_bria.operators._output_limits import DEFAULT_MAX_VIDEO_BYTES as DEFAULT_MAX_VIDEO_BYTES

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: Relative tolerance when comparing an image's width/height with the requested aspect ratio
#: (Bria rounds sizes to multiples of 16: 16:9 is 1344x768 = 1.75).
ASPECT_TOLERANCE = 0.03
_PART_SUFFIX = ".part"
_READ_SIZE = 1024 * 256
#: fsspec protocols where writing an object is one atomic PUT (the object appears complete or not at all).
ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})


class OutputValidationError(BriaError):
    """A downloaded file is not what was asked for (empty, not an image, truncated, too large)."""


class OutputLimitError(OutputValidationError):
    """A download went over a limit: bytes, pixels (a decompression bomb) or the download deadline (never retried)."""


def bounded_chunks(
    response: Any,
    *,
    name: str,
    max_bytes: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """Stream a ``requests`` response body with a byte cap and an overall deadline.

    Bytes are read with ``read1`` (whatever the socket has, at most 256 KiB), so a server that sends one
    byte a second still meets the deadline check after each byte instead of blocking a 256 KiB read; the
    cap counts decoded bytes (a gzip-encoded bomb is stopped too) and is checked against ``Content-Length``
    before reading anything.

    :param response: a streamed ``requests.Response``.
    :param name: the output name, for messages.
    :param max_bytes: the most bytes accepted.
    :param deadline: ``clock()`` value after which the download is abandoned.
    :param clock: the monotonic clock (tests replace it).
    :raises OutputLimitError: when the body is larger than ``max_bytes`` or the deadline passes.
    """
    declared = str(response.headers.get("Content-Length") or "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise OutputLimitError(f"{name}: the server announces {int(declared)} bytes, more than max_download_bytes="
                               f"{max_bytes}")
    raw = response.raw
    read1 = getattr(raw, "read1", None)
    chunks = None if read1 is not None else response.iter_content(_READ_SIZE)
    total = 0
    while True:
        if clock() > deadline:
            raise OutputLimitError(f"{name}: the download did not finish before its deadline ({total} bytes "
                                   "received); raise download_timeout if the file is expected to be this slow")
        data = read1(_READ_SIZE, decode_content=True) if read1 is not None else next(chunks, b"")  # type: ignore[arg-type]
        if not data:
            return
        total += len(data)
        if total > max_bytes:
            raise OutputLimitError(f"{name}: the download is larger than max_download_bytes={max_bytes}")
        yield data


@dataclass
class ImageInfo:
    """What Pillow found in a downloaded image.

    :param format: Pillow format name (``PNG``...).
    :param width: pixels.
    :param height: pixels.
    :param aspect_ok: whether the size matches the requested aspect ratio (``None`` when none was requested).
    """

    format: str
    width: int
    height: int
    aspect_ok: bool | None


def to_uri(location: str) -> str:
    """Turn a plain local path into a ``file://`` URI; URIs are returned unchanged.

    :param location: a path or URI (``s3://conn@bucket/key``, ``file:///tmp/x``, ``/tmp/x``, ``out/x``).
    """
    text = str(location).strip()
    if not text:
        raise BriaInputError("output_path must not be empty")
    if "://" in text:
        return text
    return "file://" + os.path.abspath(os.path.expanduser(text))


class OutputFolder:
    """A folder in an object store where generated files land.

    :param location: a path or ``ObjectStoragePath`` URI (``file://``, ``s3://aws_default@bucket/prefix``...).
    :param conn_id: Airflow connection for the store, when not given in the URI.
    :param what: the argument the location came from, for messages.
    :raises BriaInputError: for a URI whose protocol has no registered filesystem.
    """

    def __init__(self, location: str, *, conn_id: str | None = None, what: str = "output_path") -> None:
        from airflow_provider_bria._compat import object_storage_path

        self.what = what
        try:
            self.root: ObjectStoragePath = object_storage_path(to_uri(location), conn_id=conn_id)
            self.root.fs  # noqa: B018 - resolves the protocol's filesystem: unknown protocols fail here
        except (ValueError, ImportError) as err:
            raise BriaInputError(
                f"{what} {str(location)!r} cannot be used as an output folder ({err}): use a local path or the URI "
                "of a writable object store Airflow knows (file://, s3://, gs://... with its provider installed)"
            ) from None
        self._made = False
        self._is_local: bool | None = None  # computed once (see _local)
        self._uri = str(self.root)
        # temporary names: a random token drawn once per folder object, then a counter (os.urandom is a system
        # call that hands the GIL to the other workers: one per file written was a thread switch per file)
        self._token = uuid.uuid4().hex[:8]
        self._serial = itertools.count()
        # what str(root / name) puts before a plain name, computed once (ObjectStoragePath's "/" costs ~0.03 ms)
        self._uri_prefix = str(self.root / "_")[:-1]

    @property
    def uri(self) -> str:
        """The folder's URI."""
        return self._uri

    @property
    def _fs(self) -> Any:
        return self.root.fs

    def _path(self, name: str) -> str:
        return f"{self.root.path.rstrip('/')}/{name}"

    def child(self, name: str) -> ObjectStoragePath:
        """The path of a file in the folder.

        :param name: the file name.
        """
        return self.root / name

    def uri_of(self, name: str) -> str:
        """The URI of a file in the folder (what operators return): ``str(self.child(name))``.

        :param name: the file name.
        """
        if "/" in name or name in ("", ".", ".."):  # not a plain file name: let the path class join it
            return str(self.child(name))
        return self._uri_prefix + name

    def names(self, *, clean: Iterable[str] = ()) -> set[str]:
        """Return the names of the files in the folder (one listing call; temporaries excluded).

        :param clean: final names this task owns: their temporaries (``.<name>.<random>.part``), left by a
            killed earlier try, are removed. Only the task's own names are given, so another task writing to
            the same folder is never disturbed.
        """
        try:
            entries = self._fs.ls(self.root.path, detail=False)
        except FileNotFoundError:
            return set()
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries}
        parts = {n for n in names if n.startswith(".") and n.endswith(_PART_SUFFIX)}
        owned = set(clean)
        for part in sorted(parts):
            if part[1 : -len(_PART_SUFFIX)].rsplit(".", 1)[0] in owned:
                log.info("Removing %s, left by an interrupted earlier try", part)
                self._discard(self._path(part))
        return {n for n in names if n and n not in parts}

    def exists(self, name: str) -> bool:
        """Whether a file exists.

        :param name: the file name.
        """
        return bool(self._fs.exists(self._path(name)))

    def probe(self) -> None:
        """Check the folder can take outputs: create it, write and delete a probe object.

        Called before any paid request, so a bad ``output_path`` (a file, a read-only place, a store without
        write support) costs nothing and loses no job.

        :raises BriaInputError: naming the argument, when the folder cannot be written.
        """
        probe = self._path(f".bria-probe-{uuid.uuid4().hex[:12]}{_PART_SUFFIX}")
        try:
            if self._fs.isfile(self.root.path):
                raise BriaInputError(f"{self.what} {self.uri} is a file, not a folder: give a folder path")
            self._ensure_folder()
            with self._fs.open(probe, "wb") as fh:
                fh.write(b"bria write probe\n")
            self._fs.rm(probe)
        except BriaInputError:
            raise
        except Exception as err:  # noqa: BLE001 - any store error means the outputs could not be saved
            self._discard(probe)
            raise BriaInputError(
                f"{self.what} {self.uri} is not writable ({type(err).__name__}: {err}): nothing was submitted; "
                "fix the path or its permissions"
            ) from None

    def _ensure_folder(self) -> None:
        if not self._made:
            with contextlib.suppress(FileExistsError, NotImplementedError):  # stores without folders
                self._fs.makedirs(self.root.path, exist_ok=True)
            self._made = True

    def write(
        self,
        name: str,
        chunks: Iterable[bytes],
        *,
        keep_bytes: bool = False,
        check: Any = None,
    ) -> tuple[int, bytes | None]:
        """Write a file atomically-ish: temporary name, optional check, then move to ``name``.

        :param name: the final file name.
        :param chunks: the content, in chunks (a streamed download or ``[data]``).
        :param keep_bytes: also return the content (needed by ``check``; fine for images).
        :param check: optional callable receiving the full content; raise to reject it (nothing is committed).
        :returns: the number of bytes written and the content when ``keep_bytes`` or ``check`` is set.
        """
        self._ensure_folder()
        keep = keep_bytes or check is not None
        if keep and self._atomic_put:
            return self._put(name, chunks, check)
        if keep and self._local:
            return self._write_local(name, chunks, check)
        buffer = io.BytesIO() if keep else None
        tmp = self._temporary(name)
        size = 0
        # a local folder is written with the OS's own file object (fsspec's local opener costs ~0.1 ms a file)
        opener = open if self._local else self._fs.open
        try:
            with opener(tmp, "wb") as fh:
                for chunk in chunks:
                    if not chunk:
                        continue
                    fh.write(chunk)
                    size += len(chunk)
                    if buffer is not None:
                        buffer.write(chunk)
            data = buffer.getvalue() if buffer is not None else None
            if size == 0:
                raise OutputValidationError(f"download for {name} was empty")
            if check is not None:
                check(data)
            self._commit(tmp, name, data, size)
        except BaseException:
            self._discard(tmp)
            raise
        return size, data

    @property
    def _local(self) -> bool:
        """Whether the folder is on this machine's disk (fsspec's local filesystem: its paths are OS paths)."""
        if self._is_local is None:
            from fsspec.implementations.local import LocalFileSystem

            self._is_local = isinstance(self._fs, LocalFileSystem)
        return self._is_local

    @property
    def _atomic_put(self) -> bool:
        from airflow_provider_bria.operators._image_sources import protocol_names

        return bool(protocol_names(self.root.protocol) & ATOMIC_PUT_PROTOCOLS)

    def _temporary(self, name: str) -> str:
        """A fresh temporary path for ``name`` (``.<name>.<random><serial>.part``, see :meth:`names`).

        The random token tells apart the folder objects (tasks, processes) that write to one folder; the serial
        number (``next`` on an ``itertools.count`` is atomic under the GIL) the files of one of them.
        """
        return self._path(f".{name}.{self._token}{next(self._serial):x}{_PART_SUFFIX}")

    @staticmethod
    def _checked(name: str, chunks: Iterable[bytes], check: Any) -> bytes:
        """Collect content held in memory and check it before anything is written."""
        data = b"".join(chunk for chunk in chunks if chunk)
        if not data:
            raise OutputValidationError(f"download for {name} was empty")
        if check is not None:
            check(data)
        return data

    def _put(self, name: str, chunks: Iterable[bytes], check: Any) -> tuple[int, bytes]:
        """Collect the content in memory, check it, then write it to its final name in one atomic PUT."""
        data = self._checked(name, chunks, check)
        self._fs.pipe_file(self._path(name), data)
        return len(data), data

    def _write_local(self, name: str, chunks: Iterable[bytes], check: Any) -> tuple[int, bytes]:
        """Content held in memory, on this machine's disk: checked, written to a temporary file, renamed.

        Plain OS calls (create, write, close, rename): no Python file object, whose ``open`` adds an ``fstat``
        and an ``isatty`` system call. Each system call hands the GIL to the batch's other worker threads, so
        every one saved is a thread switch saved. A kill leaves at most the temporary file (removed by the next
        try, see :meth:`names`), never a partial file under ``name``.
        """
        data = self._checked(name, chunks, check)
        tmp = self._temporary(name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, self._path(name))
        except BaseException:
            self._discard(tmp)
            raise
        return len(data), data

    def _commit(self, tmp: str, name: str, data: bytes | None, size: int) -> None:
        final = self._path(name)
        if self._local:
            os.replace(tmp, final)  # one atomic rename (fsspec's mv -> shutil.move stats the target first)
            return
        try:
            self._fs.mv(tmp, final)
            return
        except NotImplementedError:
            pass
        if data is None:  # pragma: no cover - only for stores that can neither move nor be re-read cheaply
            with self._fs.open(tmp, "rb") as fh:
                data = fh.read()
        with self._fs.open(final, "wb") as fh:
            fh.write(data)
        written = self._fs.size(final)
        if written is not None and written != size:
            raise OutputValidationError(f"{final}: wrote {written} bytes, expected {size}")
        self._discard(tmp)

    def _discard(self, path: str) -> None:
        try:
            if self._fs.exists(path):
                self._fs.rm(path)
        except Exception:  # noqa: BLE001 - best effort clean-up of a temporary file
            log.debug("Could not remove temporary file %s", path, exc_info=True)

    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        """Write a sidecar (:mod:`~airflow_provider_bria.operators._sidecar` format) atomically-ish.

        :param name: the file name.
        :param payload: a JSON-safe dict.
        """
        from airflow_provider_bria.operators._sidecar import encode

        self.write(name, [encode(payload)], keep_bytes=True)

    def read_json(self, name: str) -> dict[str, Any] | None:
        """Read a sidecar (:mod:`~airflow_provider_bria.operators._sidecar` format); ``None``: missing or unreadable.

        :param name: the file name.
        """
        from airflow_provider_bria.operators._sidecar import decode

        try:
            with self._fs.open(self._path(name), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        return decode(data)


def check_image(data: bytes | None, aspect_ratio: str | None, *, name: str = "image",
                max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Check that ``data`` is a decodable image and compare its size with ``aspect_ratio``.

    The size is read from the header and compared with ``max_pixels`` before anything is decoded.

    :param data: the file content.
    :param aspect_ratio: the requested aspect ratio (``None``: not compared).
    :param name: the file name, for messages.
    :param max_pixels: the pixel budget (width x height).
    :raises OutputLimitError: when the image has more than ``max_pixels`` pixels (a decompression bomb).
    :raises OutputValidationError: when the content is not a complete image.
    """
    from PIL import Image, UnidentifiedImageError

    from airflow_provider_bria.operators._png_check import check_png_data

    if not data:
        raise OutputValidationError(f"{name}: empty download")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the budget below decides
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = str(img.format or ""), img.size
                if width * height > max_pixels:
                    raise OutputLimitError(f"{name}: {width}x{height} pixels is more than max_output_pixels="
                                           f"{max_pixels} (not decoded)")
                img.verify()
            if not check_png_data(data):  # a non-interlaced PNG's data is checked without decoding it
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
    except Image.DecompressionBombError as err:
        raise OutputLimitError(f"{name}: refused as a decompression bomb ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise OutputValidationError(f"{name}: the download is not a valid image ({err})") from None
    aspect_ok: bool | None = None
    if aspect_ratio is not None and aspect_ratio in ASPECT_RATIOS and height:
        rw, rh = ASPECT_RATIOS[aspect_ratio]
        expected = rw / rh
        aspect_ok = abs(width / height - expected) / expected <= ASPECT_TOLERANCE
        if not aspect_ok:
            log.warning("%s is %dx%d, which does not match the requested aspect ratio %s", name, width, height,
                        aspect_ratio)
    return ImageInfo(format=fmt, width=width, height=height, aspect_ok=aspect_ok)
