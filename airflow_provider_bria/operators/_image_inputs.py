"""Turn user-supplied image references into what Bria's helper endpoints accept: a public URL or base64.

Accepted references, per image:

- ``http://`` / ``https://`` URLs: passed through unchanged (Bria downloads them);
- ``data:image/...;base64,...`` URIs: the base64 payload is sent (Bria wants no data-URI prefix);
- object-storage URIs (``s3://``, ``gs://``, ``file://``... anything with a scheme) and
  :class:`airflow.sdk.ObjectStoragePath` objects: read through Airflow's ObjectStoragePath (fsspec), so the
  usual connections apply (pass an ``ObjectStoragePath(..., conn_id=...)`` object to choose one);
- local paths (``str`` or :class:`os.PathLike`);
- raw ``bytes``.

Read images must be JPEG, PNG or WEBP (checked from their magic bytes, so URIs without an extension work).
Lists that arrive through a template as a string (``"['a.png', 'b.png']"`` or JSON) are parsed back.
Other engineers may reuse :func:`encode_image` / :func:`encode_images` (e.g. for image-to-video input).
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_bria.contract import validate_image_count
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.hooks._inputs import sniff_image_format, strip_data_uri

_URL_PREFIXES = ("http://", "https://")


def is_url(value: Any) -> bool:
    """Whether ``value`` is an ``http(s)`` URL string (sent to Bria unchanged).

    :param value: anything.
    """
    return isinstance(value, str) and value.strip().lower().startswith(_URL_PREFIXES)


def _describe(source: Any) -> str:
    text = str(source)
    return text if len(text) <= 200 else text[:197] + "..."


def _has_scheme(text: str) -> bool:
    head, sep, _ = text.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").replace("-", "").replace(".", "").isalnum()


def read_image_bytes(source: Any) -> bytes:
    """Read one image from a local path, an object-storage URI, an ObjectStoragePath or raw bytes.

    :param source: the image reference (not a URL: see :func:`encode_image`).
    :raises BriaInputError: when it cannot be read.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        if isinstance(source, Path):
            return source.read_bytes()
        if isinstance(source, os.PathLike) and not hasattr(source, "read_bytes"):
            return Path(os.fspath(source)).read_bytes()
        if hasattr(source, "read_bytes") and not isinstance(source, str):  # ObjectStoragePath and friends
            return bytes(source.read_bytes())
        text = str(source).strip()
        if not text:
            raise BriaInputError("An image reference is empty")
        if _has_scheme(text):
            from airflow_provider_bria._compat import object_storage_path  # heavy (fsspec): only for URIs

            return bytes(object_storage_path(text).read_bytes())
        return Path(text).expanduser().read_bytes()
    except BriaInputError:
        raise
    except FileNotFoundError:
        raise BriaInputError(f"Image not found: {_describe(source)}") from None
    except IsADirectoryError:
        raise BriaInputError(f"Image path is a directory, not a file: {_describe(source)}") from None
    except (OSError, ValueError, ImportError) as err:
        raise BriaInputError(f"Could not read image {_describe(source)}: {type(err).__name__}: {err}") from None


def _data_uri_payload(text: str) -> str:
    payload = strip_data_uri(text)
    if payload is text:
        raise BriaInputError("A data: URI image must be base64-encoded (data:image/png;base64,...)")
    payload = "".join(payload.split())
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BriaInputError("A data: URI image holds invalid base64") from None
    if sniff_image_format(data) is None:
        raise BriaInputError("A data: URI image is not a JPEG, PNG or WEBP image")
    return payload


def encode_image(source: Any) -> str:
    """Return what Bria accepts for one image: the URL itself for ``http(s)`` URLs, else base64 of its bytes.

    :param source: URL, data URI, object-storage URI, ObjectStoragePath, local path or bytes.
    :raises BriaInputError: unreadable, or not a JPEG/PNG/WEBP image.
    """
    if is_url(source):
        return str(source).strip()
    if isinstance(source, str) and source.strip().lower().startswith("data:"):
        return _data_uri_payload(source.strip())
    data = read_image_bytes(source)
    if not data:
        raise BriaInputError(f"Image is empty: {_describe(source)}")
    if sniff_image_format(data) is None:
        raise BriaInputError(f"Not a JPEG, PNG or WEBP image: {_describe(source)}")
    return base64.b64encode(data).decode("ascii")


