"""Resolve the ``source`` of :class:`~airflow_provider_bria.operators.upload.BriaUploadImagesOperator` into files.

A source is a local path (file, folder or glob), any object-storage URI understood by Airflow's
:class:`~airflow.sdk.ObjectStoragePath` (``file://``, ``s3://``, ``gs://``..., with the usual
``scheme://conn_id@bucket/key`` form for a connection), a URI of any other fsspec protocol (``memory://``...;
used directly through fsspec when no Airflow provider registers it), an ``ObjectStoragePath`` or
:class:`pathlib.Path` object, or a list of any of these.

Resolution only lists files: it reads no content. Folders are listed non-recursively (use ``folder/**/*``
for recursion). Hidden files (``.name``) are ignored. ``.txt`` files are caption side-cars, keyed by their
stem, and are never treated as images.

fsspec and the Airflow object-storage layer are imported lazily, inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_bria.exceptions import BriaInputError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

CAPTION_SUFFIX = ".txt"
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ImageSource:
    """One candidate file.

    :param uri: the file as the user sees it (a local path or ``protocol://bucket/key``); never holds credentials.
    :param name: the file's base name.
    :param path: the path in the filesystem's own form.
    :param fs: the fsspec filesystem holding the file.
    :param size: size in bytes when the listing reported it.
    """

    uri: str
    name: str
    path: str
    fs: AbstractFileSystem = field(repr=False, compare=False, hash=False)
    size: int | None = field(default=None, compare=False, hash=False)

    @property
    def stem(self) -> str:
        """The base name without its last extension."""
        stem, _, _ = self.name.rpartition(".")
        return stem or self.name

    def open(self) -> IO[bytes]:
        """Open the file for binary reading (the caller closes it)."""
        handle: IO[bytes] = self.fs.open(self.path, "rb")
        return handle


@dataclass
class ResolvedSources:
    """The files found for a ``source``.

    :param images: candidate image files, de-duplicated by URI, in a stable order.
    :param captions: caption side-car files (``.txt``) keyed by ``(folder uri, stem)``.
    """

    images: list[ImageSource] = field(default_factory=list)
    captions: dict[tuple[str, str], ImageSource] = field(default_factory=dict)

    def caption_for(self, image: ImageSource) -> ImageSource | None:
        """Return the caption side-car next to ``image`` with the same stem, if any.

        :param image: a resolved image.
        """
        return self.captions.get((_parent_uri(image.uri), image.stem))


def _parent_uri(uri: str) -> str:
    return uri.rsplit("/", 1)[0] if "/" in uri else ""


def _has_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


def _is_storage_path(obj: Any) -> bool:
    """Whether ``obj`` is an ``ObjectStoragePath``/``UPath``-like object (checked on the class: reading ``fs``
    on the instance would attach a filesystem)."""
    cls = type(obj)
    return hasattr(cls, "fs") and hasattr(cls, "path") and hasattr(cls, "protocol")


def _is_uri(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()


def protocol_names(protocol: str | Iterable[str] | None) -> frozenset[str]:
    """The names in a ``protocol`` attribute of an fsspec filesystem or an ``ObjectStoragePath`` (a string, a tuple
    of strings, or ``None``).

    :param protocol: the attribute's value.
    """
    if isinstance(protocol, str):
        return frozenset((protocol,))
    return frozenset(protocol or ())


def filesystem_for(target: Any) -> tuple[AbstractFileSystem, str, str]:
    """Return ``(filesystem, path, protocol)`` for a local path, a URI or an ``ObjectStoragePath``.

    Schemes registered with Airflow (including connection-bound ``scheme://conn_id@bucket/key`` URIs) go
    through :class:`~airflow.sdk.ObjectStoragePath`; other fsspec protocols (``memory://``...) are opened with
    fsspec directly; plain paths use the local filesystem.

    :param target: the location.
    :raises BriaInputError: for an unknown protocol.
    """
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(target, os.PathLike) and not _is_storage_path(target):
        target = os.fspath(target)
    if _is_storage_path(target):
        protocol = str(target.protocol or "file")
        try:
            return target.fs, str(target.path), protocol
        except ValueError:
            if getattr(target, "conn_id", None):
                raise BriaInputError(f"No filesystem registered for protocol {protocol!r}") from None
            target = str(target)
    text = str(target).strip()
    if not text:
        raise BriaInputError("An empty string is not a valid image source or staging path")
    if not _is_uri(text):
        return LocalFileSystem(), os.path.abspath(os.path.expanduser(text)), "file"
    protocol = text.split("://", 1)[0].lower()
    if protocol in ("http", "https"):
        raise BriaInputError(
            f"{_safe_display(text)}: http(s) URLs cannot be listed or written; use a folder, glob or "
            "object-storage URI (for a ready-made zip of an advanced dataset, pass zip_url)"
        )
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_bria._compat import has_fs

    if has_fs(protocol) or "@" in text.split("://", 1)[1].split("/", 1)[0]:
        osp = ObjectStoragePath(text)
        try:
            return osp.fs, str(osp.path), protocol
        except ValueError as err:
            raise BriaInputError(f"{_safe_display(text)}: {err}") from None
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(text)
    except (ValueError, ImportError) as err:
        raise BriaInputError(
            f"{_safe_display(text)}: no filesystem for protocol {protocol!r} ({err}); install the Airflow "
            "provider or fsspec package that supports it"
        ) from None
    return fs, str(path), protocol


def _safe_display(text: str) -> str:
    """Drop any ``user:password@`` part of a URI before it goes into a message."""
    if "://" not in text:
        return text
    scheme, rest = text.split("://", 1)
    host, slash, tail = rest.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    return f"{scheme}://{host}{slash}{tail}"


def display_uri(protocol: str, path: str) -> str:
    """Return the user-facing form of a filesystem path.

    :param protocol: ``file`` for local paths, else the URI scheme.
    :param path: the path in the filesystem's own form.
    """
    if protocol in ("file", "local"):
        return path
    return f"{protocol}://{path.lstrip('/')}"


def _entries(fs: AbstractFileSystem, path: str, protocol: str, original: str) -> Iterator[tuple[str, int | None]]:
    """Yield ``(path, size)`` for the files a single source names."""
    if _has_glob(path):
        found = fs.glob(path, detail=True)
        if not found:
            raise BriaInputError(f"Image source {original!r} matched no files")
        for name in sorted(found):
            info = found[name]
            if info.get("type", "file") == "file":
                yield name, info.get("size")
        return
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise BriaInputError(f"Image source {original!r} does not exist") from None
    if info.get("type") == "directory":
        listing = fs.ls(path, detail=True)
        for entry in sorted(listing, key=lambda e: e["name"]):
            if entry.get("type") == "file":
                yield entry["name"], entry.get("size")
        return
    yield info.get("name", path), info.get("size")


def _as_list(source: Any) -> list[Any]:
    if source is None:
        return []
    if isinstance(source, (str, bytes, os.PathLike)) or _is_storage_path(source):
        return [source]
    if isinstance(source, Iterable):
        return list(source)
    return [source]


def resolve_sources(source: str | os.PathLike[str] | Sequence[Any] | None) -> ResolvedSources:
    """List the files named by ``source``.

    :param source: a path, glob, URI, ``ObjectStoragePath``, or a list of them.
    :raises BriaInputError: when a source is malformed, does not exist, or a glob matches nothing.
    """
    resolved = ResolvedSources()
    seen: set[str] = set()
    entries = _as_list(source)
    for item in entries:
        if isinstance(item, bytes):
            raise BriaInputError("Image sources must be paths or URIs, not bytes")
        original = _safe_display(str(item))
        fs, path, protocol = filesystem_for(item)
        for file_path, size in _entries(fs, path, protocol, original):
            name = file_path.rstrip("/").rsplit("/", 1)[-1]
            if not name or name.startswith("."):
                continue
            uri = display_uri(protocol, file_path)
            if uri in seen:
                continue
            seen.add(uri)
            src = ImageSource(uri=uri, name=name, path=file_path, fs=fs, size=size)
            if name.lower().endswith(CAPTION_SUFFIX):
                resolved.captions[(_parent_uri(uri), src.stem)] = src
            else:
                resolved.images.append(src)
    return resolved
