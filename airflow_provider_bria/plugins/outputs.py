"""Reading a generation task's output folder for the gallery: media files and their sidecars, read-only.

The generation operators write ``<stem>.png`` / ``<stem>.mp4`` next to a ``<stem>.json`` sidecar
(:mod:`airflow_provider_bria.operators._outputs`, :mod:`airflow_provider_bria.operators.generation`); legacy v1
prompts keep one sidecar for several images (``outputs``). This module lists the folder once, reads the sidecars
and returns :class:`GalleryItem` records holding only what a page may show: prompt, seed, model, request id. The
result URLs Bria returned (pre-signed, with signatures in their query strings) are never copied out.

:func:`open_media` is the only way to read a file's bytes: the name must be one the folder listing returned (a
single path segment with a media extension), so no request can read outside the task's output folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators import _sidecar as sidecar

#: Media types shown in the gallery, by file extension.
MEDIA_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
}
#: Sidecar fields a page may show (everything else, e.g. ``image_url``/``urls``/``status_url``, stays out).
SHOWN_FIELDS = ("prompt", "seed", "model_id", "request_id", "structured_prompt", "status", "image")
#: Bound on the sidecars read per folder (and so on the items of one gallery page).
MAX_ITEMS = 2000
#: Bound on one sidecar's size (bytes); larger ones are ignored.
MAX_SIDECAR_BYTES = 1_000_000
CHUNK = 256 * 1024
#: Sidecars read at once.
SIDECAR_READERS = 8


class MediaNotFound(BriaInputError):
    """The requested name is not a media file listed in the output folder."""


@dataclass
class GalleryItem:
    """One file of an output folder, with what its sidecar says about it.

    :param name: the file name (one path segment).
    :param kind: ``image`` or ``video``.
    :param meta: the shown sidecar fields (:data:`SHOWN_FIELDS`).
    """

    name: str
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pending:
    """A sidecar without its media file: a job submitted, failed or not downloaded yet.

    :param stem: the sidecar's stem.
    :param meta: the shown sidecar fields.
    """

    stem: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Gallery:
    """What an output folder holds.

    :param uri: the folder URI.
    :param items: media files, sorted by name.
    :param pending: sidecars whose file is missing.
    :param truncated: more files than :data:`MAX_ITEMS`.
    """

    uri: str
    items: list[GalleryItem] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    truncated: bool = False


def media_type(name: str) -> str | None:
    """The media type of a file name, or ``None`` when it is not shown in galleries.

    :param name: a file name.
    """
    lower = name.lower()
    for ext, mime in MEDIA_TYPES.items():
        if lower.endswith(ext):
            return mime
    return None


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def _shown(side: dict[str, Any]) -> dict[str, Any]:
    return {k: side[k] for k in SHOWN_FIELDS if side.get(k) not in (None, "")}


def _folder(uri: str) -> Any:
    from airflow_provider_bria.operators._outputs import OutputFolder

    return OutputFolder(uri)


def _read_sidecar(folder: Any, name: str) -> dict[str, Any]:
    try:
        size = folder._fs.size(folder._path(name))
    except (FileNotFoundError, OSError):
        return {}
    if size is not None and size > MAX_SIDECAR_BYTES:
        return {}
    return folder.read_json(name) or {}


def _read_sidecars(folder: Any, names: list[str]) -> list[dict[str, Any]]:
    """Read sidecars in parallel (object stores answer slowly, one request per file)."""
    if len(names) <= 1:
        return [_read_sidecar(folder, n) for n in names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(SIDECAR_READERS, len(names)), thread_name_prefix="bria-ui") as pool:
        return list(pool.map(lambda n: _read_sidecar(folder, n), names))


def read_gallery(uri: str, *, only: set[str] | None = None) -> Gallery:
    """List an output folder and pair every media file with its sidecar (v2 images, videos, legacy images).

    :param uri: the folder URI (``file://...``, ``s3://conn@bucket/prefix``...).
    :param only: keep these media files (what one task produced in a folder several tasks share), and
        sidecars of no other file; ``None``: the whole folder.
    """
    folder = _folder(uri)
    names = sorted(folder.names())
    media = [n for n in names if media_type(n) and (only is None or n in only)]
    gallery = Gallery(uri=folder.uri, truncated=len(media) > MAX_ITEMS)
    media = media[:MAX_ITEMS]
    media_set = set(media)
    by_name: dict[str, dict[str, Any]] = {}
    pending: list[Pending] = []
    side_names = [n for n in names if n.endswith(sidecar.SUFFIX)][:MAX_ITEMS]
    for side_name, side in zip(side_names, _read_sidecars(folder, side_names), strict=True):
        stem = _stem(side_name)
        outputs = side.get(sidecar.OUTPUTS_FIELD)
        if isinstance(outputs, list):  # legacy v1: one sidecar, several images
            for k, record in enumerate(outputs):
                if isinstance(record, dict) and record.get("uri"):
                    by_name[str(record["uri"]).rsplit("/", 1)[-1]] = {**_shown(side), **_shown(record), "index": k}
            continue
        own = [n for n in media if _stem(n) == stem]
        if own:
            for n in own:
                by_name[n] = _shown(side)
        elif only is None and not any(n.startswith(stem + "-") for n in media_set):
            pending.append(Pending(stem=stem, meta=_shown(side)))
    for name in media:
        kind = "video" if media_type(name) == "video/mp4" else "image"
        gallery.items.append(GalleryItem(name=name, kind=kind, meta=by_name.get(name, {})))
    gallery.pending = pending
    return gallery


def check_media_name(name: str) -> str:
    """Refuse anything but a plain media file name (no separator, no ``..``, no hidden or temporary file).

    :param name: the requested name.
    :raises MediaNotFound: when the name cannot be a gallery file.
    """
    if (
        not name
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(".")
        or ".." in name
        or media_type(name) is None
    ):
        raise MediaNotFound(f"{name!r} is not a gallery file name")
    return name


def open_media(uri: str, name: str) -> tuple[str, int | None, Iterator[bytes]]:
    """Open one media file of an output folder for streaming.

    :param uri: the folder URI.
    :param name: a file name the folder listing returns.
    :returns: ``(media type, size or None, chunk iterator)``.
    :raises MediaNotFound: when ``name`` is not a media file listed in the folder.
    """
    check_media_name(name)
    folder = _folder(uri)
    if name not in folder.names():
        raise MediaNotFound(f"{name!r} is not in the output folder")
    path = folder._path(name)
    size = folder._fs.size(path)
    handle = folder._fs.open(path, "rb")

    def chunks() -> Iterator[bytes]:
        with handle:
            while True:
                data = handle.read(CHUNK)
                if not data:
                    return
                yield data

    return str(media_type(name)), size, chunks()


def read_media(uri: str, name: str, *, max_bytes: int) -> bytes:
    """Read one media file whole (for thumbnails), refusing files over ``max_bytes``.

    :param uri: the folder URI.
    :param name: a file name the folder listing returns.
    :param max_bytes: the size limit.
    :raises MediaNotFound: when ``name`` is not a media file listed in the folder or is too large.
    """
    _, size, chunks = open_media(uri, name)
    if size is not None and size > max_bytes:
        raise MediaNotFound(f"{name!r} is larger than {max_bytes} bytes")
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > max_bytes:
            raise MediaNotFound(f"{name!r} is larger than {max_bytes} bytes")
    return bytes(out)


def pretty_json(text: Any, *, limit: int = 4000) -> str:
    """A structured prompt (JSON text or object) indented for display, cut at ``limit`` characters.

    :param text: JSON text or a JSON-safe value.
    :param limit: maximum characters.
    """
    value = text
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except ValueError:
            return text[:limit]
    out = json.dumps(value, indent=1, ensure_ascii=False)
    return out if len(out) <= limit else out[:limit] + " …"