def as_image_list(value: Any, field: str) -> list[Any]:
    """Normalise a list-of-images argument, accepting a list rendered to a string by a template.

    :param value: a list/tuple, or a string holding a JSON/Python list, or a single reference.
    :param field: argument name, for the message.
    :raises BriaInputError: when it is not a list of references.
    """
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            for parse in (json.loads, ast.literal_eval):
                try:
                    parsed = parse(text)
                except (ValueError, SyntaxError):
                    continue
                if isinstance(parsed, list):
                    return parsed
            raise BriaInputError(f"{field} looks like a list but could not be parsed: {_describe(text)}")
        return [text] if text else []
    if isinstance(value, (bytes, bytearray, os.PathLike)) or hasattr(value, "read_bytes"):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    raise BriaInputError(f"{field} must be a list of image paths, URIs or URLs, got {type(value).__name__}")


def encode_images(sources: Sequence[Any] | Any, *, minimum: int, maximum: int, what: str, field: str = "images"
                  ) -> list[str]:
    """Validate the number of images, then encode each with :func:`encode_image`.

    The count is checked before anything is read.

    :param sources: the image references (or a templated string holding a list).
    :param minimum: inclusive minimum count.
    :param maximum: inclusive maximum count.
    :param what: the Bria call, for messages (``"generate_visual_schema"``).
    :param field: the argument name, for messages.
    :raises BriaInputError: wrong count, or an image that cannot be used.
    """
    items = as_image_list(sources, field)
    validate_image_count(len(items), minimum=minimum, maximum=maximum, what=what)
    return [encode_image(item) for item in items]


def _is_direct(item: Any) -> bool:
    """Whether an image reference is sent as given or encoded as is (URL, data URI, bytes), not listed."""
    if isinstance(item, (bytes, bytearray)) or is_url(item):
        return True
    return isinstance(item, str) and item.strip().lower().startswith("data:")


def gate_images(value: Any, field: str, *, minimum: int, maximum: int, what: str, log: Any = None) -> list[str]:
    """Resolve image references like the upload operator does, check them with its quality gate, encode them.

    Files, folders, globs, object-storage URIs or prefixes and ``ObjectStoragePath`` objects (alone or in a
    list, also a list rendered from XCom) are expanded with
    :func:`~airflow_provider_bria.operators._image_sources.resolve_sources` and checked with
    :func:`~airflow_provider_bria.operators._quality_gate.run_quality_gate` (format sniffed from the content,
    structure verified, Bria's 12 MB limit, content duplicates; not the 1024 px rule, which Bria states for
    dataset images only). Skipped files are logged as one warning. ``http(s)`` URLs, data URIs and bytes are
    sent as before. A list longer than ``maximum`` is refused before anything is read; when folders or globs
    expand to more than ``maximum`` valid images, the first ``maximum`` (in listing order) are used, with a
    warning.

    :param value: the argument (see above).
    :param field: the argument name, for messages.
    :param minimum: inclusive minimum number of images.
    :param maximum: inclusive maximum number of images.
    :param what: the Bria call, for messages.
    :param log: where to log warnings (the operator's logger).
    :raises BriaInputError: too few valid images (naming the skipped files), too many given, unreadable input.
    """
    from airflow_provider_bria.operators._image_sources import resolve_sources
    from airflow_provider_bria.operators._quality_gate import run_quality_gate, skipped_warning

    items = as_image_list(value, field)
    if len(items) > maximum:
        validate_image_count(len(items), minimum=minimum, maximum=maximum, what=what)
    direct = [encode_image(item) for item in items if _is_direct(item)]
    listed = [item for item in items if not _is_direct(item)]
    accepted: list[str] = []
    skipped: list[dict[str, Any]] = []
    if listed:
        resolved = resolve_sources(listed)
        gate = run_quality_gate(resolved.images, increase_resolution=True, check_resolution=False)
        skipped = gate.skipped
        if skipped and log is not None:
            log.warning("%s: %s", field, skipped_warning(skipped, len(resolved.images)))
        room = max(0, maximum - len(direct))
        if len(gate.accepted) > room and log is not None:
            log.warning("%s: %d valid images found, %s takes at most %d: using the first %d, leaving out %s",
                        field, len(gate.accepted), what, maximum, room,
                        ", ".join(c.source.uri for c in gate.accepted[room:room + 5]))
        for checked in gate.accepted[:room]:
            with checked.source.open() as handle:
                accepted.append(base64.b64encode(handle.read()).decode("ascii"))
    total = len(direct) + len(accepted)
    if total < minimum:
        listed_skips = "; ".join(f"{item['source']}: {item['reason']}" for item in skipped[:5])
        why = f"; skipped: {listed_skips}" if skipped else ""
        raise BriaInputError(f"{what} needs {minimum}-{maximum} images, got {total} valid ones in {field}{why}")
    return direct + accepted
