"""Writing generated files to any Airflow object store (``ObjectStoragePath``), idempotently.

* One listing of the output folder tells which outputs already exist (one call, not one per file).
* A file is written under a hidden temporary name (``.<name>.<random>.part``) and then moved to its final
  name, so a crash never leaves a half-written file under the final name. On a local disk the move is an
  atomic ``rename``; on stores without rename (S3, GCS...) fsspec copies then deletes, so the final object
  only appears once complete. If a store cannot move at all, the bytes are written to the final name
  directly and the written size is checked.
* Images are checked with Pillow before they are committed (decodable; aspect ratio compared to the request).

Heavy imports (``ObjectStoragePath``/fsspec, Pillow) happen inside functions: importing an operator module
must stay cheap for DAG parsing.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_bria._state import SIDECAR, load, stamp
from airflow_provider_bria.contract import ASPECT_RATIOS
from airflow_provider_bria.exceptions import BriaError, BriaInputError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: Relative tolerance when comparing an image's width/height with the requested aspect ratio
#: (Bria rounds sizes to multiples of 16: 16:9 is 1344x768 = 1.75).
ASPECT_TOLERANCE = 0.03
_PART_SUFFIX = ".part"


class OutputValidationError(BriaError):
    """A downloaded file is not what was asked for (empty, not an image, truncated)."""


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
    """

    def __init__(self, location: str, *, conn_id: str | None = None) -> None:
        from airflow_provider_bria._compat import object_storage_path

        self.root: ObjectStoragePath = object_storage_path(to_uri(location), conn_id=conn_id)
        self._made = False

    @property
    def uri(self) -> str:
        """The folder's URI."""
        return str(self.root)

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
        """The URI of a file in the folder (what operators return).

        :param name: the file name.
        """
        return str(self.child(name))

    def names(self) -> set[str]:
        """Return the names of the files in the folder (one listing call; temporaries excluded)."""
        try:
            entries = self._fs.ls(self.root.path, detail=False)
        except FileNotFoundError:
            return set()
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries}
        return {n for n in names if n and not (n.startswith(".") and n.endswith(_PART_SUFFIX))}

    def exists(self, name: str) -> bool:
        """Whether a file exists.

        :param name: the file name.
        """
        return bool(self._fs.exists(self._path(name)))

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
        buffer = io.BytesIO() if keep else None
        tmp = self._path(f".{name}.{uuid.uuid4().hex[:10]}{_PART_SUFFIX}")
        size = 0
        try:
            with self._fs.open(tmp, "wb") as fh:
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

    def _commit(self, tmp: str, name: str, data: bytes | None, size: int) -> None:
        final = self._path(name)
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
        """Write a small JSON document atomically-ish.

        :param name: the file name.
        :param payload: a JSON-safe dict.
        """
        data = json.dumps(stamp(SIDECAR, payload), indent=1, sort_keys=True).encode("utf-8")
        self.write(name, [data])

    def read_json(self, name: str) -> dict[str, Any] | None:
        """Read a JSON document, or ``None`` when it is missing or unreadable.

        :param name: the file name.
        """
        try:
            with self._fs.open(self._path(name), "rb") as fh:
                data = json.loads(fh.read().decode("utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        return load(SIDECAR, data) if isinstance(data, dict) else None


def check_image(data: bytes | None, aspect_ratio: str | None, *, name: str = "image") -> ImageInfo:
    """Check that ``data`` is a decodable image and compare its size with ``aspect_ratio``.

    :param data: the file content.
    :param aspect_ratio: the requested aspect ratio (``None``: not compared).
    :param name: the file name, for messages.
    :raises OutputValidationError: when the content is not a complete image.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise OutputValidationError(f"{name}: empty download")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height) = str(img.format or ""), img.size
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
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
