"""Streaming zip writer for bulk (advanced dataset) uploads.

Images are copied one at a time, in 1 MiB chunks, from their source into a zip opened on any fsspec
filesystem (local folder, ``s3://``, ``gs://``...): memory use does not grow with the size of the dataset.
Entries are stored, not deflated (images are already compressed), with a fixed timestamp, so the same images
always give the same bytes and the same object name: a retried task overwrites its own zip instead of leaving
a second one behind.

Entry names are flat and safe: no folders, no ``..``, no leading dot, no backslash or control characters.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_bria.contract import BULK_ZIP_MAX_BYTES
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._image_sources import ImageSource

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

CHUNK_SIZE = 1024 * 1024
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$")
#: Local header + central directory record + data descriptor per entry, with zip64 extras (upper bound).
_PER_ENTRY_OVERHEAD = 30 + 46 + 24 + 2 * 28 + 2 * 255


@dataclass(frozen=True)
class ZipEntry:
    """One file of the archive.

    :param name: the entry name (flat; checked by :func:`safe_entry_name`).
    :param source: where its bytes come from.
    :param size: bytes, when known (used for the 5 GB pre-check).
    """

    name: str
    source: ImageSource
    size: int | None = None


@dataclass(frozen=True)
class ZipStats:
    """What was written.

    :param entries: number of entries.
    :param payload_bytes: bytes of file content.
    :param zip_bytes: size of the archive.
    """

    entries: int
    payload_bytes: int
    zip_bytes: int


def safe_entry_name(name: str) -> str:
    """Return ``name`` if it is a safe flat zip entry name, else raise.

    :param name: the candidate name.
    :raises BriaInputError: for names with a path separator, ``..``, a leading dot or other characters.
    """
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise BriaInputError(f"Unsafe zip entry name {name!r}: only flat names of [A-Za-z0-9._-] are allowed")
    return name


def zip_object_name(dataset_id: int, entry_names: Sequence[str]) -> str:
    """Deterministic archive name for a dataset and a set of entries.

    :param dataset_id: the target dataset.
    :param entry_names: the entry names (order does not matter).
    """
    digest = hashlib.sha256("\n".join(sorted(entry_names)).encode()).hexdigest()[:12]
    return f"bria-dataset-{dataset_id}-{digest}.zip"


def check_zip_size(entries: Sequence[ZipEntry], *, limit: int = BULK_ZIP_MAX_BYTES) -> int:
    """Estimate the archive size from the entries' sizes and refuse it above the bulk limit.

    :param entries: the planned entries.
    :param limit: the maximum archive size (5 GB by default).
    :raises BriaInputError: when the archive would be larger than ``limit``.
    """
    estimate = sum((e.size or 0) + _PER_ENTRY_OVERHEAD for e in entries) + 22 + 56 + 20
    if estimate > limit:
        raise BriaInputError(
            f"The bulk zip would be about {estimate / 1024**3:.2f} GiB, above the {limit / 1024**3:.0f} GiB "
            "limit of a bulk upload; split the images over several datasets"
        )
    return estimate


def write_zip(entries: Sequence[ZipEntry], fs: AbstractFileSystem, path: str) -> ZipStats:
    """Stream ``entries`` into a new zip at ``path`` on ``fs`` (overwriting any previous file).

    :param entries: the files, in archive order.
    :param fs: destination filesystem.
    :param path: destination path in the filesystem's own form.
    :raises BriaInputError: for an unsafe or repeated entry name.
    """
    names: set[str] = set()
    for entry in entries:
        safe_entry_name(entry.name)
        if entry.name in names:
            raise BriaInputError(f"Zip entry {entry.name!r} appears twice")
        names.add(entry.name)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    payload = 0
    with fs.open(path, "wb") as raw, zipfile.ZipFile(raw, mode="w", compression=zipfile.ZIP_STORED) as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            if entry.size is not None:
                info.file_size = entry.size
            with entry.source.open() as src, zf.open(info, mode="w") as dst:
                while chunk := src.read(CHUNK_SIZE):
                    dst.write(chunk)
                    payload += len(chunk)
    try:
        zip_bytes = int(fs.size(path))
    except (OSError, NotImplementedError, TypeError):
        zip_bytes = 0
    return ZipStats(entries=len(entries), payload_bytes=payload, zip_bytes=zip_bytes)
