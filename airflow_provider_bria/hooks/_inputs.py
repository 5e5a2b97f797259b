"""Small client-side input checks of the hook (everything raises :class:`BriaInputError` before any request).

Rules of the API itself live in :mod:`airflow_provider_bria.contract`; this module only normalises the
Python-side shapes (ids, JSON strings, images as bytes or text, body assembly).
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from airflow_provider_bria.exceptions import BriaInputError

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)


def object_id(value: Any, name: str) -> int:
    """Return a positive integer id (ints and digit strings, as rendered templates give, are accepted).

    :param value: the id.
    :param name: the parameter name, for the message.
    """
    if isinstance(value, bool):
        raise BriaInputError(f"{name} must be a positive integer id, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise BriaInputError(f"{name} must be a positive integer id, got {value!r}")
    if number <= 0:
        raise BriaInputError(f"{name} must be a positive integer id, got {value!r}")
    return number


def checkpoint_step(value: Any) -> int:
    """Return a checkpoint step (a positive integer; the API lists them as strings).

    :param value: the step.
    """
    return object_id(value, "checkpoint step")


def non_empty(value: Any, name: str) -> str:
    """Return ``value`` as a stripped, non-empty string.

    :param value: the text.
    :param name: the parameter name, for the message.
    """
    if value is None or not isinstance(value, str) or not value.strip():
        raise BriaInputError(f"{name} is required and must be a non-empty string, got {value!r}")
    return value


def json_string(value: Any, name: str) -> str:
    """Return a string holding valid JSON; a dict/list is serialised for convenience.

    :param value: a JSON string or a JSON-serialisable object.
    :param name: the parameter name, for the message.
    """
    if isinstance(value, Mapping | list):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            raise BriaInputError(f"{name} is not JSON-serialisable") from None
    text = non_empty(value, name)
    try:
        json.loads(text)
    except ValueError:
        raise BriaInputError(f"{name} must be a string holding valid JSON") from None
    return text


def http_url(value: Any, name: str) -> str:
    """Return ``value`` if it is an absolute http(s) URL.

    :param value: the URL.
    :param name: the parameter name, for the message.
    """
    text = non_empty(value, name).strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise BriaInputError(f"{name} must be an absolute http(s) URL, got {text[:200]!r}")
    return text


def read_bytes(file: bytes | bytearray | memoryview | BinaryIO, name: str = "file") -> bytes:
    """Return the bytes of ``file`` (bytes-like or a binary file object opened for reading).

    :param file: the content.
    :param name: the parameter name, for the message.
    """
    if isinstance(file, bytes | bytearray | memoryview):
        data = bytes(file)
    elif hasattr(file, "read"):
        data = file.read()
        if isinstance(data, str):
            raise BriaInputError(f"{name} must be opened in binary mode ('rb')")
        data = bytes(data)
    else:
        raise BriaInputError(f"{name} must be bytes or a binary file object, got {type(file).__name__}")
    if not data:
        raise BriaInputError(f"{name} is empty")
    return data


def sniff_image_format(data: bytes) -> str | None:
    """Return ``png``, ``jpeg`` or ``webp`` from the magic bytes, or ``None`` for anything else.

    :param data: the image bytes.
    """
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_bytes(file: bytes | bytearray | memoryview | BinaryIO, name: str = "file") -> tuple[bytes, str]:
    """Read an image and check it is JPEG, PNG or WebP (the formats the API accepts).

    :param file: the image.
    :param name: the parameter name, for the message.
    :returns: the bytes and the format (``png``/``jpeg``/``webp``).
    """
    data = read_bytes(file, name)
    fmt = sniff_image_format(data)
    if fmt is None:
        raise BriaInputError(f"{name} is not a JPEG, PNG or WebP image (the formats the Bria API accepts)")
    return data, fmt


class EncodedJSON(bytes):
    """A JSON request body already encoded (UTF-8 bytes): sent as is, with ``Content-Type: application/json``."""


def json_with_base64(field: str, data: bytes, rest: Mapping[str, Any]) -> EncodedJSON:
    """``{field: <base64 of data>, **rest}`` as JSON bytes, without feeding the base64 text to the JSON encoder.

    Base64 text needs no JSON escaping, so its bytes are spliced in: the document is the one ``json.dumps`` (as
    ``requests`` calls it) makes, for a fraction of the CPU (the encoder walks a megabyte string character by
    character).

    :param field: the key of the base64 value (first in the document).
    :param data: the raw bytes.
    :param rest: the other fields (JSON-safe).
    """
    tail = json.dumps(dict(rest), allow_nan=False)[1:-1]
    parts = [b"{", json.dumps(field).encode("ascii"), b': "', base64.b64encode(data), b'"']
    if tail:
        parts += [b", ", tail.encode("utf-8")]
    parts.append(b"}")
    return EncodedJSON(b"".join(parts))


def strip_data_uri(text: str) -> str:
    """Remove a ``data:<mime>;base64,`` prefix (the API wants bare base64).

    :param text: base64 text, a data URI or a URL.
    """
    if text[:5].lower() == "data:":
        header, sep, payload = text[:100].partition(",")
        if sep and ";base64" in header.lower():
            return text[len(header) + 1:]
    return text


def image_ref(value: Any, name: str) -> str:
    """Turn an image given as URL, base64 text, data URI, bytes or binary file into what the API takes.

    :param value: the image reference.
    :param name: the parameter name, for the message.
    """
    if isinstance(value, str):
        return strip_data_uri(non_empty(value, name).strip())
    data, _ = image_bytes(value, name)
    return base64.b64encode(data).decode("ascii")


def image_refs(values: Any, name: str) -> list[str]:
    """Apply :func:`image_ref` to a list of images.

    :param values: a list (or other non-string iterable) of images.
    :param name: the parameter name, for the message.
    """
    if values is None or isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise BriaInputError(f"{name} must be a list of image URLs or base64 strings")
    return [image_ref(v, f"{name}[{i}]") for i, v in enumerate(values)]


def compact(**fields: Any) -> dict[str, Any]:
    """Build a request body from the fields that are not ``None`` (enum members become their values).

    :param fields: candidate body fields.
    """
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        out[key] = value.value if isinstance(value, enum.Enum) else value
    return out


def optional_bool(value: Any, name: str) -> bool | None:
    """Check an optional boolean flag.

    :param value: ``None`` or a bool.
    :param name: the parameter name, for the message.
    """
    if value is None or isinstance(value, bool):
        return value
    raise BriaInputError(f"{name} must be True, False or None, got {value!r}")
